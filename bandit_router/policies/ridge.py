"""Stacked disjoint ridge regressions, one per arm, with rank-one updates.

All arms live in stacked arrays: ``A`` and ``A_inv`` of shape ``(K, d, d)``, ``b`` and
``theta`` of shape ``(K, d)``.

With a forgetting factor ``gamma < 1`` every arm's evidence is discounted by ``gamma`` at
every update of *any* arm (discounted ridge, as in D-LinUCB), so an arm that is no longer
chosen grows uncertain and is explored again. The discount is applied lazily: the mean is
invariant to a common scaling of ``A`` and ``b``, only the width needs the pending factor,
and an arm's arrays are rescaled when it is next updated. Scoring every arm is two matrix-vector products on the
``(K*d, d)`` view of ``A_inv``; an update touches one arm with a Sherman-Morrison step
(``O(d^2)``), and every ``refactor_every`` updates of an arm its inverse is recomputed
exactly from ``A`` through a Cholesky factorisation, which bounds round-off drift.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from bandit_router.errors import StateError


class RidgeArms:
    """The learned state of K disjoint linear arms.

    >>> arms = RidgeArms(n_arms=2, dim=3, strength=np.ones(2), theta0=np.zeros((2, 3)))
    >>> x = np.array([1.0, 0.0, 1.0])
    >>> arms.update(0, x, 1.0)  # returns the residual before the update
    1.0
    >>> arms.theta[0].round(3).tolist()
    [0.333, 0.0, 0.333]
    """

    ARRAYS = ("A", "A_inv", "b", "theta", "counts", "since_refactor", "strength", "theta0", "last")
    #: pending discounts are capped at this factor (widths grow at most 1000-fold)
    MIN_DISCOUNT = 1e-6

    def __init__(
        self,
        n_arms: int,
        dim: int,
        strength: np.ndarray,
        theta0: np.ndarray,
        forgetting: float = 1.0,
        refactor_every: int = 500,
    ) -> None:
        K, d = int(n_arms), int(dim)
        self.dim = d
        self.forgetting = float(forgetting)
        self.refactor_every = int(refactor_every)
        self.strength = np.asarray(strength, dtype=np.float64).reshape(K).copy()
        self.theta0 = np.asarray(theta0, dtype=np.float64).reshape(K, d).copy()
        eye = np.eye(d)
        self.A = self.strength[:, None, None] * eye
        self.A_inv = (1.0 / self.strength)[:, None, None] * eye
        self.b = self.strength[:, None] * self.theta0
        self.theta = self.theta0.copy()
        self.counts = np.zeros(K, dtype=np.int64)
        self.since_refactor = np.zeros(K, dtype=np.int64)
        self.last = np.zeros(K, dtype=np.int64)  # global update count when last rescaled
        self.t = 0  # global number of updates
        self._views()

    def _views(self) -> None:
        K, d = self.theta.shape
        self._A_inv_flat = self.A_inv.reshape(K * d, d)  # a view: one gemv scores all arms

    @property
    def n_arms(self) -> int:
        return int(self.theta.shape[0])

    def project(self, x: np.ndarray) -> np.ndarray:
        """``A_inv[k] @ x`` for every arm, shape ``(K, d)``."""
        return (self._A_inv_flat @ x).reshape(self.theta.shape)

    def mean_and_variance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``theta @ x`` (K,), ``x' A_inv x`` (K,) and the projections (K, d)."""
        U = self.project(x)
        var = U @ x
        if self.forgetting != 1.0:
            var = var / self.pending_discount()
        return self.theta @ x, var, U

    def pending_discount(self) -> np.ndarray:
        """Discount each arm has accrued since it was last rescaled, shape ``(K,)``."""
        return np.maximum(self.forgetting ** (self.t - self.last), self.MIN_DISCOUNT)

    def update(self, k: int, x: np.ndarray, reward: float, u: np.ndarray | None = None) -> float:
        """Add one observation to arm ``k``; ``u`` may pass a precomputed ``A_inv[k] @ x``.

        Returns the residual ``reward - theta_k' x`` before the update.
        """
        A_inv = self.A_inv[k]
        theta = self.theta[k]
        self.t += 1
        if self.forgetting != 1.0:
            g = max(self.forgetting ** (self.t - self.last[k]), self.MIN_DISCOUNT)
            self.A[k] *= g
            self.b[k] *= g
            A_inv *= 1.0 / g
            self.last[k] = self.t
            u = None
        if u is None:
            u = A_inv @ x
        residual = reward - theta @ x
        denom = 1.0 + x @ u
        A_inv -= np.multiply.outer(u / denom, u)
        theta += u * (residual / denom)
        self.A[k] += np.multiply.outer(x, x)
        self.b[k] += reward * x
        self.counts[k] += 1
        self.since_refactor[k] += 1
        if self.since_refactor[k] >= self.refactor_every:
            self.refactor(k)
        return float(residual)

    def refactor(self, k: int) -> None:
        """Recompute arm ``k``'s inverse and mean exactly from ``A`` and ``b``."""
        factor = cho_factor(self.A[k], lower=True, check_finite=False)
        inv = cho_solve(factor, np.eye(self.dim), check_finite=False)
        self.A_inv[k] = 0.5 * (inv + inv.T)
        self.theta[k] = cho_solve(factor, self.b[k], check_finite=False)
        self.since_refactor[k] = 0

    def refactor_all(self) -> None:
        for k in range(self.n_arms):
            self.refactor(k)

    def add(self, strength: float, theta0: np.ndarray) -> None:
        d = self.dim
        theta0 = np.asarray(theta0, dtype=np.float64).reshape(d)
        self.A = np.concatenate([self.A, (strength * np.eye(d))[None]])
        self.A_inv = np.concatenate([self.A_inv, (np.eye(d) / strength)[None]])
        self.b = np.vstack([self.b, strength * theta0])
        self.theta = np.vstack([self.theta, theta0])
        self.theta0 = np.vstack([self.theta0, theta0])
        self.strength = np.append(self.strength, strength)
        self.counts = np.append(self.counts, 0)
        self.since_refactor = np.append(self.since_refactor, 0)
        self.last = np.append(self.last, self.t)
        self._views()

    def remove(self, k: int) -> None:
        for name in self.ARRAYS:
            setattr(self, name, np.delete(getattr(self, name), k, axis=0))
        self.A_inv = np.ascontiguousarray(self.A_inv)
        self._views()

    def arrays(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in self.ARRAYS}
        out["clock"] = np.array(self.t, dtype=np.int64)
        return out

    def check_arrays(self, arrays, n_arms: int) -> None:
        K, d = n_arms, self.dim
        shapes = {
            "A": (K, d, d), "A_inv": (K, d, d), "b": (K, d), "theta": (K, d),
            "counts": (K,), "since_refactor": (K,), "strength": (K,), "theta0": (K, d),
            "last": (K,), "clock": (),
        }  # fmt: skip
        for name, shape in shapes.items():
            if name not in arrays:
                raise StateError(
                    f"state is missing the array {name!r}; it is not a linear policy's state."
                )
            arr = arrays[name]
            if arr.shape != shape:
                raise StateError(f"state array {name!r} has shape {arr.shape}, expected {shape}.")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise StateError(f"state array {name!r} contains NaN or infinite values.")

    def load(self, arrays) -> None:
        for name in self.ARRAYS:
            dtype = np.int64 if name in ("counts", "since_refactor", "last") else np.float64
            setattr(self, name, np.ascontiguousarray(arrays[name], dtype=dtype).copy())
        self.t = int(arrays["clock"])
        self._views()
