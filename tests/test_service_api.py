"""The HTTP app in process (FastAPI's TestClient; the fake upstream behind an ASGI
transport): the router API, auth, error statuses and messages, the proxy's settlement and
retry, admin routes, metrics, and the batching embedder."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from bandit_router.catalogue import ModelSpec
from bandit_router.embeddings import HashingEmbedder
from bandit_router.errors import UnknownDecisionError
from bandit_router.policies import make_policy
from bandit_router.router import Router
from bandit_router.service import MemoryKeyStore, ServiceSettings, create_app
from bandit_router.service.batching import BatchingEmbedder
from bandit_router.stores_memory import memory_stores
from tests.fake_upstream import PROMPT_TOKENS, answer_text, make_app, usage_of

ADMIN = "admin-key-for-tests"
MODELS = [
    ModelSpec("broken", 0.2, 0.8, expected_output_tokens=100),
    ModelSpec("cheap", 0.1, 0.4, expected_output_tokens=100),
    ModelSpec("good", 3.0, 12.0, expected_output_tokens=100),
]


@pytest.fixture
def env():
    names = [m.name for m in MODELS]
    router = Router(
        MODELS, HashingEmbedder(dim=16), None, make_policy("linucb", names, 17, seed=0),
        stores=memory_stores(), feedback_wait_seconds=3600.0,
    )  # fmt: skip
    upstream = make_app()
    upstream.state.modes["up-broken"] = "fail"
    settings = ServiceSettings(
        admin_key=ADMIN,
        upstreams={
            m: {"base_url": "http://upstream/v1", "upstream_model": f"up-{m}"} for m in names
        },
        batch_window_ms=1.0,
        expire_interval_s=None,
    )
    keys = MemoryKeyStore(users=lambda u: router.stores.users.get(u) is not None)
    app = create_app(
        router, settings, keys=keys, upstream_transport=httpx.ASGITransport(app=upstream)
    )
    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        for u in ("alice", "bob"):
            r = client.post("/admin/users", json={"name": u, "budget_usd": 100}, headers=admin)
            assert r.status_code == 201, r.text
        keys_ = {
            u: client.post(f"/admin/users/{u}/keys", headers=admin).json()["key"]
            for u in ("alice", "bob")
        }
        yield {
            "client": client,
            "router": router,
            "upstream": upstream,
            "admin": admin,
            "alice": {"Authorization": f"Bearer {keys_['alice']}"},
            "bob": {"Authorization": f"Bearer {keys_['bob']}"},
        }


def _err(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    assert body["error"]["message"]
    return body["error"]


def test_route_then_feedback_once_per_decision(env):
    c, alice = env["client"], env["alice"]
    r = c.post("/v1/route", json={"prompt": "What is 2 + 2?", "allowed": ["cheap", "good"]},
               headers=alice)  # fmt: skip
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["model"] in ("cheap", "good") and set(d["scores"]) == {"broken", "cheap", "good"}
    assert d["estimated_cost"] > 0 and 0 < d["propensity"] <= 1
    assert d["budget_remaining"] == pytest.approx(100 - d["estimated_cost"])
    fb = {"decision_id": d["decision_id"], "reward": 1.0, "cost": 0.001}
    f = c.post("/v1/feedback", json=fb, headers=alice)
    assert f.status_code == 200 and f.json()["applied"] and not f.json()["duplicate"]
    assert env["router"].stores.ledger.state("alice").spent == pytest.approx(0.001)
    again = c.post("/v1/feedback", json=fb, headers=alice)
    assert again.status_code == 200 and again.json()["duplicate"]
    other = c.post("/v1/feedback", json={**fb, "reward": 0.0}, headers=alice)
    assert other.status_code == 409 and _err(other)["code"] == "feedback_conflict"
    unknown = c.post("/v1/feedback", json={**fb, "decision_id": "nope"}, headers=alice)
    assert unknown.status_code == 404 and "decision_id" in _err(unknown)["message"]


def test_a_user_acts_on_their_own_decisions_only(env):
    c = env["client"]
    d = c.post("/v1/route", json={"prompt": "hello"}, headers=env["alice"]).json()
    r = c.post("/v1/feedback", json={"decision_id": d["decision_id"], "reward": 1},
               headers=env["bob"])  # fmt: skip
    assert r.status_code == 404
    assert env["router"].stores.decisions.feedback_for(d["decision_id"]) is None


def test_auth_statuses(env):
    c, admin = env["client"], env["admin"]
    body = {"prompt": "hi"}
    none = c.post("/v1/route", json=body)
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in _err(none)["message"]
    wrong = c.post("/v1/route", json=body, headers={"Authorization": "Bearer br_abc_def"})
    assert wrong.status_code == 401 and _err(wrong)["code"] == "invalid_api_key"
    assert c.get("/admin/stats", headers=env["alice"]).status_code == 403
    assert c.get("/admin/stats").status_code == 401
    assert c.get("/admin/stats", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/admin/stats", headers=admin).status_code == 200
    assert c.post("/v1/route", json=body, headers=admin).status_code == 403
    # a key revoked through the app stops working at once (the verified-key cache forgets it)
    key = c.post("/admin/users/alice/keys", headers=admin).json()["key"]
    h = {"Authorization": f"Bearer {key}"}
    assert c.post("/v1/route", json=body, headers=h).status_code == 200
    prefix = key.split("_")[1]
    listed = c.get("/admin/users/alice/keys", headers=admin).json()
    assert prefix in [k["prefix"] for k in listed] and key not in str(listed)
    assert c.delete(f"/admin/keys/{prefix}", headers=admin).status_code == 200
    listed = {k["prefix"]: k for k in c.get("/admin/users/alice/keys", headers=admin).json()}
    assert listed[prefix]["revoked_at"] is not None
    assert c.post("/v1/route", json=body, headers=h).status_code == 401
    assert c.delete(f"/admin/keys/{prefix}", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 422, "prompt"),
        ({"prompt": "a", "embedding": [0.0] * 16}, 422, "not several"),
        ({"prompt": "   "}, 422, "empty"),
        ({"prompt": 3}, 422, "prompt"),
        ({"embedding": [1.0, 2.0]}, 422, "16"),
        ({"messages": [{"role": "user"}]}, 422, "content"),
        ({"prompt": "a", "allowed": ["gpt-9"]}, 400, "gpt-9"),
        ({"prompt": "a", "max_cost": -1}, 422, "max_cost"),
        ({"prompt": "a", "max_cost": 1e-12}, 422, "max_cost"),
        ({"prompt": "x" * 200_001}, 422, "max_prompt_chars"),
    ],
)
def test_bad_route_bodies_say_what_to_fix(env, body, status, says):
    r = env["client"].post("/v1/route", json=body, headers=env["alice"])
    assert r.status_code == status, r.text
    assert says in _err(r)["message"]


def test_bad_json_nan_and_oversized_bodies_are_4xx(env):
    c, alice = env["client"], env["alice"]
    h = {**alice, "content-type": "application/json"}
    r = c.post("/v1/route", content=b'{"prompt": ', headers=h)
    assert r.status_code == 422 and _err(r)["code"] == "invalid_request"
    r = c.post("/v1/route", content=b'{"embedding": [NaN' + b", 0.0" * 15 + b"]}", headers=h)
    assert r.status_code == 422 and "embedding" in _err(r)["message"]
    r = c.post("/v1/feedback", content=b'{"decision_id": "x", "reward": Infinity}', headers=h)
    assert r.status_code == 422 and "reward" in _err(r)["message"]
    r = c.post("/v1/route", content=b'{"prompt": "' + b"a" * 5_000_000 + b'"}', headers=h)
    assert r.status_code == 413 and "max_body_bytes" in _err(r)["message"]


@pytest.mark.parametrize(
    ("patch", "status", "says"),
    [
        ({"reward": 7.0}, 422, "range"),
        ({"cost": -1.0}, 422, "cost"),
        ({"usage": {"prompt_tokens": 3}}, 422, "output_tokens"),
        ({"usage": {"prompt_tokens": -3, "completion_tokens": 1}}, 422, "usage"),
        ({"decision_id": ""}, 422, "decision_id"),
    ],
)
def test_bad_feedback_bodies_say_what_to_fix(env, patch, status, says):
    c, alice = env["client"], env["alice"]
    d = c.post("/v1/route", json={"prompt": "q"}, headers=alice).json()
    r = c.post("/v1/feedback", json={"decision_id": d["decision_id"], "reward": 1.0, **patch},
               headers=alice)  # fmt: skip
    assert r.status_code == status, r.text
    assert says in _err(r)["message"]
    assert env["router"].stores.decisions.feedback_for(d["decision_id"]) is None


def test_budget_exhausted_is_402_with_the_reset_time(env):
    c, admin = env["client"], env["admin"]
    r = c.post("/admin/users", json={"name": "carol", "budget_usd": 1e-9, "period": "daily"},
               headers=admin)  # fmt: skip
    assert r.status_code == 201
    key = c.post("/admin/users/carol/keys", headers=admin).json()["key"]
    r = c.post("/v1/route", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 402
    e = _err(r)
    assert e["code"] == "budget_exhausted" and "resets at" in e["message"]
    resets = datetime.fromisoformat(e["resets_at"].replace("Z", "+00:00"))
    now = datetime.now(UTC)
    assert 0 < (resets - now).total_seconds() <= 86_400
    assert 0 < int(r.headers["retry-after"]) <= 86_400
    assert set(e["excluded"]) == {"broken", "cheap", "good"}
    # the same through the proxy
    r = c.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
               json={"model": "router", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert r.status_code == 402 and _err(r)["resets_at"] == e["resets_at"]


def test_a_model_the_budget_cannot_pay_is_402_not_a_constraint_error(env):
    c, admin = env["client"], env["admin"]
    c.post("/admin/users", json={"name": "dan", "budget_usd": 1e-4, "period": "daily"},
           headers=admin)  # fmt: skip
    h = {"Authorization": f"Bearer {c.post('/admin/users/dan/keys', headers=admin).json()['key']}"}
    r = c.post("/v1/route", json={"prompt": "hi", "allowed": ["good"]}, headers=h)
    assert r.status_code == 402
    e = _err(r)
    assert "good: unaffordable" in e["message"] and "resets at" in e["message"]
    assert e["resets_at"].endswith("Z")
    # a max_cost that excludes every model is the request's constraint, not the budget
    r = c.post("/v1/route", json={"prompt": "hi", "max_cost": 1e-12}, headers=h)
    assert r.status_code == 422 and _err(r)["code"] == "no_eligible_model"
    assert (
        c.post("/v1/route", json={"prompt": "hi", "allowed": ["cheap"]}, headers=h).status_code
        == 200
    )


def test_chat_proxy_settles_the_cost_from_the_upstream_usage(env):
    c, alice, router = env["client"], env["alice"], env["router"]
    body = {"model": "cheap", "messages": [{"role": "user", "content": "Say 42."}]}
    r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 200, r.text
    assert r.headers["x-router-model"] == "cheap"
    did = r.headers["x-router-decision-id"]
    est = float(r.headers["x-router-estimated-cost"])
    assert router.stores.decisions.get(did).estimated_cost == pytest.approx(est)
    assert r.json()["choices"][0]["message"]["content"] == answer_text("up-cheap")
    sent = env["upstream"].state.requests[-1]
    assert sent["model"] == "up-cheap" and sent["body"]["messages"] == body["messages"]
    f = c.post("/v1/feedback", json={"decision_id": did, "reward": 1}, headers=alice).json()
    u = usage_of("up-cheap")
    assert f["cost"] == pytest.approx(MODELS[1].cost(PROMPT_TOKENS, u["completion_tokens"]))
    assert not math.isclose(f["cost"], est)
    assert router.stores.ledger.state("alice").spent == pytest.approx(f["cost"])


def test_chat_proxy_retries_the_next_best_model_and_releases_the_reservation(env):
    c, alice, router = env["client"], env["alice"], env["router"]
    body = {"model": "router", "messages": [{"role": "user", "content": "retry me"}]}
    h = {**alice, "x-router-allowed": "broken,good"}  # the allocator prefers the cheaper one
    finals, retried = [], 0
    for _ in range(6):
        r = c.post("/v1/chat/completions", json=body, headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["x-router-model"] == "good"
        retried += r.headers.get("x-router-retried-from") == "broken"
        finals.append(float(r.headers["x-router-estimated-cost"]))
    assert retried >= 1
    state = router.stores.ledger.state("alice")
    # only the answered decisions hold money: the failed ones were released at 0
    assert state.spent == pytest.approx(0.0, abs=1e-12)
    assert state.reserved == pytest.approx(sum(finals))
    assert sum(1 for q in env["upstream"].state.requests if q["model"] == "up-broken") == retried


def test_chat_proxy_without_retry_or_with_no_other_model_is_a_clear_502(env):
    c, alice = env["client"], env["alice"]
    body = {"model": "broken", "messages": [{"role": "user", "content": "x"}]}
    r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 502
    e = _err(r)
    assert e["code"] == "upstream_error" and "broken answered HTTP 500" in e["message"]
    assert env["router"].stores.ledger.state("alice").reserved == pytest.approx(0.0, abs=1e-12)


def test_chat_proxy_passes_request_errors_through_and_releases(env):
    c, alice = env["client"], env["alice"]
    env["upstream"].state.modes["up-cheap"] = "reject"
    body = {"model": "cheap", "messages": [{"role": "user", "content": "x"}], "temperature": 9}
    r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 400 and r.json()["error"]["message"] == "bad temperature"
    assert r.headers["x-router-model"] == "cheap" and "x-router-decision-id" not in r.headers
    assert env["upstream"].state.requests[-1]["body"]["temperature"] == 9
    assert env["router"].stores.ledger.state("alice").reserved == pytest.approx(0.0, abs=1e-12)


def test_chat_model_names(env):
    c, alice, router = env["client"], env["alice"], env["router"]
    msgs = [{"role": "user", "content": "x"}]
    r = c.post("/v1/chat/completions", json={"model": "router:lints", "messages": msgs},
               headers=alice)  # fmt: skip
    assert r.status_code == 400 and "'router:linucb'" in _err(r)["message"]
    r = c.post("/v1/chat/completions", json={"model": "gpt-9", "messages": msgs}, headers=alice)
    assert r.status_code == 400 and "cheap" in _err(r)["message"]
    r = c.post("/v1/chat/completions", json={"model": "router:linucb", "messages": msgs,
               "stream": False}, headers={**alice, "x-router-allowed": "good"})  # fmt: skip
    assert r.status_code == 200 and r.headers["x-router-model"] == "good"
    r = c.post("/v1/chat/completions", json={"model": "router", "messages": []}, headers=alice)
    assert r.status_code == 422
    # a tool-call turn has no text: the others are routed on, the request goes up unchanged
    turns = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function",
         "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "sunny"},
    ]  # fmt: skip
    r = c.post("/v1/chat/completions", json={"model": "router", "messages": turns}, headers=alice)
    assert r.status_code == 200 and env["upstream"].state.requests[-1]["body"]["messages"] == turns
    r = c.post("/v1/chat/completions", json={"model": "router", "messages": turns[1:2]},
               headers=alice)  # fmt: skip
    assert r.status_code == 422 and "no text" in _err(r)["message"]
    models = c.get("/v1/models", headers=alice).json()
    assert [m["id"] for m in models["data"]] == ["router", "router:linucb", *router.models]


def test_admin_routes(env):
    c, admin, alice, router = env["client"], env["admin"], env["alice"], env["router"]
    r = c.put("/admin/users/alice/budget", json={"budget_usd": 7, "period": "daily"},
              headers=admin)  # fmt: skip
    assert r.status_code == 200 and r.json()["budget_usd"] == 7.0
    assert router.budget_of("alice").amount_usd == 7.0
    assert (
        c.put("/admin/users/zed/budget", json={"budget_usd": 1}, headers=admin).status_code == 404
    )
    r = c.put("/admin/users/alice/budget", json={"budget_usd": None}, headers=admin)
    assert r.status_code == 422 and "cannot be removed" in _err(r)["message"]
    assert router.budget_of("alice").amount_usd == 7.0
    r = c.post("/admin/users", json={"name": "x", "budget_usd": 1, "period": "fortnightly"},
               headers=admin)  # fmt: skip
    assert r.status_code == 422 and "period" in _err(r)["message"].lower()
    users = {u["name"]: u for u in c.get("/admin/users", headers=admin).json()}
    assert users["alice"]["remaining_usd"] == 7.0
    new = {"name": "mini", "input_price_per_mtok": 0.01, "output_price_per_mtok": 0.02,
           "upstream": {"base_url": "http://upstream/v1", "upstream_model": "up-mini"}}  # fmt: skip
    assert c.post("/admin/models", json=new, headers=admin).status_code == 201
    assert c.post("/admin/models", json=new, headers=admin).status_code == 400
    r = c.post("/v1/chat/completions", headers=alice,
               json={"model": "mini", "messages": [{"role": "user", "content": "x"}]})  # fmt: skip
    assert r.status_code == 200 and r.json()["model"] == "up-mini"
    r = c.put("/admin/models/mini/price", json={"output_price_per_mtok": 0.5}, headers=admin)
    assert r.status_code == 200
    assert router.catalogue[-1].output_price_per_mtok == 0.5
    assert c.put("/admin/models/mini/price", json={}, headers=admin).status_code == 422
    assert c.delete("/admin/models/mini", headers=admin).status_code == 200
    assert "mini" not in router.models
    assert c.delete("/admin/models/mini", headers=admin).status_code == 404
    r = c.post("/admin/prior", json={"path": "/nonexistent.prior"}, headers=admin)
    assert r.status_code == 501 and "restart" in _err(r)["message"]
    snap = c.post("/admin/snapshot", headers=admin).json()
    assert router.stores.snapshots.latest().snapshot_id == snap["snapshot_id"]
    stats = c.get("/admin/stats", headers=admin).json()
    assert stats["policy"] == "linucb" and stats["embedding_batches"] >= 1


def test_metrics_and_health(env):
    c, alice = env["client"], env["alice"]
    d = c.post("/v1/route", json={"prompt": "m", "allowed": ["good"]}, headers=alice).json()
    c.post("/v1/feedback", json={"decision_id": d["decision_id"], "reward": 0.5, "cost": 0.25},
           headers=alice)  # fmt: skip
    text = c.get("/metrics").text
    assert 'router_decisions_total{model="good",reason="' in text
    assert 'router_mean_reward{model="good"} 0.5' in text
    assert 'router_feedback_total{model="good"} 1.0' in text
    assert "router_route_latency_seconds_count 1.0" in text
    assert 'router_user_spend_usd{user="alice"} 0.25' in text
    assert 'router_user_budget_remaining_usd{user="alice"} 99.75' in text
    assert "router_embedding_latency_seconds_count" in text
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json()["status"] == "ready"


# ---- the batching embedder ------------------------------------------------------------------


class _Counting:
    name, dim = "counting", 4

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def embed(self, texts):
        self.calls.append(len(texts))
        if self.fail:
            raise RuntimeError("encoder down")
        return np.array([[len(t), 1.0, 0.0, float(i)] for i, t in enumerate(texts)])


def test_batching_embedder_batches_concurrent_texts_and_caches():
    inner = _Counting()

    async def main():
        b = BatchingEmbedder(inner, window_s=0.05, max_batch=8)
        texts = [f"t{i:02d}" + "x" * i for i in range(20)]
        vecs = await asyncio.gather(*(b.embed(t) for t in texts))
        again = await b.embed(texts[3])
        await b.aclose()
        return texts, vecs, again

    texts, vecs, again = asyncio.run(main())
    assert inner.calls == [8, 8, 4]
    assert [v[0] for v in vecs] == [len(t) for t in texts]
    assert again[0] == len(texts[3]) and inner.calls == [8, 8, 4]  # served from the cache


def test_batching_embedder_errors_reach_every_caller():
    async def main():
        b = BatchingEmbedder(_Counting(fail=True), window_s=0.01, max_batch=8, cache_size=0)
        out = await asyncio.gather(*(b.embed(str(i)) for i in range(3)), return_exceptions=True)
        await b.aclose()
        return out

    out = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) and "encoder down" in str(e) for e in out)


def test_service_settings_messages():
    from bandit_router.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"service\.upstreams\.m"):
        ServiceSettings.from_dict({"upstreams": {"m": {"base_url": "ftp://x"}}})
    with pytest.raises(ConfigurationError, match="unknown service key"):
        ServiceSettings.from_dict({"admin": "x"})
    with pytest.raises(ConfigurationError, match="at least 8"):
        ServiceSettings(admin_key="short")
    s = ServiceSettings(upstreams={"nope": {"base_url": "http://x"}})
    with pytest.raises(ConfigurationError, match="not in the catalogue"):
        s.check_models(["a"])
    assert json.loads(json.dumps(ServiceSettings().cors_origins)) == []


def test_the_admin_key_may_be_given_as_its_hash_only():
    from bandit_router.errors import ConfigurationError
    from bandit_router.service.auth import hash_admin_key

    router = Router([ModelSpec("m", 0.1, 0.4)], HashingEmbedder(dim=8), None,
                    make_policy("linucb", ["m"], 9, seed=0))  # fmt: skip
    settings = ServiceSettings(admin_key_hash=hash_admin_key(ADMIN), expire_interval_s=None)
    with TestClient(create_app(router, settings, keys=MemoryKeyStore())) as c:
        assert (
            c.get("/admin/stats", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
        )
        assert (
            c.get("/admin/stats", headers={"Authorization": f"Bearer {ADMIN}x"}).status_code == 401
        )
    with pytest.raises(ConfigurationError, match="hash_admin_key"):
        ServiceSettings(admin_key_hash="md5$00$11")


def test_the_app_settles_decisions_whose_feedback_never_came():
    import time

    router = Router(
        [ModelSpec("m", 0.1, 0.4)], HashingEmbedder(dim=8), None,
        make_policy("linucb", ["m"], 9, seed=0), feedback_wait_seconds=0.05, default_reward=0.0,
    )  # fmt: skip
    from bandit_router.budget import Budget

    router.set_user("ann", Budget(5.0, "daily"))
    keys = MemoryKeyStore()
    h = {"Authorization": f"Bearer {keys.issue('ann')}"}
    settings = ServiceSettings(expire_interval_s=0.05)
    with TestClient(create_app(router, settings, keys=keys)) as c:
        d = c.post("/v1/route", json={"prompt": "never answered"}, headers=h).json()
        for _ in range(400):  # the background task runs every 50 ms; bounded wait, no timing claim
            if router.stores.decisions.feedback_for(d["decision_id"]) is not None:
                break
            time.sleep(0.025)
        f = router.stores.decisions.feedback_for(d["decision_id"])
        assert f is not None and f.is_default and f.reward == 0.0
        state = router.stores.ledger.state("ann")
        assert state.reserved == pytest.approx(0.0, abs=1e-12)
        assert state.spent == pytest.approx(d["estimated_cost"])
        late = c.post("/v1/feedback", json={"decision_id": d["decision_id"], "reward": 1},
                      headers=h)  # fmt: skip
        assert late.status_code == 410 and "wait time" in _err(late)["message"]
        assert 'router_feedback_total{model="m"} 1.0' in c.get("/metrics").text


def _sse_text(raw: str) -> tuple[str, list[dict]]:
    events = [json.loads(line[5:]) for line in raw.splitlines()
              if line.startswith("data:") and line[5:].strip() != "[DONE]"]  # fmt: skip
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    return text, events


def test_streaming_in_process_and_an_upstream_that_refuses_stream_options(env):
    c, alice, up = env["client"], env["alice"], env["upstream"]
    body = {"model": "cheap", "stream": True, "messages": [{"role": "user", "content": "s"}]}
    r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    text, events = _sse_text(r.text)
    assert text == answer_text("up-cheap") and all(e["choices"] for e in events)
    assert env["router"].stores.decisions.get(r.headers["x-router-decision-id"]) is not None

    up.state.modes["up-cheap"] = "no_stream_options"
    n = len(up.state.requests)
    r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 200 and _sse_text(r.text)[0] == answer_text("up-cheap")
    sent = [q["body"] for q in up.state.requests[n:]]
    assert [("stream_options" in b) for b in sent] == [True, False]
    did = r.headers["x-router-decision-id"]
    f = c.post("/v1/feedback", json={"decision_id": did, "reward": 1}, headers=alice).json()
    assert f["cost"] == pytest.approx(float(r.headers["x-router-estimated-cost"]))  # no usage


def test_a_missing_provider_key_is_a_clear_error_and_cors_exposes_the_router_headers(
    monkeypatch,
):
    monkeypatch.delenv("NO_SUCH_PROVIDER_KEY", raising=False)
    router = Router([ModelSpec("m", 0.1, 0.4)], HashingEmbedder(dim=8), None,
                    make_policy("linucb", ["m"], 9, seed=0))  # fmt: skip
    upstream = make_app()
    settings = ServiceSettings(
        upstreams={"m": {"base_url": "http://upstream/v1", "api_key_env": "NO_SUCH_PROVIDER_KEY"}},
        cors_origins=["https://app.example"],
        expire_interval_s=None,
    )
    keys = MemoryKeyStore()
    h = {"Authorization": f"Bearer {keys.issue('ann')}"}
    app = create_app(router, settings, keys=keys,
                     upstream_transport=httpx.ASGITransport(app=upstream))  # fmt: skip
    body = {"model": "router", "messages": [{"role": "user", "content": "x"}]}
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json=body, headers=h)
        assert r.status_code == 502
        assert "NO_SUCH_PROVIDER_KEY" in _err(r)["message"] and not upstream.state.requests
        monkeypatch.setenv("NO_SUCH_PROVIDER_KEY", "sk-test")
        r = c.post("/v1/chat/completions", json=body,
                   headers={**h, "Origin": "https://app.example"})  # fmt: skip
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-router-decision-id" in r.headers["access-control-expose-headers"]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_router_release_frees_the_reservation_without_learning(store, tmp_path):
    from bandit_router.budget import Budget
    from bandit_router.errors import DecisionExpiredError, FeedbackConflictError
    from bandit_router.storage import open_router_stores

    stores = memory_stores() if store == "memory" else open_router_stores(
        f"sqlite:///{tmp_path / 'r.db'}"
    )  # fmt: skip
    router = Router([ModelSpec("m", 0.1, 0.4)], HashingEmbedder(dim=8), None,
                    make_policy("linucb", ["m"], 9, seed=0), stores=stores)  # fmt: skip
    router.set_user("ann", Budget(1.0, "daily"))
    a, b = router.route("ann", "first"), router.route("ann", "second")
    assert stores.ledger.state("ann").reserved == pytest.approx(a.estimated_cost * 2)
    with pytest.raises(UnknownDecisionError):
        router.release(a.decision_id, user="bob")
    out = router.release(a.decision_id, user="ann")
    assert out.cost == 0.0 and not out.applied and not out.duplicate
    assert router.release(a.decision_id).duplicate
    state = stores.ledger.state("ann")
    assert state.reserved == pytest.approx(b.estimated_cost) and state.spent == 0.0
    assert router.policy.n_updates == 0 and router.last_feedback_id == out.feedback_id
    with pytest.raises(DecisionExpiredError):
        router.feedback(a.decision_id, 1.0)
    router.feedback(b.decision_id, 1.0, cost=0.01)
    with pytest.raises(FeedbackConflictError):
        router.release(b.decision_id)
    assert router.policy.n_updates == 1


def test_a_conversation_longer_than_the_router_takes_is_routed_on_its_tail(env):
    c, alice, router = env["client"], env["alice"], env["router"]
    long_turns = [
        {"role": "user", "content": "x " * 60_000},
        {"role": "assistant", "content": "y " * 60_000},
        {"role": "user", "content": [{"type": "text", "text": "and now the question"}]},
    ]
    assert sum(len(t["content"]) for t in long_turns[:2]) > router.max_prompt_chars
    body = {"model": "cheap", "messages": long_turns}
    r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 200, r.text
    assert env["upstream"].state.requests[-1]["body"]["messages"] == long_turns  # unchanged
    full = "\n".join(["x " * 60_000, "y " * 60_000, "and now the question"])
    want = router.cost_model.estimate(input_tokens=router.cost_model.input_tokens(full))
    assert float(r.headers["x-router-estimated-cost"]) == pytest.approx(
        float(want[router.models.index("cheap")]), rel=1e-9
    )
    # /v1/route keeps the router's limit: it says what to do
    r = c.post("/v1/route", json={"prompt": "x " * 60_000}, headers=alice)
    assert r.status_code == 422 and "max_prompt_chars" in _err(r)["message"]


class _Recording(_Counting):
    name, dim, max_chars = "recording", 4, 40

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return super().embed(texts)


def test_a_chat_is_routed_on_the_part_the_encoder_reads_its_end():
    emb = _Recording()
    router = Router([ModelSpec("m", 0.1, 0.4)], emb, None, make_policy("linucb", ["m"], 5, seed=0))
    keys = MemoryKeyStore()
    h = {"Authorization": f"Bearer {keys.issue('ann')}"}
    app = create_app(
        router,
        ServiceSettings(upstreams={"m": {"base_url": "http://u/v1"}}, expire_interval_s=None),
        keys=keys,
        upstream_transport=httpx.ASGITransport(app=make_app()),
    )
    turns = [{"role": "user", "content": "an old topic " * 20},
             {"role": "user", "content": "the latest question?"}]  # fmt: skip
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json={"model": "router", "messages": turns}, headers=h)
    assert r.status_code == 200
    assert emb.texts[-1].endswith("\nthe latest question?") and len(emb.texts[-1]) <= 40


def test_batching_embedder_survives_a_bad_batch_and_a_failing_callback():
    class Short(_Counting):
        def embed(self, texts):
            out = super().embed(texts)
            return out[:-1] if len(texts) > 1 else out

    def boom(n, s):
        raise RuntimeError("metrics down")

    async def main():
        b = BatchingEmbedder(Short(), window_s=0.05, max_batch=8, cache_size=0, on_batch=boom)
        bad = await asyncio.gather(b.embed("a"), b.embed("bb"), return_exceptions=True)
        good = await b.embed("ccc")  # the worker still serves
        await b.aclose()
        return bad, good

    bad, good = asyncio.run(main())
    assert all("expected (2, 4)" in str(e) for e in bad)
    assert good[0] == 3.0
