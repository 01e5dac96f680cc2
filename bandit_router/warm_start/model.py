"""The PILOT preference model and the analytic gradients of its two training losses.

Notation: ``phi`` the query embedding ``(D,)``, ``psi = W phi + c`` its projection ``(p,)``,
``u = psi / ||psi||``, ``theta_a`` the vector of model ``a`` ``(p,)``.

- Phase 1 (``triplet_loss``): W, c such that queries on which the same models win sit close
  together; for a triplet (anchor i, positive j, negative k), a smooth hinge
  ``softplus(gamma (cos(psi_i, psi_k) - cos(psi_i, psi_j) + margin)) / gamma``, plus
  ``reg / 2 ||(W, c) - (W0, c0)||^2`` towards the initial (PCA) projection.
- Phase 2 (``bt_loss``): W, c frozen; per model ``theta_a`` and a bias ``beta_a``, shared
  scale ``s``: the score ``f_a(q) = s cos(psi, theta_a) + beta_a`` and
  ``P(a beats b | q) = sigmoid(f_a(q) - f_b(q))`` (Bradley-Terry / BCE; ties are y = 1/2).
  The bias is our one addition to the paper's form: it carries each model's
  query-independent strength (the global ranking), so the cosines only need to explain
  the query-dependent part. It is exactly the bandit's bias feature: ``f_a`` is linear in
  the bandit context ``x = [u, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit_router.errors import DimensionMismatchError


def _unit_rows(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``M`` scaled to unit length, and their norms (zero rows stay zero)."""
    norms = np.linalg.norm(M, axis=1, keepdims=True)
    safe = np.where(norms > 0, norms, 1.0)
    return M / safe, safe


