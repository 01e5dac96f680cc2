"""``create_app``: the FastAPI app over one ``Router``.

The path of one request (``POST /v1/chat/completions`` with ``model: "router"``):
the body-size guard -> the bearer key (``KeyStore.verify`` in a worker thread, cached) ->
the prompt text (``Router.text_of``) -> the batching embedder (one encoder call per batch,
in a worker thread) -> ``Router.route(user, embedding=..., input_tokens=...)`` in the thread
pool (the decision and its reservation are committed there) -> the chosen model's upstream
(``httpx.AsyncClient``; on an error or timeout the reservation is released and the
next-best model is tried once) -> the answer streamed back unchanged with the
``x-router-*`` headers -> the upstream's ``usage`` kept for the decision's feedback.

>>> from bandit_router.catalogue import ModelSpec
>>> from bandit_router.embeddings import HashingEmbedder
>>> from bandit_router.policies import make_policy
>>> from bandit_router.router import Router
>>> from fastapi.testclient import TestClient
>>> router = Router([ModelSpec("small", 0.1, 0.4)], HashingEmbedder(dim=8), None,
...                 make_policy("linucb", ["small"], 9, seed=0))
>>> keys = MemoryKeyStore()
>>> key = keys.issue("alice")
>>> app = create_app(router, ServiceSettings(), keys=keys)
>>> with TestClient(app) as client:
...     r = client.post("/v1/route", json={"prompt": "hi"},
...                     headers={"Authorization": f"Bearer {key}"})
...     f = client.post("/v1/feedback", json={"decision_id": r.json()["decision_id"],
...                     "reward": 1}, headers={"Authorization": f"Bearer {key}"})
>>> r.status_code, r.json()["model"], f.json()["applied"]
(200, 'small', True)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bandit_router.service import admin, proxy, routes_router
from bandit_router.service.auth import (  # MemoryKeyStore: for the doctest
    CachedKeyStore,
    KeyStore,
    MemoryKeyStore,  # noqa: F401
)
from bandit_router.service.batching import BatchingEmbedder
from bandit_router.service.errors import error_body, install_error_handlers
from bandit_router.service.metrics import CONTENT_TYPE, ServiceMetrics
from bandit_router.service.settings import ServiceSettings
from bandit_router.service.state import ServiceState

log = logging.getLogger("bandit_router.service")


class _BodyLimit:
    """Refuse bodies larger than ``limit`` bytes with 413 (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        resp = JSONResponse(
            error_body(
                f"the request body is larger than {self.limit} bytes (service.max_body_bytes); "
                "send a shorter prompt.",
                "invalid_request_error",
                "body_too_large",
            ),
            status_code=413,
        )
        await resp({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _accounts(router: Any):
    def rows():
        for u in router.stores.users.list():
            if u.budget is None:
                continue
            s = router.stores.ledger.state(u.name)
            yield u.name, float(s.committed), float(s.remaining)

    return rows


def create_app(
    router: Any,
    settings: ServiceSettings,
    *,
    keys: KeyStore,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The HTTP app over ``router``.

    ``keys`` verifies bearer API keys (``DirectoryKeyStore(stores.users)`` on the durable
    store; wrapped here in a short-lived ``CachedKeyStore``). ``upstream_transport``
    replaces the network for the upstream calls (tests). The app's lifespan starts and
    stops its HTTP client, batching embedder and the periodic ``router.expire``; it writes
    no snapshot on shutdown (``bandit-router serve`` does).
    """
    if not isinstance(settings, ServiceSettings):
        raise TypeError("settings must be a ServiceSettings (ServiceSettings.from_dict(...)).")
    settings.check_models([r.spec.name for r in router.stores.models.list()] or router.models)
    metrics = ServiceMetrics(_accounts(router))
    batcher = None
    if router.embedder is not None:
        batcher = BatchingEmbedder(
            router.embedder,
            window_s=settings.batch_window_ms / 1000.0,
            max_batch=settings.max_batch,
            cache_size=settings.embed_cache_size,
            on_batch=metrics.embedded,
        )
    cached = (
        keys if isinstance(keys, CachedKeyStore) else CachedKeyStore(keys, settings.key_cache_s)
    )
    state = ServiceState(
        router=router,
        settings=settings,
        keys=cached,
        metrics=metrics,
        batcher=batcher,
        upstreams=dict(settings.upstreams),
        transport=upstream_transport,
    )

    engine = getattr(router.stores, "engine", None)
    inline = settings.inline_store_calls
    if inline is None:  # auto: local stores (SQLite, memory), not a database over the network
        inline = engine is None or engine.dialect.name == "sqlite"
    if inline:
        state.inline_lock = router.lock  # the Router's re-entrant lock of route / feedback
    if settings.sync_interval_s is not None and engine is not None and _shared(engine):
        from bandit_router.sync import StoreSync

        state.sync = StoreSync(router, interval=settings.sync_interval_s)
        metrics.watch_sync(state.sync, router)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.http()
        if settings.expire_interval_s is not None:
            state.tasks.append(asyncio.create_task(_expire_loop(state)))
        if settings.retention_s is not None:
            state.tasks.append(asyncio.create_task(_prune_loop(state)))
        if state.sync is not None:
            state.sync.start()
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            if state.sync is not None:
                await state.blocking(state.sync.stop)
            for t in state.tasks:
                t.cancel()
            for t in state.tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            state.tasks.clear()
            if batcher is not None:
                await batcher.aclose()
            if state.client is not None:
                await state.client.aclose()
                state.client = None

    app = FastAPI(
        title="bandit-router",
        summary="A self-hosted LLM router that learns online.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-router-decision-id", "x-router-model", "x-router-estimated-cost"],
        )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.include_router(routes_router.api)
    app.include_router(proxy.api)
    app.include_router(admin.api)

    @app.get("/healthz", tags=["ops"], summary="The process is up.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="The router and its store answer.")
    async def readyz(request: Request) -> JSONResponse:
        st: ServiceState = request.app.state.service
        if not st.ready:
            return JSONResponse({"status": "stopping"}, status_code=503)
        sync = None
        if st.sync is not None:
            age = st.sync.age()
            sync = {
                "pid": os.getpid(),
                "healthy": st.sync.healthy,
                "age_s": None if age is None else round(age, 3),
                "last_feedback_id": st.router.last_feedback_id,
                "last_lag_s": st.sync.last_lag_s,
                "last_lag_feedback_id": st.sync.last_lag_id,
                "snapshot_writer": st.sync.is_snapshot_writer(),
                "last_error": st.sync.last_error,
            }
        try:
            await st.blocking(st.router.stores.models.list)
        except Exception as exc:
            # routing state stays in memory, but decisions, feedback and reservations
            # cannot be recorded: they answer 503 until the database is back
            return JSONResponse(
                {
                    "status": "unavailable",
                    "store": "unreachable",
                    "reason": f"the store does not answer: {exc}",
                    "sync": sync,
                },
                status_code=503,
            )
        body = {"status": "ready", "models": list(st.router.models)}
        if sync is not None:
            body["sync"] = sync
        return JSONResponse(body)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics.")
    async def metrics_route(request: Request):
        from fastapi.responses import Response

        st: ServiceState = request.app.state.service
        body = await st.blocking(st.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    return app


def _shared(engine: Any) -> bool:
    """Whether other processes can write to this database (not an in-memory SQLite)."""
    return engine.dialect.name != "sqlite" or engine.url.database not in (None, "", ":memory:")


async def _prune_loop(state: ServiceState) -> None:
    """Every ``prune_interval_s``: ``Router.prune(retention_s)`` in the process that
    writes the snapshots (the other processes of a scale-out leave it to that one)."""
    settings = state.settings
    assert settings.retention_s is not None
    while True:
        await asyncio.sleep(settings.prune_interval_s)
        gate = state.router.snapshot_gate
        if gate is not None and not gate():
            continue
        try:
            counts = await state.blocking(state.router.prune, settings.retention_s)
            if any(counts.values()):
                log.info("pruned the history older than %g s: %s", settings.retention_s, counts)
        except Exception:  # keep the service up; the next round retries
            log.exception("pruning old history failed")


async def _expire_loop(state: ServiceState) -> None:
    interval = state.settings.expire_interval_s
    assert interval is not None
    while True:
        await asyncio.sleep(interval)
        try:
            done = await state.blocking(state.router.expire)
            for f in done:
                state.metrics.feedback(f.model, f.reward, None, f.cost)
        except Exception:  # keep expiring; the next round retries
            log.exception("expiring decisions failed")
