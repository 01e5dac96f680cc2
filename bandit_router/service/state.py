"""What one app holds between requests: the router, its settings, keys, metrics, the
batching embedder, the upstream HTTP client and the usage of proxied answers.

``UsageBook`` remembers the token usage an upstream reported for a proxied decision until
its feedback arrives (feedback without a cost or usage then settles at the actual cost).
It is bounded and in memory: after a restart such feedback settles at the estimate unless
the client sends the usage it received.

>>> book = UsageBook(maxsize=2)
>>> book.put("d1", {"prompt_tokens": 3, "completion_tokens": 5}); book.put("d2", {}); book.put("d3", {})
>>> book.get("d1") is None, book.get("d3")
(True, {})
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


class UsageBook:
    """decision id -> the upstream's ``usage`` mapping, the newest ``maxsize`` kept.

    >>> book = UsageBook()
    >>> book.put("d", {"prompt_tokens": 1, "completion_tokens": 2}); book.pop("d"); book.get("d")
    """

    def __init__(self, maxsize: int = 200_000) -> None:
        self.maxsize = int(maxsize)
        self._d: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, decision_id: str, usage: Mapping[str, Any]) -> None:
        with self._lock:
            self._d[decision_id] = dict(usage)
            self._d.move_to_end(decision_id)
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def get(self, decision_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._d.get(decision_id)

    def pop(self, decision_id: str) -> None:
        with self._lock:
            self._d.pop(decision_id, None)


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
    client: httpx.AsyncClient | None = None
    transport: httpx.AsyncBaseTransport | None = None
    ready: bool = True
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

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
