"""An in-memory LRU cache in front of any embedder, batching the misses into one call."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from bandit_router.embeddings.base import Embedder, check_texts, check_vectors, text_key


class CachedEmbedder:
    """LRU cache keyed by the sha1 of the text.

    >>> from bandit_router.embeddings.hashing import HashingEmbedder
    >>> emb = CachedEmbedder(HashingEmbedder(dim=16), maxsize=2)
    >>> _ = emb.embed(["a", "b", "a"])
    >>> emb.hits, emb.misses
    (1, 2)
    """

    def __init__(self, inner: Embedder, maxsize: int = 50_000) -> None:
        self.inner = inner
        self.maxsize = int(maxsize)
        self.name = inner.name
        self.dim = inner.dim
        self._store: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def lookup(self, text: str) -> np.ndarray | None:
        """The cached vector ``(D,)`` of one text, or None (counted as a hit when found).
        Safe to call from another thread than the one that embeds: a text evicted meanwhile
        is simply not found.

        >>> from bandit_router.embeddings.hashing import HashingEmbedder
        >>> emb = CachedEmbedder(HashingEmbedder(dim=4))
        >>> emb.lookup("a") is None, emb.embed(["a"])[0].shape, emb.lookup("a").shape
        (True, (4,), (4,))
        """
        if type(text) is not str:
            return None
        k = text_key(text)
        vec = self._store.get(k)
        if vec is None:
            return None
        try:
            self._store.move_to_end(k)
        except KeyError:  # evicted by the embedding thread in between
            pass
        self.hits += 1
        return vec

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        keys = [text_key(t) for t in texts]
        out = np.empty((len(texts), self.dim))
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            vec = self._store.get(k)
            if vec is None:
                todo.setdefault(k, []).append(i)
            else:
                self._store.move_to_end(k)
                out[i] = vec
                self.hits += 1
        if todo:
            first = [rows[0] for rows in todo.values()]
            fresh = check_vectors(
                self.inner.embed([texts[i] for i in first]), len(first), self.dim, self.name
            )
            for (k, rows), vec in zip(todo.items(), fresh, strict=True):
                out[rows] = vec
                self.misses += 1
                self.hits += len(rows) - 1
                self._store[k] = vec
                if len(self._store) > self.maxsize:
                    self._store.popitem(last=False)
        return out
