"""``POST /v1/route`` and ``POST /v1/feedback``: the router's own API.

The user is the owner of the bearer key. ``decide`` (shared with the chat proxy) embeds
the text through the batching embedder and routes in the thread pool; a query no model can
take becomes a 402 (budget exhausted, with the reset time and ``Retry-After``) or a 422
(``allowed`` / ``max_cost`` exclude every model), each listing why every model was
excluded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from bandit_router.service.auth import current_user
from bandit_router.service.errors import ServiceError
from bandit_router.service.fastjson import OrjsonRoute
from bandit_router.service.state import ServiceState

api = APIRouter(tags=["router"], route_class=OrjsonRoute)

Finite = Annotated[float, Field(allow_inf_nan=False)]
USD = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ChatMessage(BaseModel):
    """One chat message (``content`` text or OpenAI content parts)."""

    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=64)
    content: str | list[dict[str, Any]] | None = None


class RouteRequest(BaseModel):
    """Give exactly one of ``prompt``, ``messages`` or ``embedding``.

    >>> RouteRequest(prompt="hi", max_cost=0.01).max_cost
    0.01
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"prompt": "What is the capital of France?"},
                {"messages": [{"role": "user", "content": "Write a haiku."}], "max_cost": 0.01},
            ]
        }
    )

    prompt: str | None = Field(None, description="The query text.")
    messages: list[ChatMessage] | None = Field(None, description="Chat messages, as OpenAI's.")
    embedding: list[Finite] | None = Field(
        None, description="A precomputed embedding of the router's embedder (its dimension)."
    )
    input_tokens: USD | None = Field(
        None, description="With an embedding: the prompt's length in tokens (for the cost)."
    )
    allowed: list[str] | None = Field(None, description="Restrict the choice to these models.")
    max_cost: USD | None = Field(None, description="Most USD this query may cost (estimate).")


class ArmScore(BaseModel):
    """The policy's estimate (``mean``), its uncertainty (``width``) and the score it
    ranked by (``value``); null when not finite."""

    mean: float | None
    width: float | None
    value: float | None


class RouteResponse(BaseModel):
    decision_id: str
    model: str
    estimated_cost: float
    propensity: float | None
    reason: str
    budget_remaining: float | None
    budget_resets_at: str | None
    scores: dict[str, ArmScore]


class Usage(BaseModel):
    """Token counts: ``input_tokens`` / ``output_tokens`` or OpenAI's names."""

    model_config = ConfigDict(extra="allow")
    input_tokens: USD | None = None
    output_tokens: USD | None = None
    prompt_tokens: USD | None = None
    completion_tokens: USD | None = None

    def tokens(self) -> dict[str, float]:
        return {
            k: v
            for k, v in self.model_dump(
                include={"input_tokens", "output_tokens", "prompt_tokens", "completion_tokens"}
            ).items()
            if v is not None
        }


