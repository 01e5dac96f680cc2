"""From an embedding to the bandit's context vector: projection, L2 normalisation, bias."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bandit_router.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from bandit_router.policies import _kernels

_NO_W = np.zeros((1, 1))  # the kernel's projection arguments when there is none
_NO_C = np.zeros(1)


@dataclass(frozen=True)
class Projection:
    """A learned linear map psi(q) = W phi(q) + c (PILOT's shared space).

    ``W`` has shape ``(p, D)``, ``c`` shape ``(p,)``. The warm-start trainer fills it.
    """

    W: np.ndarray
    c: np.ndarray

    def __post_init__(self) -> None:
        W = np.asarray(self.W, dtype=np.float64)
        c = np.asarray(self.c, dtype=np.float64)
        if W.ndim != 2 or c.shape != (W.shape[0],):
            raise ConfigurationError(
                f"projection W must be (p, D) and c (p,); got W {W.shape}, c {c.shape}."
            )
        if not (np.isfinite(W).all() and np.isfinite(c).all()):
            raise ConfigurationError("projection contains NaN or infinite values.")
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "c", c)

    @property
    def in_dim(self) -> int:
        return int(self.W.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.W.shape[0])


class Featurizer:
    """Embedding ``(n, D)`` -> context ``(n, d)``.

    Steps: optional projection (``W x + c``), L2 normalisation, then a constant bias term
    appended, so ``d = p + 1`` with a projection and ``D + 1`` without.

    >>> f = Featurizer(in_dim=3)
    >>> f.dim
    4
    >>> f.transform([[3.0, 0.0, 4.0]]).round(2).tolist()
    [[0.6, 0.0, 0.8, 1.0]]
    """

    def __init__(self, in_dim: int, projection: Projection | None = None, bias: bool = True):
        if in_dim < 1:
            raise ConfigurationError(f"in_dim must be positive, got {in_dim}.")
        if projection is not None and projection.in_dim != in_dim:
            raise DimensionMismatchError(
                f"projection expects {projection.in_dim}-d embeddings but the embedder gives "
                f"{in_dim}-d; train the prior with the same embedder you route with."
            )
        self.in_dim = int(in_dim)
        self.projection = projection
        self.bias = bool(bias)
        base = projection.out_dim if projection is not None else self.in_dim
        self.dim = base + (1 if self.bias else 0)
        self._base = base
        #: the optional compiled kernels (``policies._kernels``), None: numpy
        self.kernels = _kernels.KERNELS

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Featurize a batch ``(n, D)`` (or one vector ``(D,)``, returned as ``(1, d)``)."""
        X = np.asarray(embeddings, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.in_dim:
            raise DimensionMismatchError(
                f"expected embeddings with {self.in_dim} columns, got shape {X.shape}; "
                "was the router configured with another embedder?"
            )
        if not np.isfinite(X).all():
            raise InvalidInputError("embeddings contain NaN or infinite values.")
        if self.projection is not None:
            X = X @ self.projection.W.T + self.projection.c
        # divide by the largest entry first so that tiny or huge rows neither under- nor overflow
        peak = np.abs(X).max(axis=1, keepdims=True)
        X = np.divide(X, peak, out=np.zeros_like(X), where=peak > 0)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = np.divide(X, norms, out=X, where=norms > 0)
        if self.bias:
            X = np.hstack([X, np.ones((X.shape[0], 1))])
        return X

    def transform_one(self, embedding: np.ndarray) -> np.ndarray:
        """Featurize one embedding ``(D,)`` -> ``(d,)`` (a new array).

        A float64 vector of the right length takes a fast path: one matrix-vector product
        into the output and in-place scaling, a handful of numpy calls instead of the
        batch path's temporaries. Non-finite input shows as a non-finite peak (NaN and
        infinity propagate through the product) and goes to ``transform``, which raises;
        so does anything else. The result equals ``transform``'s row up to round-off (the
        product and the norm may sum in another order).

        >>> f = Featurizer(in_dim=3)
        >>> f.transform_one(np.array([3.0, 0.0, 4.0])).round(2).tolist()
        [0.6, 0.0, 0.8, 1.0]
        """
        e = embedding
        if type(e) is np.ndarray and e.dtype == np.float64 and e.shape == (self.in_dim,):
            out = np.empty(self.dim)
            kern = self.kernels
            if kern is not None and e.flags.c_contiguous:  # the same steps in one call
                proj = self.projection
                if proj is None:
                    ok = kern.featurize(e, _NO_W, _NO_C, out, False, self.bias)
                else:
                    ok = kern.featurize(e, proj.W, proj.c, out, True, self.bias)
                if ok:
                    return out
                return self.transform(embedding)[0]  # raises: not finite
            y = out[: self._base]
            proj = self.projection
            if proj is not None:
                np.matmul(proj.W, e, out=y)
                y += proj.c
            else:
                y[:] = e
            peak = max(float(y.max()), -float(y.min()))
            if math.isfinite(peak):
                if peak > 0.0:
                    y /= peak
                    norm = math.sqrt(float(y @ y))
                    if norm > 0.0:
                        y /= norm
                if self.bias:
                    out[-1] = 1.0
                return out
        return self.transform(embedding)[0]
