"""The embedder protocol and the helpers every implementation shares."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from bandit_router.errors import EmbedderError, InvalidInputError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into fixed-length vectors.

    ``embed(texts)`` returns a float array of shape ``(n, dim)``; ``name`` identifies the
    model (it is stored with priors and caches so that vectors of different models are
    never mixed).
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def text_key(text: str) -> str:
    """Stable cache key of a text (sha1 of its UTF-8 bytes, hex).

    >>> text_key("hello")[:12]
    'aaf4c61ddcc5'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate a batch of texts: a list of strings (a bare string is a common mistake)."""
    if isinstance(texts, str):
        raise InvalidInputError("embed() takes a list of texts, not one string: wrap it as [text].")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidInputError(
                f"text #{i} is a {type(t).__name__}, not a string; convert prompts to str first."
            )
    return out


def check_vectors(vectors: np.ndarray, n: int, dim: int, who: str) -> np.ndarray:
    """Make sure an embedder's output is a finite float64 array of shape (n, dim)."""
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.shape != (n, dim):
        raise EmbedderError(f"{who} returned shape {arr.shape}, expected ({n}, {dim}).")
    if not np.isfinite(arr).all():
        raise EmbedderError(
            f"{who} returned NaN or infinite values; the input text may be corrupt."
        )
    return arr
