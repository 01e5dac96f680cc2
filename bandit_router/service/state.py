"""What one app holds between requests: the router, its settings, keys, metrics, the
batching embedder, the upstream HTTP client and the usage of proxied answers.

``UsageBook`` remembers the token usage an upstream reported for a proxied decision until
its feedback arrives (feedback without a cost or usage then settles at the actual cost).
It is bounded and in memory: after a restart such feedback settles at the estimate unless
the client sends the usage it received.

>>> book = UsageBook(maxsize=2)
>>> for d in ("d1", "d2", "d3"):
...     book.put(d, {"prompt_tokens": 3, "completion_tokens": 5})
>>> book.get("d1") is None, book.get("d3")
(True, {'input_tokens': 3.0, 'output_tokens': 5.0})
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from starlette.concurrency import run_in_threadpool

from bandit_router.service.auth import CachedKeyStore
from bandit_router.service.batching import BatchingEmbedder
from bandit_router.service.metrics import ServiceMetrics
from bandit_router.service.settings import ServiceSettings, Upstream

T = TypeVar("T")


def _count(usage: Mapping[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = usage.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf"):
            return float(v)
    return None


class UsageBook:
    """decision id -> (input tokens, output tokens) an upstream reported, the newest
    ``maxsize`` kept; a usage without both counts is not kept (the estimate rules then).

    >>> book = UsageBook()
    >>> book.put("d", {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    >>> book.get("d")
    {'input_tokens': 1.0, 'output_tokens': 2.0}
    >>> book.put("e", {"prompt_tokens": "many"}); book.get("e") is None
    True
    """

    def __init__(self, maxsize: int = 200_000) -> None:
        self.maxsize = int(maxsize)
        self._d: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, decision_id: str, usage: Mapping[str, Any]) -> None:
        n_in = _count(usage, "prompt_tokens", "input_tokens")
        n_out = _count(usage, "completion_tokens", "output_tokens")
        if n_in is None or n_out is None:
            return
        with self._lock:
            self._d[decision_id] = (n_in, n_out)
            self._d.move_to_end(decision_id)
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def get(self, decision_id: str) -> dict[str, float] | None:
        with self._lock:
            got = self._d.get(decision_id)
        return None if got is None else {"input_tokens": got[0], "output_tokens": got[1]}

    def pop(self, decision_id: str) -> None:
        with self._lock:
            self._d.pop(decision_id, None)


class RecentTimes:
    """decision id -> when this app routed it, the newest ``maxsize`` kept: the feedback
    delay metric then needs no read of the decision (after a restart, or for a decision
    another process routed, the caller reads it).

    >>> t = RecentTimes(maxsize=1)
    >>> t.put("a", 1.0); t.put("b", 2.0)
    >>> t.pop("a"), t.pop("b"), t.pop("b")
    (None, 2.0, None)
    """

    def __init__(self, maxsize: int = 200_000) -> None:
        self.maxsize = int(maxsize)
        self._d: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, decision_id: str, t: float) -> None:
        with self._lock:
            self._d[decision_id] = t
            if len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def pop(self, decision_id: str) -> float | None:
        with self._lock:
            return self._d.pop(decision_id, None)


@dataclass
class ServiceState:
    """Everything the routes share; ``app.state.service``."""

    router: Any
    settings: ServiceSettings
    keys: CachedKeyStore
    metrics: ServiceMetrics
    batcher: BatchingEmbedder | None
    upstreams: dict[str, Upstream]
    usage: UsageBook = field(default_factory=UsageBook)
    routed_at: RecentTimes = field(default_factory=RecentTimes)
    client: httpx.AsyncClient | None = None
    transport: httpx.AsyncBaseTransport | None = None
    ready: bool = True
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    #: ``bandit_router.sync.StoreSync`` of this process (SQL stores only), or None
    sync: Any | None = None
    #: the router's lock when its calls may run on the event loop (``inline_store_calls``)
    inline_lock: Any | None = None
    #: how many router calls ran on the event loop / went to the thread pool
    inline_calls: int = 0
    pooled_calls: int = 0

    def http(self) -> httpx.AsyncClient:
        """The upstream client (made by the app's lifespan, or here on first use)."""
        if self.client is None:
            self.client = httpx.AsyncClient(
                transport=self.transport,
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            )
        return self.client

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (the router, the key store) in the thread pool."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def router_call(self, fn: Callable[[], T]) -> T:
        """Run a call of the router: on the event loop when inline calls are on and the
        router's lock is free at once (a short local transaction: the thread hop and the
        GIL hand-over back cost more than the call), else in the thread pool (the router
        is busy with another call, a sync round or a snapshot; or a remote database)."""
        lock = self.inline_lock
        if lock is not None and lock.acquire(blocking=False):
            try:
                self.inline_calls += 1
                return fn()
            finally:
                lock.release()
        self.pooled_calls += 1
        return await run_in_threadpool(fn)
