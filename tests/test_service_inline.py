"""Router calls on the event loop (``service.inline_store_calls``): a route or feedback runs
inline only when the router's lock is free at once; when the router is busy (another call,
a sync round, a snapshot) it waits in the thread pool instead of blocking the event loop.
Request bodies parsed by orjson give the same answers and the same errors."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from bandit_router.catalogue import ModelSpec
from bandit_router.embeddings import HashingEmbedder
from bandit_router.errors import ConfigurationError
from bandit_router.policies import make_policy
from bandit_router.router import Router
from bandit_router.service import MemoryKeyStore, ServiceSettings, create_app


def _app(**settings):
    router = Router(
        [ModelSpec("small", 0.1, 0.4), ModelSpec("large", 5.0, 15.0)],
        HashingEmbedder(dim=8),
        None,
        make_policy("linucb", ["small", "large"], 9, seed=0),
    )
    keys = MemoryKeyStore()
    key = keys.issue("alice")
    app = create_app(router, ServiceSettings(**settings), keys=keys)
    return app, router, {"Authorization": f"Bearer {key}"}


def test_route_and_feedback_run_inline_when_the_router_is_free():
    app, _, auth = _app()
    state = app.state.service
    with TestClient(app) as client:
        r = client.post("/v1/route", json={"embedding": [0.1] * 8}, headers=auth)
        f = client.post(
            "/v1/feedback", json={"decision_id": r.json()["decision_id"], "reward": 1}, headers=auth
        )
    assert r.status_code == f.status_code == 200 and f.json()["applied"]
    assert (state.inline_calls, state.pooled_calls) == (2, 0)


def test_a_busy_router_sends_the_call_to_the_thread_pool_and_the_loop_stays_free():
    app, router, auth = _app()
    state = app.state.service
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another call holding the router's lock for a while
        with router.lock:
            held.set()
            release.wait(180)  # a guard against a hang, not a speed limit

    with TestClient(app) as client:
        t = threading.Thread(target=hold)
        t.start()
        held.wait(180)
        out: dict = {}
        req = threading.Thread(
            target=lambda: out.setdefault(
                "r", client.post("/v1/route", json={"embedding": [0.1] * 8}, headers=auth)
            )
        )
        req.start()
        deadline = time.monotonic() + 180  # a guard against a hang, not a speed limit
        while state.pooled_calls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        # the route waits in the pool; the event loop still answers other requests
        assert client.get("/healthz").status_code == 200
        assert "r" not in out
        release.set()
        req.join(180)
        t.join(180)
    assert out["r"].status_code == 200
    assert (state.inline_calls, state.pooled_calls) == (0, 1)


def test_inline_calls_can_be_turned_off_and_the_setting_is_checked():
    app, _, auth = _app(inline_store_calls=False)
    with TestClient(app) as client:
        assert client.post("/v1/route", json={"prompt": "hi"}, headers=auth).status_code == 200
    assert (app.state.service.inline_calls, app.state.service.pooled_calls) == (0, 1)
    with pytest.raises(ConfigurationError, match="inline_store_calls"):
        ServiceSettings(inline_store_calls="yes")


def test_bodies_parsed_by_orjson_keep_the_standard_errors():
    app, _, auth = _app()
    h = {**auth, "Content-Type": "application/json"}
    with TestClient(app) as client:
        ok = client.post(
            "/v1/route",
            content=b'{"embedding": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}',
            headers=h,
        )
        broken = client.post("/v1/route", content=b'{"embedding": [0.1,', headers=h)
        nan = client.post(
            "/v1/route", content=b'{"embedding": [NaN, 0, 0, 0, 0, 0, 0, 0]}', headers=h
        )
    assert ok.status_code == 200
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_request"
    assert nan.status_code == 422  # orjson refuses NaN; the standard parser reads it, then
    # the validation (finite numbers only) refuses it, as before


def test_a_cached_prompt_is_answered_without_waiting_for_the_batching_window():
    import asyncio

    from bandit_router.service.batching import BatchingEmbedder

    async def main():
        b = BatchingEmbedder(HashingEmbedder(dim=8), window_s=0.05, max_batch=64)
        first = await b.embed("hello")
        queued = b._queue.qsize() if b._queue is not None else 0
        again = await b.embed("hello")  # from the cache: never queued, no batch formed
        await b.aclose()
        return first, again, queued, b.batches, b.embedder.hits

    first, again, queued, batches, hits = asyncio.run(main())
    assert (again == first).all() and queued == 0 and batches == 1 and hits == 1
