"""Stacked disjoint ridge regressions, one per arm, with rank-one updates.

All arms live in stacked arrays: ``A_inv`` of shape ``(K, d, d)``, ``A``, and ``b`` and
``theta`` of shape ``(K, d)``. ``A_inv`` and ``theta`` are views into one buffer of shape
``(K*d + K, d)``, so a single matrix-vector product gives every arm's ``A_inv x`` and
``theta' x``. An update touches one arm with a Sherman-Morrison step (BLAS ``dger``, in
place, ``O(d^2)``), reusing the ``A_inv x`` of the scoring call. ``A`` and ``b`` are only
needed to re-factorise: observations are buffered per arm and folded in with one matrix
product every ``refactor_every`` updates of the arm, when its inverse is recomputed
exactly through a Cholesky factorisation, which bounds round-off drift.

With a forgetting factor ``gamma < 1`` every arm's evidence is discounted by ``gamma`` at
every update of *any* arm (discounted ridge, as in D-LinUCB), so an arm that is no longer
chosen grows uncertain and is explored again. The discount is applied lazily: the mean is
invariant to a common scaling of ``A`` and ``b``, only the width needs the pending factor,
and an arm's arrays are rescaled when it is next updated.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.blas import daxpy, dger

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
        self._A = self.strength[:, None, None] * eye
        self._b = self.strength[:, None] * self.theta0
        self._alloc(K)
        self.A_inv[:] = (1.0 / self.strength)[:, None, None] * eye
        self.theta[:] = self.theta0
        self.counts = np.zeros(K, dtype=np.int64)
        self.since_refactor = np.zeros(K, dtype=np.int64)
        self.last = np.zeros(K, dtype=np.int64)  # global update count when last rescaled
        self.t = 0  # global number of updates

    # ---- layout ---------------------------------------------------------------------
    def _alloc(self, K: int) -> None:
        d = self.dim
        self._M = np.zeros((K * d + K, d))
        self._views()
        self._pending: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(K)]

    def _views(self) -> None:
        d = self.dim
        K = self._M.shape[0] // (d + 1)
        self.A_inv = self._M[: K * d].reshape(K, d, d)
        self.theta = self._M[K * d :]
        self._A_inv_k = [self.A_inv[k] for k in range(K)]
        self._A_inv_T = [a.T for a in self._A_inv_k]  # Fortran views for BLAS dger
        self._theta_k = [self.theta[k] for k in range(K)]
        self._split = K * d

    @property
    def n_arms(self) -> int:
        return int(self.theta.shape[0])

    @property
    def A(self) -> np.ndarray:
        """Design matrices ``(K, d, d)`` (buffered observations are folded in first)."""
        self.flush()
        return self._A

    @property
    def b(self) -> np.ndarray:
        """Reward-weighted sums ``(K, d)``."""
        self.flush()
        return self._b

    def flush(self, k: int | None = None) -> None:
        """Fold buffered observations into ``A`` and ``b`` (one product per arm)."""
        for j in range(self.n_arms) if k is None else (k,):
            rows = self._pending[j]
            if rows:
                X = np.array([x for x, _ in rows])
                r = np.array([y for _, y in rows])
                self._A[j] += X.T @ X
                self._b[j] += X.T @ r
                rows.clear()

    # ---- scoring --------------------------------------------------------------------
    def project(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``A_inv[k] @ x`` for every arm ``(K, d)`` and ``theta @ x`` ``(K,)`` in one product."""
        y = self._M @ x
        return y[: self._split].reshape(self.theta.shape), y[self._split :]

    def mean_and_variance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``theta @ x`` (K,), ``x' A_inv x`` (K,) and the projections (K, d)."""
        U, mean = self.project(x)
        var = U @ x
        if self.forgetting != 1.0:
            var = var / self.pending_discount()
        return mean, var, U

    def pending_discount(self) -> np.ndarray:
        """Discount each arm has accrued since it was last rescaled, shape ``(K,)``."""
        return np.maximum(self.forgetting ** (self.t - self.last), self.MIN_DISCOUNT)

    # ---- learning -------------------------------------------------------------------
    def update(
        self,
        k: int,
        x: np.ndarray,
        reward: float,
        u: np.ndarray | None = None,
        mean: float | None = None,
        quad: float | None = None,
    ) -> float:
        """Add one observation to arm ``k``; returns the residual ``reward - theta_k' x``.

        ``u = A_inv[k] @ x``, ``mean = theta_k' x`` and ``quad = x' u`` may be passed from a
        scoring call on the same ``x`` (before any other update) to skip recomputing them.
        """
        self.t += 1
        A_inv = self._A_inv_k[k]
        theta = self._theta_k[k]
        if self.forgetting != 1.0:
            g = max(self.forgetting ** (self.t - self.last[k]), self.MIN_DISCOUNT)
            self.flush(k)
            self._A[k] *= g
            self._b[k] *= g
            A_inv *= 1.0 / g
            self.last[k] = self.t
            self._A[k] += np.multiply.outer(x, x)
            self._b[k] += reward * x
            u = None
        else:
            self._pending[k].append((x.copy(), reward))
        if u is None:
            u = A_inv @ x
            mean = quad = None
        if mean is None:
            mean = theta @ x
        if quad is None:
            quad = x @ u
        residual = reward - mean
        denom = 1.0 + quad
        dger(-1.0 / denom, u, u, a=self._A_inv_T[k], overwrite_a=1)
        daxpy(u, theta, a=residual / denom)  # theta += u * residual / denom, in place
        self.counts[k] += 1
        self.since_refactor[k] += 1
        if self.since_refactor[k] >= self.refactor_every:
            self.refactor(k)
        return float(residual)

    def refactor(self, k: int) -> None:
        """Recompute arm ``k``'s inverse and mean exactly from ``A`` and ``b``."""
        self.flush(k)
        factor = cho_factor(self._A[k], lower=True, check_finite=False)
        inv = cho_solve(factor, np.eye(self.dim), check_finite=False)
        self.A_inv[k] = 0.5 * (inv + inv.T)
        self.theta[k] = cho_solve(factor, self._b[k], check_finite=False)
        self.since_refactor[k] = 0

    def refactor_all(self) -> None:
        for k in range(self.n_arms):
            self.refactor(k)

    # ---- arms -----------------------------------------------------------------------
    def _resize(self, keep: list[int], extra: tuple[float, np.ndarray] | None) -> None:
        """Rebuild the buffer with arms ``keep`` (old indices) plus an optional new arm."""
        self.flush()
        A_inv, theta = self.A_inv[keep], self.theta[keep]
        self._A, self._b = self._A[keep], self._b[keep]
        self.strength, self.theta0 = self.strength[keep], self.theta0[keep]
        self.counts, self.since_refactor = self.counts[keep], self.since_refactor[keep]
        self.last = self.last[keep]
        if extra is not None:
            strength, theta0 = extra
            d = self.dim
            A_inv = np.concatenate([A_inv, (np.eye(d) / strength)[None]])
            theta = np.vstack([theta, theta0])
            self._A = np.concatenate([self._A, (strength * np.eye(d))[None]])
            self._b = np.vstack([self._b, strength * theta0])
            self.strength = np.append(self.strength, strength)
            self.theta0 = np.vstack([self.theta0, theta0])
            self.counts = np.append(self.counts, 0)
            self.since_refactor = np.append(self.since_refactor, 0)
            self.last = np.append(self.last, self.t)
        self._alloc(len(theta))
        self.A_inv[:] = A_inv
        self.theta[:] = theta

    def add(self, strength: float, theta0: np.ndarray) -> None:
        theta0 = np.asarray(theta0, dtype=np.float64).reshape(self.dim)
        self._resize(list(range(self.n_arms)), (float(strength), theta0))

    def remove(self, k: int) -> None:
        self._resize([j for j in range(self.n_arms) if j != k], None)

    # ---- state ----------------------------------------------------------------------
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
        K = arrays["theta"].shape[0]
        self._alloc(K)
        self.A_inv[:] = arrays["A_inv"]
        self.theta[:] = arrays["theta"]
        self._A = np.array(arrays["A"], dtype=np.float64)
        self._b = np.array(arrays["b"], dtype=np.float64)
        self.strength = np.array(arrays["strength"], dtype=np.float64)
        self.theta0 = np.array(arrays["theta0"], dtype=np.float64)
        for name in ("counts", "since_refactor", "last"):
            setattr(self, name, np.array(arrays[name], dtype=np.int64))
        self.t = int(arrays["clock"])
