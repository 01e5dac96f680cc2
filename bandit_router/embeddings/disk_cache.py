"""A persistent embedding cache (one SQLite file per embedder), for replays and training.

A sweep over policies, seeds and budgets then embeds each prompt once, ever. Uses the
standard library's ``sqlite3`` (the core does not depend on SQLAlchemy).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bandit_router.embeddings.base import Embedder, check_texts, check_vectors, text_key


def default_cache_dir() -> Path:
    """``$BANDIT_ROUTER_CACHE_DIR`` or the user's cache directory."""
    env = os.environ.get("BANDIT_ROUTER_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("bandit-router")) / "embeddings"


class DiskCachedEmbedder:
    """Wraps an embedder; vectors are stored by sha1 of the text in ``<dir>/<name>.sqlite``.

    >>> import tempfile
    >>> from bandit_router.embeddings.hashing import HashingEmbedder
    >>> with tempfile.TemporaryDirectory() as d:
    ...     emb = DiskCachedEmbedder(HashingEmbedder(dim=8), d)
    ...     a = emb.embed(["x", "y"])
    ...     b = DiskCachedEmbedder(HashingEmbedder(dim=8), d).embed(["y"])
    ...     emb.close()
    ...     bool((a[1] == b[0]).all())
    True
    """

    def __init__(self, inner: Embedder, directory: str | Path | None = None, chunk: int = 256):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.chunk = int(chunk)
        folder = Path(directory) if directory is not None else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)
        self.path = folder / f"{safe}-{self.dim}.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self._db.commit()

    def _lookup(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for k, blob in self._db.execute(f"SELECT key, v FROM vec WHERE key IN ({marks})", part):
                vec = np.frombuffer(blob, dtype=np.float64)
                if vec.shape == (self.dim,):
                    found[k] = vec
        return found

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        texts = check_texts(texts)
        keys = [text_key(t) for t in texts]
        with self._lock:
            found = self._lookup(sorted(set(keys)))
        missing: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in found and k not in missing:
                missing[k] = t
        if missing:
            from tqdm.auto import tqdm

            items = list(missing.items())
            bar = tqdm(
                total=len(items), desc=f"embedding ({self.name})", unit="text", disable=not progress
            )
            for i in range(0, len(items), self.chunk):
                part = items[i : i + self.chunk]
                vecs = check_vectors(
                    self.inner.embed([t for _, t in part]), len(part), self.dim, self.name
                )
                rows = [
                    (k, v.astype(np.float64).tobytes())
                    for (k, _), v in zip(part, vecs, strict=True)
                ]
                with self._lock:
                    self._db.executemany("INSERT OR REPLACE INTO vec VALUES (?, ?)", rows)
                    self._db.commit()
                for (k, _), v in zip(part, vecs, strict=True):
                    found[k] = v
                bar.update(len(part))
            bar.close()
        out = np.empty((len(texts), self.dim))
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
