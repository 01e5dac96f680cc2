"""Stacked disjoint ridge regressions, one per arm: stationary and discounted.

Arm ``k`` is the ridge regression with prior ``N(theta0_k, I / lambda_k)``::

    A_k = lambda_k I + sum_t w_t x_t x_t'      b_k = lambda_k theta0_k + sum_t w_t r_t x_t
    theta_k = A_k^-1 b_k                         width_k(x) = sqrt(x' A_k^-1 x)

``RidgeArms`` (``forgetting = 1``, every weight ``w_t = 1``): all arms live in one buffer
of shape ``(K*(d + 1), d)``, arm ``k``'s block of ``d + 1`` rows holding ``A_inv_k`` and
then ``theta_k``; ``A_inv`` ``(K, d, d)`` and ``theta`` ``(K, d)`` are views into it, so a
single matrix-vector product gives every arm's ``A_inv x`` and ``theta' x``. An update
touches one arm with a Sherman-Morrison step, one BLAS ``ger`` (in place, ``O(d^2)``) on
the arm's block: ``[A_inv_k; theta_k'] -= [u; -residual] u' / (1 + x' u)`` with the
``u = A_inv x`` of the scoring call. ``A`` and ``b`` are only needed to re-factorise:
observations are buffered per arm and folded in with one matrix product every
``refactor_every`` updates of the arm, when its inverse is recomputed exactly through a
Cholesky factorisation, which bounds round-off drift. A failed factorisation raises
``StateError`` and leaves every array as it was. From ``FLOAT32_FROM_DIM`` dimensions on
(``ridge_arms``) the buffer is float32: a decision reads half the bytes (at d = 512 that is
11.5 instead of 23 MB, the whole cost of an event), ``A``, ``b`` and the refactorisations
stay float64 and scores are returned as float64. Decisions equal the float64 ones except
where two arms' values lie within float32 round-off (~1e-6) of each other, ties which
float64 itself breaks by the summation order of its BLAS
(``tests/test_speed_identity.py``).

``DiscountedRidgeArms`` (``forgetting = gamma < 1``, discounted ridge as in D-LinUCB):
an observation made ``a`` updates (of *any* arm) ago weighs ``w = gamma^a``, so an arm
that is no longer chosen grows uncertain and is explored again, for exactly the number
of events it missed. Only the data is discounted; the prior precision ``lambda_k I`` (and
``lambda_k theta0_k`` in ``b``) is an undiscounted floor, so ``A_k`` never becomes
singular and every width stays below the prior's ``||x|| / sqrt(lambda_k)``. With the
data part ``D_k = sum w x x'`` and ``c_k = sum w r x`` stored as of the arm's last
update, an arm idle for ``n`` events has ``A_k = lambda_k I + gamma^n D_k``. That is not
a multiple of the stored ``A_k`` (``(lambda I + g D)^-1`` is no rescaling of
``(lambda I + D)^-1``), so instead of ``A_inv`` each arm keeps the eigen-decomposition of
its data, ``D_k = V_k diag(s_k) V_k'`` (``V_k`` has orthonormal columns, one per
direction the arm has seen: its rank ``r_k <= d``), and ``h_k = V_k' (c_k - D_k theta0_k)``.
Then, for any pending discount ``g``, exactly::

    z = V_k' x
    width^2 = (||x||^2 - ||z||^2) / lambda_k + sum_i z_i^2 / (lambda_k + g s_i)
    mean    = theta0_k' x + g sum_i z_i h_i / (lambda_k + g s_i)

Scoring is still one matrix-vector product, over the first ``K + K r`` rows of a
``(K + K*d, d)`` buffer (``theta0``, then row ``i`` of every arm's ``V_k'`` for ``i``
below the largest rank ``r``), plus ``O(K r)``: the pending discount of every arm enters
its width and mean exactly at no extra cost. An update of arm ``k`` with pending
discount ``g`` is the rank-one eigen-update ``g D + x x'``: the part of ``x`` outside
``V_k`` (if any) extends the basis, the ``(r+1) x (r+1)`` matrix ``diag(g s) + z z'`` is
diagonalised and the basis rotated, ``O(d r^2 + r^3)``: cheap while the arm's contexts
span few directions, ``O(d^3)`` (one ``eigh`` of size ``d`` plus a ``d x d`` product)
once they span all of them. Measured with K = 11 on the stream of
``benchmarks/policy_speed.py`` (one BLAS thread, busy 2-core machine): 0.4 ms per
decide-and-learn event at d = 64 with full-rank contexts (0.02 ms without forgetting),
0.7 ms at d = 512 while the arms' ranks are ~40 (1.2 ms without forgetting: the gemv over
the unused rows is skipped). ``D_k`` and ``c_k`` are only needed to re-factorise and to
save, so updates buffer their contexts and fold them in with one matrix product; every
``refactor_every`` updates of the arm the decomposition is recomputed from ``D_k`` (QR
of the basis, ``eigh`` of ``V' D V``), which bounds round-off drift. Directions whose
data precision decays below ``1e-30 lambda_k`` are dropped (their effect is below
round-off). Every factorisation is computed before anything is stored: a failure raises
``StateError`` and leaves the state as it was.
"""

