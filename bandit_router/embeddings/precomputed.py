"""Vectors supplied by the caller (for example from an embedding API or a table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bandit_router.embeddings.base import check_texts, text_key
from bandit_router.errors import EmbedderError, InvalidInputError


class PrecomputedEmbedder:
    """Looks texts up in a table of vectors computed elsewhere.

    >>> emb = PrecomputedEmbedder({"hi": [1.0, 0.0], "bye": [0.0, 1.0]}, name="toy")
    >>> emb.embed(["bye"]).tolist()
    [[0.0, 1.0]]
    """

    def __init__(self, vectors: Mapping[str, Sequence[float]], name: str = "precomputed") -> None:
        if not vectors:
            raise InvalidInputError("PrecomputedEmbedder needs at least one text -> vector pair.")
        texts = list(vectors)
        matrix = np.asarray([np.asarray(vectors[t], dtype=np.float64) for t in texts])
        if matrix.ndim != 2:
            raise InvalidInputError("all precomputed vectors must have the same length.")
        if not np.isfinite(matrix).all():
            raise InvalidInputError("precomputed vectors contain NaN or infinite values.")
        self._index = {text_key(t): i for i, t in enumerate(texts)}
        self._matrix = matrix
        self.dim = int(matrix.shape[1])
        self.name = name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        rows = []
        for t in texts:
            i = self._index.get(text_key(t))
            if i is None:
                raise EmbedderError(
                    f"no precomputed vector for text {t[:60]!r}; add it to the table or use "
                    "a model-based embedder."
                )
            rows.append(i)
        return self._matrix[rows].copy()
