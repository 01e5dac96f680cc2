"""The batching embedder: concurrent requests' prompts embedded together.

Requests put their text on a queue and await a future; one worker task takes the first
text, waits up to ``window_s`` for more (at most ``max_batch``), and embeds the batch with
one call of the embedder in a worker thread (the event loop never blocks). An exact-text
LRU cache (``CachedEmbedder``) sits in front, so a repeated prompt costs no encoder time;
a prompt found there is answered at once, without waiting for the batching window. One
batch is in flight at a time, so the cache is filled by one thread.

>>> import asyncio
>>> from bandit_router.embeddings import HashingEmbedder
>>> async def main():
...     b = BatchingEmbedder(HashingEmbedder(dim=8), window_s=0.01, max_batch=4)
...     vecs = await asyncio.gather(*(b.embed(t) for t in ["a", "b", "a"]))
...     await b.aclose()
...     return [v.shape for v in vecs], b.batches
>>> asyncio.run(main())
([(8,), (8,), (8,)], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import numpy as np

from bandit_router.embeddings.cache import CachedEmbedder
from bandit_router.errors import EmbedderError


class BatchingEmbedder:
    """Async ``embed(text) -> (D,)`` over a blocking ``Embedder``, batching callers.

    ``on_batch(n_texts, seconds)`` (optional) is told of every batch (metrics).

    >>> import asyncio
    >>> from bandit_router.embeddings import HashingEmbedder
    >>> async def one():
    ...     b = BatchingEmbedder(HashingEmbedder(dim=4), window_s=0.0)
    ...     v = await b.embed("hello")
    ...     await b.aclose()
    ...     return v.shape, b.batches
    >>> asyncio.run(one())
    ((4,), 1)
    """

    def __init__(
        self,
        embedder: Any,
        *,
        window_s: float = 0.002,
        max_batch: int = 64,
        cache_size: int = 50_000,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if isinstance(embedder, CachedEmbedder):
            embedder = embedder.inner  # our own cache: used by our one worker thread only
        #: the encoder reads at most this many characters of a text (None: all of it)
        self.max_chars: int | None = getattr(embedder, "max_chars", None)
        self.embedder = CachedEmbedder(embedder, maxsize=cache_size) if cache_size else embedder
        self.dim = int(embedder.dim)
        self.window_s = float(window_s)
        self.max_batch = int(max_batch)
        self.on_batch = on_batch
        self.batches = 0
        self.texts = 0
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[np.ndarray]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    def _start(self) -> asyncio.Queue[tuple[str, asyncio.Future[np.ndarray]]]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return self._queue

    async def embed(self, text: str) -> np.ndarray:
        """The embedding ``(D,)`` of one text."""
        lookup = getattr(self.embedder, "lookup", None)
        if lookup is not None:
            hit = lookup(text)
            if hit is not None:
                return np.asarray(hit, dtype=np.float64)
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._start().put((text, fut))
        return await fut

    async def _run(self) -> None:
        q = self._queue
        assert q is not None
        while True:
            batch = [await q.get()]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(q.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(q.get(), left))
                except TimeoutError:
                    break
            live = [(t, f) for t, f in batch if not f.done()]
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                vecs = await anyio.to_thread.run_sync(self.embedder.embed, [t for t, _ in live])
                vecs = np.asarray(vecs, dtype=np.float64)
                if vecs.shape != (len(live), self.dim):
                    raise EmbedderError(
                        f"the embedder returned shape {vecs.shape} for {len(live)} texts, "
                        f"expected ({len(live)}, {self.dim})."
                    )
            except Exception as exc:  # every waiter gets the error; the worker lives on
                for _, f in live:
                    if not f.done():
                        f.set_exception(exc)
                continue
            except asyncio.CancelledError:
                for _, f in live:
                    f.cancel()
                raise
            self.batches += 1
            self.texts += len(live)
            for (_, f), v in zip(live, vecs, strict=True):
                if not f.done():
                    f.set_result(v)
            if self.on_batch is not None:
                with contextlib.suppress(Exception):  # metrics never break embedding
                    self.on_batch(len(live), time.perf_counter() - t0)

    async def aclose(self) -> None:
        """Stop the worker (pending callers get ``CancelledError``)."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                _, f = self._queue.get_nowait()
                f.cancel()
            self._queue = None