from __future__ import annotations

import math
import mmap

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.blas import dger, sger

from bandit_router.errors import StateError
from bandit_router.policies import _kernels

#: from this context dimension on, ``RidgeArms`` scores in float32 (see ``RidgeArms``)
FLOAT32_FROM_DIM = 257


def ridge_arms(
    n_arms: int,
    dim: int,
    strength: np.ndarray,
    theta0: np.ndarray,
    forgetting: float = 1.0,
    refactor_every: int = 500,
) -> RidgeArms | DiscountedRidgeArms:
    """The stationary arms for ``forgetting == 1``, the discounted ones below.

    Stationary arms of dimension ``FLOAT32_FROM_DIM`` or more keep their scoring state
    in float32 (half the memory each decision reads; refactorisations stay float64).

    >>> type(ridge_arms(2, 3, np.ones(2), np.zeros((2, 3)), forgetting=0.9)).__name__
    'DiscountedRidgeArms'
    """
    if float(forgetting) == 1.0:
        dtype = np.float32 if int(dim) >= FLOAT32_FROM_DIM else np.float64
        return RidgeArms(n_arms, dim, strength, theta0, refactor_every, dtype=dtype)
    return DiscountedRidgeArms(n_arms, dim, strength, theta0, forgetting, refactor_every)


#: buffers from this size on are placed on 2 MiB pages where the system allows it
HUGE_PAGE_FROM_BYTES = 256 << 10
_HUGE = 2 << 20