class FeedbackRequest(BaseModel):
    """The reward of a routed decision; ``cost`` (USD) or ``usage`` settles its price
    (neither: the usage the proxied upstream reported, else the estimate).

    >>> FeedbackRequest(decision_id="d", reward=1, usage={"prompt_tokens": 3,
    ...                 "completion_tokens": 5}).usage.tokens()
    {'prompt_tokens': 3.0, 'completion_tokens': 5.0}
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"decision_id": "0192f0c4-6a8e-7d2a-9b1c-3f5e7a9c1b2d", "reward": 1.0},
                {"decision_id": "0192f0c4-6a8e-7d2a-9b1c-3f5e7a9c1b2d", "reward": 0.0,
                 "usage": {"prompt_tokens": 120, "completion_tokens": 380}},
            ]
        }
    )  # fmt: skip

    decision_id: str = Field(min_length=1, max_length=200)
    reward: Finite
    cost: USD | None = None
    usage: Usage | None = None


class FeedbackResponse(BaseModel):
    decision_id: str
    model: str
    reward: float | None
    cost: float
    estimated_cost: float
    feedback_id: int
    duplicate: bool
    applied: bool


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _budget_bound(excluded: Any) -> bool:
    """Every model the query allowed is excluded only because the budget cannot pay it."""
    why = [w for w in excluded.values() if "not allowed" not in w and w != "retired"]
    return bool(why) and all("unaffordable" in w and "max_cost" not in w for w in why)


def refusal_error(route: Any, now: float) -> ServiceError:
    """The HTTP error of a route without a model."""
    d = route.as_dict()
    extra = {"excluded": d["excluded"], "budget_remaining": _clean(route.budget_remaining)}
    if route.reason == "exhausted" or _budget_bound(route.excluded):
        headers = None
        if route.resets_at is not None and math.isfinite(route.resets_at):
            headers = {"Retry-After": str(max(math.ceil(route.resets_at - now), 0))}
        message = route.message
        if route.reason != "exhausted":
            when = d["budget_resets_at"]
            message = (
                f"budget exhausted for the allowed model(s): {_clean(route.budget_remaining)} USD "
                "left; "
                + "; ".join(f"{a}: {w}" for a, w in route.excluded.items())
                + (f". It resets at {when}." if when else ". It does not reset (total budget).")
            )
        return ServiceError(
            402,
            message or "budget exhausted.",
            "budget_exhausted",
            headers=headers,
            resets_at=d["budget_resets_at"],
            **extra,
        )
    return ServiceError(
        422,
        (route.message or "no eligible model")
        + ". Widen `allowed`, raise `max_cost`, or add models.",
        "no_eligible_model",
        **extra,
    )


async def decide(
    state: ServiceState,
    user: str,
    *,
    prompt: str | None = None,
    messages: Sequence[Any] | None = None,
    embedding: Sequence[float] | None = None,
    input_tokens: float | None = None,
    allowed: Sequence[str] | None = None,
    max_cost: float | None = None,
    count_text: str | None = None,
) -> Any:
    """Embed (batched) and route one query; a ``Route`` that may have no model.

    ``count_text`` (the whole conversation when only its tail is routed on) is what the
    input tokens of the cost estimate are counted on."""
    router = state.router
    t0 = time.perf_counter()
    if embedding is not None or state.batcher is None:

        def direct() -> Any:
            n = input_tokens
            if count_text is not None:
                n = router.cost_model.input_tokens(count_text)
            return router.route(
                user, prompt, messages, embedding,
                allowed=allowed, max_cost=max_cost, input_tokens=n,
            )  # fmt: skip

        route = await state.router_call(direct)
    else:
        text = router.text_of(prompt, messages)  # validates; cheap
        vec = await state.batcher.embed(text)

        def go() -> Any:
            tokens = router.cost_model.input_tokens(text if count_text is None else count_text)
            return router.route(
                user, embedding=vec, allowed=allowed, max_cost=max_cost, input_tokens=tokens
            )

        route = await state.router_call(go)
    state.metrics.route_latency.observe(time.perf_counter() - t0)
    if route.ok:
        state.routed_at.put(route.decision_id, router.clock())
        state.metrics.decision(route.model, route.reason, route.estimated_cost)
    else:
        state.metrics.refusals.labels(route.reason).inc()
    return route


@api.post(
    "/v1/route",
    response_model=RouteResponse,
    summary="Choose a model for one query and record the decision.",
    responses={402: {"description": "Budget exhausted"}, 422: {"description": "Bad input"}},
)
async def route_endpoint(
    body: RouteRequest, request: Request, user: str = Depends(current_user)
) -> RouteResponse:
    state: ServiceState = request.app.state.service
    messages = None if body.messages is None else [m.model_dump() for m in body.messages]
    route = await decide(
        state, user, prompt=body.prompt, messages=messages, embedding=body.embedding,
        input_tokens=body.input_tokens, allowed=body.allowed, max_cost=body.max_cost,
    )  # fmt: skip
    if not route.ok:
        raise refusal_error(route, state.router.clock())
    d = route.as_dict()
    return RouteResponse(
        decision_id=route.decision_id,
        model=route.model,
        estimated_cost=route.estimated_cost,
        propensity=_clean(route.propensity),
        reason=route.reason,
        budget_remaining=_clean(route.budget_remaining),
        budget_resets_at=d["budget_resets_at"],
        scores={a: {k: _clean(v) for k, v in sc.items()} for a, sc in d["scores"].items()},
    )


async def give_feedback(
    state: ServiceState,
    user: str,
    decision_id: str,
    reward: float,
    cost: float | None = None,
    usage: dict[str, float] | None = None,
) -> Any:
    """``Router.feedback`` for ``user``'s decision (the proxied usage when no cost/usage),
    with its metrics."""
    router = state.router
    if cost is None and not usage:
        usage = state.usage.get(decision_id) or None

    def go() -> tuple[Any, float | None]:
        res = router.feedback(decision_id, reward, cost=cost, usage=usage, user=user)
        created = None
        if not res.duplicate:
            created = state.routed_at.pop(decision_id)
            if created is None:  # routed before a restart, or by another process
                d = router.stores.decisions.get(decision_id)
                created = None if d is None else d.created_at
        return res, created

    res, created = await state.router_call(go)
    if not res.duplicate:
        delay = None if created is None else max(router.clock() - created, 0.0)
        state.metrics.feedback(res.model, res.reward, delay, res.cost)
        state.usage.pop(decision_id)
    return res


@api.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    summary="The reward of a decision; settles its cost (once per decision).",
    responses={
        404: {"description": "Unknown decision (or another user's)"},
        409: {"description": "Different feedback already given"},
        410: {"description": "The feedback wait time is over"},
    },
)
async def feedback_endpoint(
    body: FeedbackRequest, request: Request, user: str = Depends(current_user)
) -> FeedbackResponse:
    state: ServiceState = request.app.state.service
    usage = body.usage.tokens() if body.usage is not None else None
    res = await give_feedback(state, user, body.decision_id, body.reward, body.cost, usage)
    return FeedbackResponse(**{k: v for k, v in res.as_dict().items() if k != "is_default"})