def _normalize_backward(G: np.ndarray, U: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Gradient through ``u = v / ||v||``: ``(G - u (u . G)) / ||v||`` row-wise."""
    return (G - U * np.sum(U * G, axis=1, keepdims=True)) / norms


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


@dataclass(frozen=True)
class PilotModel:
    """Learned PILOT parameters: projection ``W (p, D)``, ``c (p,)``; per model ``theta (K, p)``
    (unit rows), ``beta (K,)``; the shared cosine scale ``scale``.

    >>> rng = np.random.default_rng(0)
    >>> m = PilotModel(rng.normal(size=(3, 5)), np.zeros(3), np.eye(3)[:2], np.zeros(2), 4.0)
    >>> X = rng.normal(size=(6, 5))
    >>> m.scores(X).shape, m.prob_beats(X, 0, 1).shape
    ((6, 2), (6,))
    >>> bool(np.allclose(m.prob_beats(X, 0, 1) + m.prob_beats(X, 1, 0), 1.0))
    True
    """

    W: np.ndarray
    c: np.ndarray
    theta: np.ndarray
    beta: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        W = np.asarray(self.W, dtype=np.float64)
        c = np.asarray(self.c, dtype=np.float64).reshape(-1)
        theta, _ = _unit_rows(np.atleast_2d(np.asarray(self.theta, dtype=np.float64)))
        beta = np.asarray(self.beta, dtype=np.float64).reshape(-1)
        if W.ndim != 2 or c.shape != (W.shape[0],) or theta.shape[1] != W.shape[0]:
            raise DimensionMismatchError(
                f"PILOT shapes disagree: W {W.shape}, c {c.shape}, theta {theta.shape}."
            )
        if beta.shape != (theta.shape[0],):
            raise DimensionMismatchError(f"beta must be ({theta.shape[0]},), got {beta.shape}.")
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "scale", float(self.scale))

    def project(self, X: np.ndarray) -> np.ndarray:
        """Unit vectors ``u = normalize(W phi + c)``: ``(n, D) -> (n, p)``."""
        return _unit_rows(np.atleast_2d(X) @ self.W.T + self.c)[0]

    def cosines(self, X: np.ndarray) -> np.ndarray:
        """``cos(psi(q), theta_a)`` for every query and model, ``(n, K)``."""
        return self.project(X) @ self.theta.T

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Bradley-Terry scores ``f_a(q) = s cos(psi, theta_a) + beta_a``, ``(n, K)``."""
        return self.scale * self.cosines(X) + self.beta

    def prob_beats(self, X: np.ndarray, a: int, b: int) -> np.ndarray:
        """``P(a beats b | q)`` for each query, ``(n,)``."""
        f = self.scores(X)
        return _sigmoid(f[:, a] - f[:, b])


# ---- phase 1 --------------------------------------------------------------------------
def triplet_loss(
    W: np.ndarray,
    c: np.ndarray,
    X: np.ndarray,
    triplets: np.ndarray,
    *,
    margin: float = 0.2,
    gamma: float = 10.0,
    reg: float = 0.0,
    W0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Smooth triplet cosine loss and its gradients ``(loss, dW (p, D), dc (p,))``.

    ``X`` is ``(n, D)``; ``triplets`` ``(T, 3)`` holds row indices (anchor, positive,
    negative). The loss is the mean over triplets plus the pull towards ``(W0, c0)``.

    >>> rng = np.random.default_rng(1)
    >>> X, W, c = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    >>> loss, dW, dc = triplet_loss(W, c, X, np.array([[0, 1, 2], [3, 4, 0]]))
    >>> dW.shape, dc.shape, bool(loss > 0)
    ((3, 4), (3,), True)
    """
    P = X @ W.T + c
    U, norms = _unit_rows(P)
    i, j, k = triplets[:, 0], triplets[:, 1], triplets[:, 2]
    cos_pos = np.sum(U[i] * U[j], axis=1)
    cos_neg = np.sum(U[i] * U[k], axis=1)
    z = gamma * (cos_neg - cos_pos + margin)
    T = len(triplets)
    loss = float(_softplus(z).sum() / (gamma * T))
    g = _sigmoid(z) / T  # d loss / d cos_neg; d loss / d cos_pos = -g
    GU = np.zeros_like(U)
    np.add.at(GU, i, -g[:, None] * U[j] + g[:, None] * U[k])
    np.add.at(GU, j, -g[:, None] * U[i])
    np.add.at(GU, k, g[:, None] * U[i])
    GP = _normalize_backward(GU, U, norms)
    dW = GP.T @ X
    dc = GP.sum(axis=0)
    if reg > 0:
        dWr = W - (W0 if W0 is not None else 0.0)
        dcr = c - (c0 if c0 is not None else 0.0)
        loss += 0.5 * reg * float(np.sum(dWr**2) + np.sum(dcr**2))
        dW = dW + reg * dWr
        dc = dc + reg * dcr
    return loss, dW, dc


# ---- phase 2 --------------------------------------------------------------------------
def bt_loss(
    theta: np.ndarray,
    beta: np.ndarray,
    scale: float,
    U: np.ndarray,
    query: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    *,
    weight: np.ndarray | None = None,
    reg: float = 0.0,
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Bradley-Terry (BCE) loss of the phase-2 model and its gradients.

    ``U`` ``(n_q, p)`` are the frozen unit projections, ``theta`` ``(K, p)`` (any norm:
    only its direction counts), ``beta`` ``(K,)``; the judgements are ``query, a, b, y``
    ``(n,)`` with optional ``weight`` ``(n,)``. The loss is the weighted mean BCE plus
    ``reg / 2 (||beta||^2 + scale^2 / K)``. Returns ``(loss, dtheta (K, p), dbeta (K,),
    dscale)``.

    >>> rng = np.random.default_rng(2)
    >>> U = rng.normal(size=(4, 3)); U /= np.linalg.norm(U, axis=1, keepdims=True)
    >>> out = bt_loss(rng.normal(size=(2, 3)), np.zeros(2), 3.0, U, np.array([0, 1, 3]),
    ...               np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([1.0, 0.0, 0.5]))
    >>> [np.shape(v) for v in out]
    [(), (2, 3), (2,), ()]
    """
    K = theta.shape[0]
    n_q = U.shape[0]
    Th, tnorm = _unit_rows(theta)
    C = U @ Th.T  # (n_q, K)
    F = scale * C + beta
    z = F[query, a] - F[query, b]
    w = np.ones_like(y) if weight is None else weight
    wsum = float(w.sum())
    # BCE with logits, stable: softplus(z) - y z
    loss = float(np.sum(w * (_softplus(z) - y * z)) / wsum)
    g = w * (_sigmoid(z) - y) / wsum
    GF = (np.bincount(query * K + a, g, n_q * K) - np.bincount(query * K + b, g, n_q * K)).reshape(
        n_q, K
    )
    dbeta = GF.sum(axis=0)
    dscale = float(np.sum(GF * C))
    dTh = scale * (GF.T @ U)
    dtheta = _normalize_backward(dTh, Th, tnorm)
    if reg > 0:
        loss += 0.5 * reg * (float(beta @ beta) + scale**2 / K)
        dbeta = dbeta + reg * beta
        dscale += reg * scale / K
    return loss, dtheta, dbeta, dscale