def zeros_on_huge_pages(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """``np.zeros(shape, dtype)`` in memory the kernel is asked to back with 2 MiB pages
    (Linux transparent huge pages in ``madvise`` mode; 2 MiB-aligned anonymous memory).

    Every decision reads the whole scoring buffer; on 4 KiB pages (90 of them at K = 11,
    d = 64) the product's speed depended on which physical pages the process got: 5.4-5.7
    us per gemv in some processes, 4.5-4.8 in others, 4.5-4.8 in all on a huge page. Small
    buffers, other systems and any failure get ``np.zeros``. Costs up to 2 MiB of resident
    memory per buffer.

    >>> a = zeros_on_huge_pages((300, 200))
    >>> a.shape, a.dtype.name, float(a.sum()), a.flags.writeable
    ((300, 200), 'float64', 0.0, True)
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if nbytes < HUGE_PAGE_FROM_BYTES or advice is None:
        return np.zeros(shape, dtype)
    size = -(-nbytes // _HUGE) * _HUGE + _HUGE  # room to align the start
    try:
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(advice)
    except (OSError, ValueError, AttributeError):
        return np.zeros(shape, dtype)
    raw = np.frombuffer(m, dtype=np.uint8)  # zero-filled; keeps the mapping alive
    start = (-raw.ctypes.data) % _HUGE
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _check_shapes(arrays, shapes: dict[str, tuple[int, ...]]) -> None:
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


class RidgeArms:
    """The learned state of K disjoint linear arms without forgetting.

    >>> arms = RidgeArms(n_arms=2, dim=3, strength=np.ones(2), theta0=np.zeros((2, 3)))
    >>> x = np.array([1.0, 0.0, 1.0])
    >>> arms.update(0, x, 1.0)  # returns the residual before the update
    1.0
    >>> arms.theta[0].round(3).tolist()
    [0.333, 0.0, 0.333]
    """

    ARRAYS = ("A", "A_inv", "b", "theta", "counts", "since_refactor", "strength", "theta0", "last")
    forgetting = 1.0

    def __init__(
        self,
        n_arms: int,
        dim: int,
        strength: np.ndarray,
        theta0: np.ndarray,
        refactor_every: int = 500,
        dtype: type = np.float64,
    ) -> None:
        K, d = int(n_arms), int(dim)
        self.dim = d
        # the scoring state (A_inv, theta): float64, or float32 at large d (half the bytes
        # each decision reads); A, b and every refactorisation are float64 either way
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        self._ger = dger if self.dtype == np.float64 else sger
        #: the optional compiled kernels (``_kernels``; float64 only), None: numpy and BLAS
        self.kernels = _kernels.KERNELS if self.dtype == np.float64 else None
        self._v = np.zeros(d + 1, dtype=self.dtype)  # [u; -residual] of an update
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
        self.last = np.zeros(K, dtype=np.int64)  # global update count of the arm's last update
        self.t = 0  # global number of updates

    # ---- layout ---------------------------------------------------------------------
    def _alloc(self, K: int) -> None:
        d = self.dim
        # arm k's block of d + 1 rows: A_inv_k, then theta_k (read whole by every decision)
        self._M = zeros_on_huge_pages((K * (d + 1), d), self.dtype)
        self._views()
        self._pending: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(K)]

    def _views(self) -> None:
        d = self.dim
        K = self._M.shape[0] // (d + 1)
        blocks = self._M.reshape(K, d + 1, d)
        self.A_inv = blocks[:, :d]
        self.theta = blocks[:, d]
        self._A_inv_k = [self.A_inv[k] for k in range(K)]
        self._theta_k = [self.theta[k] for k in range(K)]
        # Fortran views (d, d + 1) of each block for one BLAS ger per update
        self._block_T = [blocks[k].T for k in range(K)]
        self._blocks = [blocks[k] for k in range(K)]  # for the compiled update
        # the last scoring call's ``[A_inv_k x; theta_k' x]`` per arm ``(K (d + 1),)`` and
        # ``x' A_inv_k x`` ``(K,)`` (``score_into``), kept for the update of the chosen arm
        self._Y = np.empty(K * (d + 1), dtype=self.dtype)
        Yb = self._Y.reshape(K, d + 1)
        self._YU, self._Ymean = Yb[:, :d], Yb[:, d]
        self._Yblock = [Yb[k] for k in range(K)]
        self._var = np.empty(K, dtype=self.dtype)

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
        """``A_inv[k] @ x`` for every arm ``(K, d)`` and ``theta @ x`` ``(K,)`` in one product
        (in the scoring state's dtype)."""
        if self.dtype != np.float64:
            x = x.astype(self.dtype)
        Y = (self._M @ x).reshape(-1, self.dim + 1)
        return Y[:, : self.dim], Y[:, self.dim]

    def mean_and_variance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``theta @ x`` (K,), ``x' A_inv x`` (K,) and the projections (K, d).

        Mean and variance are float64; the projections are in the scoring state's dtype.
        """
        U, mean = self.project(x)
        if self.dtype != np.float64:
            return mean.astype(np.float64), U.astype(np.float64) @ x, U
        return mean, U @ x, U

    def score_into(self, x: np.ndarray) -> bool:
        """The scoring product into preallocated buffers (float64 state only): fills
        ``_Y`` (every arm's ``[A_inv_k x; theta_k' x]``), its views ``_YU`` ``(K, d)`` and
        ``_Ymean`` ``(K,)``, and ``_var`` ``(K,)`` = ``x' A_inv_k x``; two BLAS calls, the
        values ``mean_and_variance`` gives. The buffers are overwritten by the next call.

        Returns False (nothing finite to trust) when ``x`` is not finite: a NaN or an
        infinity in ``x`` makes every entry of both products non-finite, so one entry
        tells. ``x`` must be float64 of shape ``(d,)``.
        """
        np.matmul(self._M, x, out=self._Y)
        var = self._var
        np.matmul(self._YU, x, out=var)
        return math.isfinite(var[-1])

    def update_scored(self, k: int, x: np.ndarray, reward: float) -> float:
        """``update(k, x, reward)`` right after ``score_into(x)`` (no other update or
        scoring call in between; float64 state): reuses that call's ``A_inv_k x``,
        ``theta_k' x`` and ``x' A_inv_k x``, the same arithmetic as ``update`` given them,
        without copies. Returns the residual."""
        t = self.t + 1
        self.t = t
        self._pending[k].append((x.copy(), reward))
        kern = self.kernels
        if kern is not None:  # the same steps, compiled
            residual, n = kern.update(
                self._blocks[k], self._Yblock[k], self._var, k, reward, t, self.last,
                self.counts, self.since_refactor,
            )  # fmt: skip
            if n >= self.refactor_every:
                self.refactor(k)
            return residual
        self.last[k] = t
        v = self._Yblock[k]  # [u; mean]: becomes [u; -residual] in place
        mean = float(v[-1])
        residual = reward - mean
        v[-1] = -residual
        self._ger(-1.0 / (1.0 + float(self._var[k])), v[:-1], v, a=self._block_T[k], overwrite_a=1)
        self.counts[k] += 1
        n = self.since_refactor[k] + 1
        self.since_refactor[k] = n
        if n >= self.refactor_every:
            self.refactor(k)
        return float(residual)

    def pending_discount(self) -> np.ndarray:
        """Discount each arm's data has accrued since its last update: none, shape ``(K,)``."""
        return np.ones(self.n_arms)

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
        self.last[k] = self.t
        self._pending[k].append((x.copy(), reward))
        if u is None:
            xs = x if self.dtype == np.float64 else x.astype(self.dtype)
            u = self._A_inv_k[k] @ xs
            mean = quad = None
        if mean is None:
            mean = float(self._theta_k[k] @ x)
        if quad is None:
            quad = float(u @ x)
        residual = reward - mean
        # one rank-one update of the block [A_inv_k; theta_k] (d + 1, d):
        #   A_inv_k -= u u' / denom,  theta_k += u residual / denom
        v = self._v
        v[:-1] = u
        v[-1] = -residual
        self._ger(-1.0 / (1.0 + quad), u, v, a=self._block_T[k], overwrite_a=1)
        self.counts[k] += 1
        self.since_refactor[k] += 1
        if self.since_refactor[k] >= self.refactor_every:
            self.refactor(k)
        return float(residual)

    def refactor(self, k: int) -> None:
        """Recompute arm ``k``'s inverse and mean exactly from ``A`` and ``b``.

        Raises ``StateError`` (leaving ``A_inv`` and ``theta`` as they were) if ``A`` cannot
        be factorised, which a positive prior strength rules out unless the state is corrupt.
        """
        self.flush(k)
        try:
            factor = cho_factor(self._A[k], lower=True, check_finite=True)
            inv = cho_solve(factor, np.eye(self.dim), check_finite=False)
            theta = cho_solve(factor, self._b[k], check_finite=False)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise StateError(
                f"the exact re-factorisation of arm {k} failed ({exc}); its learned state was "
                "left unchanged. The state is corrupt: restore a saved state or start anew."
            ) from None
        if not (np.isfinite(inv).all() and np.isfinite(theta).all()):
            raise StateError(
                f"the exact re-factorisation of arm {k} gave non-finite values; its learned "
                "state was left unchanged. Restore a saved state or start anew."
            )
        self.A_inv[k] = 0.5 * (inv + inv.T)  # cast to the scoring state's dtype
        self.theta[k] = theta
        self.since_refactor[k] = 0

    def refactor_all(self) -> None:
        for k in range(self.n_arms):
            self.refactor(k)

    # ---- prior strength -------------------------------------------------------------
    def data_statistics(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Arm ``k``'s data alone: ``D = A - lambda I`` ``(d, d)`` and ``c = b - lambda theta0``
        ``(d,)`` (the prior's part taken out)."""
        self.flush(k)
        lam = float(self.strength[k])
        D = self._A[k] - lam * np.eye(self.dim)
        return D, self._b[k] - lam * self.theta0[k]

    def set_strength(self, k: int, strength: float, theta0: np.ndarray | None = None) -> None:
        """Give arm ``k`` the prior strength ``strength`` (and, with ``theta0`` ``(d,)``,
        that prior mean) with the same data, exactly: ``A_k = strength I + D_k``,
        ``b_k = strength theta0_k + c_k``, re-factorised.

        Raises ``StateError`` (and changes nothing) if the factorisation fails.

        >>> arms = RidgeArms(1, 2, np.array([100.0]), np.array([[1.0, 0.0]]))
        >>> _ = arms.update(0, np.array([1.0, 0.0]), 0.0)
        >>> arms.set_strength(0, 1.0)
        >>> arms.theta[0].round(3).tolist(), arms.strength.tolist()
        ([0.5, 0.0], [1.0])
        >>> arms.set_strength(0, 1.0, theta0=np.array([0.0, 2.0]))
        >>> arms.theta[0].round(3).tolist()
        [0.0, 2.0]
        """
        new = float(strength)
        if not (np.isfinite(new) and new > 0):
            raise StateError(f"a prior strength must be positive, got {strength}.")
        D, c = self.data_statistics(k)
        old = (self._A[k].copy(), self._b[k].copy(), float(self.strength[k]), self.theta0[k].copy())
        if theta0 is not None:
            self.theta0[k] = theta0
        self._A[k] = D + new * np.eye(self.dim)
        self._b[k] = c + new * self.theta0[k]
        self.strength[k] = new
        try:
            self.refactor(k)
        except StateError:
            self._A[k], self._b[k], self.strength[k], self.theta0[k] = old
            raise

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
        out["A_inv"] = np.ascontiguousarray(self.A_inv, dtype=np.float64)
        out["theta"] = np.ascontiguousarray(self.theta, dtype=np.float64)
        out["clock"] = np.array(self.t, dtype=np.int64)
        return out

    def check_arrays(self, arrays, n_arms: int) -> None:
        K, d = n_arms, self.dim
        _check_shapes(
            arrays,
            {
                "A": (K, d, d), "A_inv": (K, d, d), "b": (K, d), "theta": (K, d),
                "counts": (K,), "since_refactor": (K,), "strength": (K,), "theta0": (K, d),
                "last": (K,), "clock": (),
            },
        )  # fmt: skip

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


class DiscountedRidgeArms:
    """The learned state of K disjoint linear arms whose data is discounted by ``gamma``.

    Same interface as ``RidgeArms``; ``A``, ``b``, ``A_inv`` and ``theta`` are computed on
    access and include every arm's pending discount (shapes ``(K, d, d)`` and ``(K, d)``).

    >>> arms = DiscountedRidgeArms(2, 1, strength=np.ones(2), theta0=np.zeros((2, 1)),
    ...                            forgetting=0.5)
    >>> arms.update(0, np.array([1.0]), 1.0)
    1.0
    >>> float(arms.theta[0, 0]), float(arms.A_inv[0, 0, 0])  # (1 + 1)^-1
    (0.5, 0.5)
    >>> arms.update(1, np.array([1.0]), 0.0)  # arm 0 misses one event: its data weighs 0.5
    0.0
    >>> round(float(arms.theta[0, 0]), 4), round(float(arms.A_inv[0, 0, 0]), 4)  # 0.5 / 1.5
    (0.3333, 0.6667)
    """

    ARRAYS = (
        "D", "c", "e", "basis", "eig", "resid", "rank",
        "counts", "since_refactor", "strength", "theta0", "last",
    )  # fmt: skip
    #: the part of a context outside an arm's basis extends the basis above this share of |x|
    EXTEND_TOL = 1e-11
    #: eigen-directions of the data below this share of the prior strength are dropped
    DROP_TOL = 1e-30

    def __init__(
        self,
        n_arms: int,
        dim: int,
        strength: np.ndarray,
        theta0: np.ndarray,
        forgetting: float,
        refactor_every: int = 500,
    ) -> None:
        K, d = int(n_arms), int(dim)
        if not 0.0 < float(forgetting) < 1.0:
            raise ValueError(f"forgetting must be in (0, 1), got {forgetting}")
        self.dim = d
        self.forgetting = float(forgetting)
        self.refactor_every = int(refactor_every)
        self.strength = np.asarray(strength, dtype=np.float64).reshape(K).copy()
        self._alloc(K)
        self.theta0[:] = np.asarray(theta0, dtype=np.float64).reshape(K, d)
        self.counts = np.zeros(K, dtype=np.int64)
        self.since_refactor = np.zeros(K, dtype=np.int64)
        self.last = np.zeros(K, dtype=np.int64)  # global update count of the arm's last update
        self.t = 0

    # ---- layout ---------------------------------------------------------------------
    def _alloc(self, K: int) -> None:
        d = self.dim
        # theta0 rows, then the basis rows by index: row i of every arm's V' sits at
        # K + i*K + k, so the rows below the largest rank are one prefix of the buffer
        self._M = zeros_on_huge_pages((K + d * K, d))  # read (its first rows) by every decision
        self.theta0 = self._M[:K]
        self.basis = self._M[K:].reshape(d, K, d).transpose(1, 0, 2)  # (K, d, d): rows of V_k'
        self._D = np.zeros((K, d, d))  # discounted data, as of ``_folded`` (see ``flush``)
        self._c = np.zeros((K, d))
        self._folded = np.zeros(K, dtype=np.int64)
        self._pending: list[list[tuple[np.ndarray, float, int]]] = [[] for _ in range(K)]
        self.e = np.zeros((K, d))  # c_k - D_k theta0_k, as of the arm's last update
        self.eig = np.zeros((K, d))  # s_k, zero past the rank
        self.resid = np.zeros((K, d))  # h_k = V_k' (c_k - D_k theta0_k)
        self.rank = np.zeros(K, dtype=np.int64)

    @property
    def n_arms(self) -> int:
        return int(self.theta0.shape[0])

    def pending_discount(self) -> np.ndarray:
        """``gamma ** (events since the arm's last update)`` per arm, shape ``(K,)``."""
        return np.power(self.forgetting, (self.t - self.last).astype(np.float64))

    @property
    def A(self) -> np.ndarray:
        """Current design matrices ``lambda I + g D``, shape ``(K, d, d)`` (a copy)."""
        g = self.pending_discount()
        return self.strength[:, None, None] * np.eye(self.dim) + g[:, None, None] * self.D

    @property
    def b(self) -> np.ndarray:
        """Current ``lambda theta0 + g c``, shape ``(K, d)`` (a copy)."""
        g = self.pending_discount()
        return self.strength[:, None] * self.theta0 + g[:, None] * self.c

    def _coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        g = self.pending_discount()
        denom = self.strength[:, None] + g[:, None] * self.eig
        return g, denom

    @property
    def theta(self) -> np.ndarray:
        """Current means ``theta0 + V (g h / (lambda + g s))``, shape ``(K, d)`` (a copy)."""
        g, denom = self._coefficients()
        coef = g[:, None] * self.resid / denom
        return self.theta0 + np.einsum("kid,ki->kd", self.basis, coef)

    @property
    def A_inv(self) -> np.ndarray:
        """Current ``A^-1 = I / lambda - V diag(g s / (lambda (lambda + g s))) V'`` (a copy).

        For an arm of full rank ``V diag(1 / (lambda + g s)) V'``: the same in exact
        arithmetic, without the cancellation of ``I - V V'``.
        """
        g, denom = self._coefficients()
        lam = self.strength[:, None]
        full = self.rank == self.dim
        coef = np.where(full[:, None], -1.0 / denom, g[:, None] * self.eig / (lam * denom))
        low = (self.basis * coef[:, :, None]).transpose(0, 2, 1) @ self.basis
        eye = np.where(full, 0.0, 1.0 / self.strength)[:, None, None] * np.eye(self.dim)
        out = eye - low
        return 0.5 * (out + out.transpose(0, 2, 1))

    @property
    def D(self) -> np.ndarray:
        """Discounted data ``sum w x x'`` as of each arm's last update, ``(K, d, d)``."""
        self.flush()
        return self._D

    @property
    def c(self) -> np.ndarray:
        """Discounted ``sum w r x`` as of each arm's last update, ``(K, d)``."""
        self.flush()
        return self._c

    def flush(self, k: int | None = None) -> None:
        """Fold buffered observations into ``D`` and ``c`` (one product per arm).

        ``D`` and ``c`` are only read to re-factorise and to save, so updates buffer their
        contexts and this discounts and adds them in one ``O(n d^2)`` matrix product.
        """
        gamma = self.forgetting
        for j in range(self.n_arms) if k is None else (k,):
            rows = self._pending[j]
            if rows:
                now = int(self.last[j])
                X = np.array([x for x, _, _ in rows])
                r = np.array([y for _, y, _ in rows])
                w = np.power(gamma, np.array([now - s for _, _, s in rows], dtype=np.float64))
                Xw = X * w[:, None]
                g = gamma ** float(now - self._folded[j])
                self._D[j] *= g
                self._D[j] += Xw.T @ X
                self._c[j] *= g
                self._c[j] += Xw.T @ r
                self._folded[j] = now
                rows.clear()

    # ---- scoring --------------------------------------------------------------------
    def project(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``V_k' x`` for every arm ``(K, r)`` and ``theta0 @ x`` ``(K,)`` in one product.

        ``r`` is the largest rank: the product skips the rows no arm uses yet.
        """
        K, r = self.n_arms, int(self.rank.max()) if len(self.rank) else 0
        y = self._M[: K + K * r] @ x
        return y[K:].reshape(r, K).T, y[:K]

    def mean_and_variance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the current ``theta @ x`` (K,), ``x' A_inv x`` (K,) and ``V' x`` (K, r)."""
        Z, prior_mean = self.project(x)
        r = Z.shape[1]
        g = self.pending_discount()
        W = Z / (self.strength[:, None] + g[:, None] * self.eig[:, :r])
        mean = prior_mean + g * np.einsum("kd,kd->k", W, self.resid[:, :r])
        # the part of x outside the data's span (none once an arm has rank d: the
        # difference would only be round-off, amplified by lambda + g s / lambda)
        outside = np.where(self.rank < self.dim, x @ x - np.einsum("kd,kd->k", Z, Z), 0.0)
        var = outside / self.strength + np.einsum("kd,kd->k", W, Z)
        return mean, var, Z

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

        ``u = V_k' x`` (the arm's row of ``mean_and_variance``'s projections) and ``mean``
        may be passed from a scoring call on the same ``x`` (before any other update);
        ``quad`` is accepted for the interface of ``RidgeArms`` and not needed. Nothing is
        modified if the eigen-update fails (``StateError``).
        """
        r = int(self.rank[k])
        lam = float(self.strength[k])
        Vt = self.basis[k, :r]
        s = self.eig[k, :r]
        g_now = self.forgetting ** float(self.t - self.last[k])
        z = Vt @ x if u is None else np.asarray(u)[:r]
        if mean is None:
            mean = self.theta0[k] @ x + g_now * float(z @ (self.resid[k, :r] / (lam + g_now * s)))
        residual = float(reward - mean)
        g = g_now * self.forgetting  # the data's discount once this event is counted
        Bt, zz, ss = Vt, z, g * s
        if r < self.dim:
            perp = x - Vt.T @ z
            perp -= Vt.T @ (Vt @ perp)  # second Gram-Schmidt pass keeps the basis orthonormal
            rho = float(np.sqrt(perp @ perp))
            if rho > self.EXTEND_TOL * float(np.sqrt(x @ x)):
                v = perp / rho
                Bt = np.vstack([Vt, v])
                zz = np.append(z, v @ x)
                ss = np.append(ss, 0.0)
        e = g * self.e[k] + (reward - self.theta0[k] @ x) * x
        Vt_new, s_new = self._rotate(k, Bt, np.multiply.outer(zz, zz) + np.diag(ss), lam)
        h = Vt_new @ e
        # commit (nothing above modified the state)
        self.t += 1
        self.last[k] = self.t
        self._pending[k].append((x.copy(), float(reward), self.t))
        self.e[k] = e
        self._install(k, Vt_new, s_new, h)
        self.counts[k] += 1
        self.since_refactor[k] += 1
        if self.since_refactor[k] >= self.refactor_every:
            self.refactor(k)
        return residual

    def _rotate(
        self, k: int, Bt: np.ndarray, M: np.ndarray, lam: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Diagonalise ``M`` (data in the basis ``Bt``), drop negligible directions."""
        if M.shape[0] == 0:
            return Bt, np.zeros(0)
        try:
            w, W = np.linalg.eigh(M)
        except np.linalg.LinAlgError as exc:
            raise StateError(
                f"the eigen-update of arm {k} failed ({exc}); its learned state was left "
                "unchanged. Restore a saved state or start anew."
            ) from None
        keep = w > self.DROP_TOL * lam
        return W[:, keep].T @ Bt, w[keep]

    def _install(self, k: int, Vt: np.ndarray, s: np.ndarray, h: np.ndarray) -> None:
        r, old = len(s), int(self.rank[k])  # rows past the old rank are zero already
        self.basis[k, :r] = Vt
        self.eig[k, :r] = s
        self.resid[k, :r] = h
        if old > r:
            self.basis[k, r:old] = 0.0
            self.eig[k, r:old] = 0.0
            self.resid[k, r:old] = 0.0
        self.rank[k] = r

    def refactor(self, k: int) -> None:
        """Recompute arm ``k``'s eigen-decomposition exactly from ``D_k`` and ``c_k``.

        The basis is re-orthonormalised (QR) and ``V' D V`` diagonalised, ``O(d^2 r)``.
        Raises ``StateError`` and changes nothing if a factorisation fails.
        """
        r = int(self.rank[k])
        if r:
            try:
                Q, _ = np.linalg.qr(self.basis[k, :r].T)
            except np.linalg.LinAlgError as exc:
                raise StateError(
                    f"the exact re-factorisation of arm {k} failed ({exc}); its learned state "
                    "was left unchanged. Restore a saved state or start anew."
                ) from None
            self.flush(k)
            D = self._D[k]
            Vt, s = self._rotate(k, Q.T, Q.T @ D @ Q, float(self.strength[k]))
            e = self._c[k] - D @ self.theta0[k]
            self._install(k, Vt, s, Vt @ e)
            self.e[k] = e
        self.since_refactor[k] = 0

    def refactor_all(self) -> None:
        for k in range(self.n_arms):
            self.refactor(k)

    # ---- prior strength -------------------------------------------------------------
    def data_statistics(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Arm ``k``'s discounted data as of now: ``g D_k`` ``(d, d)`` and ``g c_k`` ``(d,)``
        with ``g`` its pending discount (the prior's part is not in them)."""
        self.flush(k)
        g = float(self.pending_discount()[k])
        return g * self._D[k], g * self._c[k]

    def set_strength(self, k: int, strength: float, theta0: np.ndarray | None = None) -> None:
        """Give arm ``k`` the prior strength ``strength`` (and, with ``theta0`` ``(d,)``,
        that prior mean) with the same data, exactly.

        The data's eigen-decomposition and ``h_k`` do not involve ``lambda_k``, so only the
        strength changes: ``A_k = strength I + g D_k``, ``b_k = strength theta0_k + g c_k``
        (a new ``theta0`` re-factorises the arm for ``h_k = V_k' (c_k - D_k theta0_k)``).

        >>> arms = DiscountedRidgeArms(1, 2, np.array([100.0]), np.array([[1.0, 0.0]]), 0.99)
        >>> _ = arms.update(0, np.array([1.0, 0.0]), 0.0)
        >>> arms.set_strength(0, 1.0)
        >>> float(arms.theta[0, 0].round(3))   # (lambda theta0 + 0) / (lambda + 1)
        0.5
        """
        new = float(strength)
        if not (np.isfinite(new) and new > 0):
            raise StateError(f"a prior strength must be positive, got {strength}.")
        if theta0 is not None:
            old = self.theta0[k].copy(), self.e[k].copy()
            self.flush(k)
            self.theta0[k] = theta0
            self.e[k] = self._c[k] - self._D[k] @ self.theta0[k]  # as of the last update
            try:
                self.refactor(k)
            except StateError:
                self.theta0[k], self.e[k] = old
                raise
        self.strength[k] = new

    # ---- arms -----------------------------------------------------------------------
    _PER_ARM = (
        "_D", "_c", "e", "eig", "resid", "rank", "counts", "since_refactor", "last", "strength"
    )  # fmt: skip

    def _resize(self, keep: list[int], extra: tuple[float, np.ndarray] | None) -> None:
        """Rebuild the buffers with arms ``keep`` (old indices) plus an optional new arm."""
        self.flush()
        old = {name: getattr(self, name)[keep] for name in self._PER_ARM}
        basis, theta0 = self.basis[keep], self.theta0[keep]
        if extra is not None:
            strength, new_theta0 = extra
            d = self.dim
            for name in ("_D", "_c", "e", "eig", "resid", "rank", "counts", "since_refactor"):
                arr = old[name]
                old[name] = np.concatenate([arr, np.zeros((1, *arr.shape[1:]), arr.dtype)])
            old["last"] = np.append(old["last"], self.t)
            old["strength"] = np.append(old["strength"], strength)
            basis = np.concatenate([basis, np.zeros((1, d, d))])
            theta0 = np.vstack([theta0, new_theta0])
        self._alloc(len(theta0))
        self.basis[:] = basis
        self.theta0[:] = theta0
        for name, value in old.items():
            setattr(self, name, value)
        self._folded = self.last.copy()

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
        if "D" not in arrays and "A_inv" in arrays:
            raise StateError(
                "this state of a forgetting policy was saved by an earlier release, whose "
                "forgetting discounted the prior too; it cannot be continued. Start the "
                "policy anew (from its prior)."
            )
        _check_shapes(
            arrays,
            {
                "D": (K, d, d), "c": (K, d), "e": (K, d), "basis": (K, d, d), "eig": (K, d),
                "resid": (K, d), "rank": (K,), "counts": (K,), "since_refactor": (K,),
                "strength": (K,), "theta0": (K, d), "last": (K,), "clock": (),
            },
        )  # fmt: skip
        rank = arrays["rank"]
        if (rank < 0).any() or (rank > d).any():
            raise StateError(f"state array 'rank' has values outside [0, {d}].")

    def load(self, arrays) -> None:
        K = arrays["theta0"].shape[0]
        self._alloc(K)
        self.basis[:] = arrays["basis"]
        self.theta0[:] = arrays["theta0"]
        self._D = np.array(arrays["D"], dtype=np.float64)
        self._c = np.array(arrays["c"], dtype=np.float64)
        for name in ("e", "eig", "resid", "strength"):
            setattr(self, name, np.array(arrays[name], dtype=np.float64))
        for name in ("rank", "counts", "since_refactor", "last"):
            setattr(self, name, np.array(arrays[name], dtype=np.int64))
        self._folded = self.last.copy()
        self.t = int(arrays["clock"])
