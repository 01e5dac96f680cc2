"""Admin routes (the admin key only): users and their budgets and keys, the model
catalogue, a warm-start prior, snapshots and stats.

A user's key on these routes is a 403; no valid key a 401.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from bandit_router.budget.periods import Budget
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import BanditRouterError, UnknownArmError
from bandit_router.service.auth import require_admin
from bandit_router.service.errors import ServiceError
from bandit_router.service.settings import Upstream
from bandit_router.service.state import ServiceState

api = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

USD = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Name = Annotated[str, Path(min_length=1, max_length=200)]
NameField = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")]


class BudgetBody(BaseModel):
    """``budget_usd`` per ``period`` (``total``, ``daily``, ``monthly``, ``rolling:<s>``);
    ``budget_usd`` null: the user is not limited."""

    budget_usd: USD | None = None
    period: str = Field("monthly", max_length=64)
    expected_queries: int | None = Field(None, ge=1)


class UserBody(BudgetBody):
    name: NameField


class UserOut(BaseModel):
    name: str
    budget_usd: float | None
    period: str | None
    spent_usd: float | None = None
    reserved_usd: float | None = None
    remaining_usd: float | None = None
    resets_at: float | None = None


class KeyOut(BaseModel):
    user: str
    key: str = Field(description="The API key; shown once, stored only as a hash.")


class ModelBody(BaseModel):
    name: NameField
    input_price_per_mtok: USD
    output_price_per_mtok: USD
    price_per_call: USD = 0.0
    expected_output_tokens: USD = 256.0
    upstream: dict[str, Any] | None = Field(
        None, description="{base_url, api_key_env, upstream_model, timeout_s}"
    )


class PriceBody(BaseModel):
    input_price_per_mtok: USD | None = None
    output_price_per_mtok: USD | None = None
    price_per_call: USD | None = None
    expected_output_tokens: USD | None = None


class PriorBody(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="A prior artifact file.")


class Done(BaseModel):
    ok: bool = True
    message: str = ""


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _budget(body: BudgetBody) -> Budget | None:
    if body.budget_usd is None:
        return None
    return Budget(body.budget_usd, body.period, body.expected_queries)


def _keep_budget(router: Any, name: str, budget: Budget | None) -> None:
    """The store keeps a budget once set: refuse to drop it rather than pretend to."""
    rec = router.stores.users.get(name)
    if budget is None and rec is not None and rec.budget is not None:
        raise ServiceError(
            422,
            f"user {name!r} has a budget of {rec.budget.amount_usd:g} USD; a budget cannot be "
            "removed, set a larger one (budget_usd) instead.",
            "invalid_budget",
        )


def _user_out(router: Any, name: str) -> UserOut:
    rec = router.stores.users.get(name)
    budget = rec.budget if rec is not None else None
    out = UserOut(
        name=name,
        budget_usd=None if budget is None else budget.amount_usd,
        period=None if budget is None else str(budget.period),
    )
    if budget is not None:
        s = router.stores.ledger.state(name)
        out.spent_usd, out.reserved_usd = float(s.spent), float(s.reserved)
        out.remaining_usd = float(s.remaining)
        out.resets_at = s.resets_at
    return out


@api.get("/users", response_model=list[UserOut], summary="Users, budgets and spend.")
async def list_users(request: Request) -> list[UserOut]:
    st = _state(request)

    def go() -> list[UserOut]:
        return [_user_out(st.router, u.name) for u in st.router.stores.users.list()]

    return await st.blocking(go)


@api.post("/users", response_model=UserOut, status_code=201, summary="Create or update a user.")
async def create_user(body: UserBody, request: Request) -> UserOut:
    st = _state(request)
    budget = _budget(body)

    def go() -> UserOut:
        _keep_budget(st.router, body.name, budget)
        st.router.set_user(body.name, budget)
        return _user_out(st.router, body.name)

    return await st.blocking(go)


@api.put("/users/{name}/budget", response_model=UserOut, summary="Set a user's budget.")
async def set_budget(name: Name, body: BudgetBody, request: Request) -> UserOut:
    st = _state(request)
    budget = _budget(body)

    def go() -> UserOut:
        if st.router.stores.users.get(name) is None:
            raise ServiceError(
                404, f"no user {name!r}; create it with POST /admin/users.", "unknown_user"
            )
        _keep_budget(st.router, name, budget)
        st.router.set_user(name, budget)
        return _user_out(st.router, name)

    return await st.blocking(go)


@api.post("/users/{name}/keys", response_model=KeyOut, status_code=201, summary="Issue an API key.")
async def issue_key(name: Name, request: Request) -> KeyOut:
    st = _state(request)

    def go() -> str:
        if st.router.stores.users.get(name) is None:
            raise ServiceError(
                404, f"no user {name!r}; create it with POST /admin/users.", "unknown_user"
            )
        return st.keys.issue(name)

    return KeyOut(user=name, key=await st.blocking(go))


class KeyInfo(BaseModel):
    prefix: str
    created_at: str | None = None
    revoked_at: str | None = None


@api.get("/users/{name}/keys", response_model=list[KeyInfo], summary="A user's keys (no secrets).")
async def list_keys(name: Name, request: Request) -> list[KeyInfo]:
    st = _state(request)
    rows = await st.blocking(st.keys.keys, name)
    if rows is None:
        raise ServiceError(501, "this key store cannot list keys.", "not_implemented")
    return [KeyInfo(**r) for r in rows]


@api.delete("/keys/{key_or_prefix}", response_model=Done, summary="Revoke an API key.")
async def revoke_key(key_or_prefix: Name, request: Request) -> Done:
    st = _state(request)
    try:
        await st.blocking(st.keys.revoke, key_or_prefix)
    except BanditRouterError as exc:
        raise ServiceError(404, str(exc), "unknown_key") from None
    return Done(message="revoked")


@api.post("/models", response_model=Done, status_code=201, summary="Add a model at run time.")
async def add_model(body: ModelBody, request: Request) -> Done:
    st = _state(request)
    up = None
    if body.upstream is not None:
        up = Upstream.from_dict(body.upstream, "upstream")
    spec = ModelSpec(
        body.name,
        body.input_price_per_mtok,
        body.output_price_per_mtok,
        body.price_per_call,
        body.expected_output_tokens,
    )
    await st.blocking(st.router.add_model, spec)
    if up is not None:
        st.upstreams[body.name] = up
    return Done(message=f"model {body.name} added")


@api.put("/models/{name}/price", response_model=Done, summary="Change a model's prices.")
async def set_price(name: Name, body: PriceBody, request: Request) -> Done:
    st = _state(request)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise ServiceError(
            422,
            "give at least one of input_price_per_mtok, output_price_per_mtok, price_per_call, "
            "expected_output_tokens.",
            "invalid_request",
        )
    await st.blocking(lambda: st.router.set_price(name, **changes))
    return Done(message=f"prices of {name} updated")


@api.delete("/models/{name}", response_model=Done, summary="Retire a model.")
async def retire_model(name: Name, request: Request) -> Done:
    st = _state(request)
    if name in st.router.models and len(st.router.models) == 1:
        raise ServiceError(
            409, f"{name} is the last active model; add another before retiring it.", "last_model"
        )
    try:
        await st.blocking(st.router.retire_model, name)
    except UnknownArmError as exc:
        raise ServiceError(404, str(exc), "unknown_model") from None
    return Done(message=f"model {name} retired")


@api.post(
    "/prior",
    response_model=Done,
    summary="Load a warm-start prior (if this router supports it).",
    responses={501: {"description": "The router cannot load a prior at run time"}},
)
async def load_prior(body: PriorBody, request: Request) -> Done:
    st = _state(request)
    loader = getattr(st.router, "load_prior", None)
    if not callable(loader):
        raise ServiceError(
            501,
            "this router cannot load a prior while running; give it in the config (prior: "
            "FILE) and restart with `bandit-router serve`.",
            "not_implemented",
        )
    await st.blocking(loader, body.path)
    return Done(message=f"prior {body.path} loaded")


class SnapshotOut(BaseModel):
    snapshot_id: int
    last_feedback_id: int


@api.post("/snapshot", response_model=SnapshotOut, summary="Write a policy snapshot now.")
async def snapshot(request: Request) -> SnapshotOut:
    st = _state(request)
    snap = await st.blocking(st.router.snapshot)
    return SnapshotOut(snapshot_id=snap.snapshot_id, last_feedback_id=snap.last_feedback_id)


@api.get("/stats", summary="The policy, the catalogue, learning and embedding counters.")
async def stats(request: Request) -> dict[str, Any]:
    st = _state(request)
    r = st.router
    b = st.batcher
    emb = getattr(b, "embedder", None)
    return {
        "policy": r.policy.name,
        "policy_updates": int(r.policy.n_updates),
        "last_feedback_id": int(r.last_feedback_id),
        "models": [
            {
                "name": s.name,
                "input_price_per_mtok": s.input_price_per_mtok,
                "output_price_per_mtok": s.output_price_per_mtok,
                "price_per_call": s.price_per_call,
                "upstream": s.name in st.upstreams,
            }
            for s in r.catalogue
        ],
        "embedder": getattr(r.embedder, "name", None),
        "embedding_batches": getattr(b, "batches", 0),
        "embedded_texts": getattr(b, "texts", 0),
        "embedding_cache_hits": getattr(emb, "hits", None),
        "rewards": st.metrics.summary(),
    }
