"""Shared machinery of the linear policies (LinUCB, LinTS, epsilon-greedy)."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from bandit_router.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    StateError,
)
from bandit_router.policies.base import Policy
from bandit_router.policies.drift import DriftWatch
from bandit_router.policies.prior import ArmPrior
from bandit_router.policies.ridge import RidgeArms, ridge_arms
from bandit_router.policies.selection import Selection

_F64 = np.dtype(np.float64)  # native float64 (``x.dtype is _F64``: one pointer comparison)


def exploration_discount(
    sel: Selection, reward_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray | None:
    """Cost-aware exploration: the factor ``(K,)`` on each model's exploration bonus under
    a budget, ``max(0, 1 - price / span)`` with ``price = psi(z) cost`` the allocator's
    price in reward units (above the reward range's low end) and ``span`` the reward range's
    width; None without prices (no budget: bonus unchanged).

    Exploring a model costs its price: while the budget is slack the price (and so the
    discount) is small for every model, and as the budget binds a model whose price
    approaches the most its answer could be worth loses its bonus, so the budget is not
    spent exploring models dominated at their price. (A discount by price *ratios* was
    tried first: it never explored a model 50 times dearer even with the budget unspent,
    the lock-on-the-cheapest this is meant to avoid.) Depends only on the selection,
    never on the policy's draw, so propensities stay exact.

    >>> sel = Selection(np.array([True, True, True]), np.array([0.01, 0.25, 2.0]))
    >>> exploration_discount(sel).tolist()
    [0.99, 0.75, 0.0]
    """
    price = sel.price
    if price is None:
        return None
    lo, hi = float(reward_range[0]), float(reward_range[1])
    f = price - lo  # in place below: np.clip's wrapper costs more than the arithmetic
    f /= hi - lo
    np.subtract(1.0, f, out=f)
    np.maximum(f, 0.0, out=f)
    return np.minimum(f, 1.0, out=f)


def discounted_values(
    mean: np.ndarray, value: np.ndarray, factor: np.ndarray, price: np.ndarray
) -> np.ndarray:
    """Values ``(K,)`` or ``(n, K)`` with each model's exploration (``value - mean`` above
    the mean) times ``factor`` ``(K,)``; never below ``min(value, price)``, so the models
    whose value clears their price (the allocator's admitted set) stay admitted, and no
    value rises (none is newly admitted).

    >>> discounted_values(np.array([0.5, 0.5]), np.array([0.9, 0.3]), np.array([0.5, 0.5]),
    ...                   np.array([0.8, 0.0]))
    array([0.8, 0.3])
    """
    dev = value - mean
    out = mean + np.where(dev > 0.0, factor * dev, dev)
    return np.maximum(out, np.minimum(value, price))


class LinearPolicy(Policy):
    """Disjoint ridge arms with optional priors, forgetting and drift watch.

    Parameters
    ----------
    ridge
        Strength of the default prior ``N(0, I / ridge)`` of arms without a prior. Without
        any prior the arms learn ``reward - m`` (``m`` the middle of ``reward_range``), so
        an arm without data is estimated at ``m``.
    priors
        Optional ``{arm: ArmPrior}`` (or ``{arm: {"theta0": [...], "strength": s}}``, the
        JSON form ``config()`` gives). Arms missing from it start from the pooled mean of
        the given priors with strength ``cold_strength`` (default ``ridge``).
    forgetting
        Discount ``gamma`` in (0, 1] of every arm's past observations at each update of any
        arm (1 = stationary ridge). The prior is never discounted: an arm idle for ``n``
        events has ``A = lambda I + gamma^n D`` and drifts back to its prior.
    refactor_every
        Exact re-factorisation of an arm's inverse every that many of its updates.
    drift
        Watch the residuals with ADWIN and multiply exploration by ``drift_boost`` for
        ``drift_boost_steps`` updates after a detected change.
    trust
        Adaptive trust in the prior (on by default for ``pilot`` / ``pilot-ts``): every
        ``trust_every`` updates of an arm, the strength ``lambda`` in ``[trust_floor,
        lambda_0]``
        under which the arm's own observations are most likely is found (the profile
        likelihood of the prior's residuals ``r - x' theta0`` under ``N(0, sigma^2 (I +
        X X' / lambda))``, ``sigma^2`` profiled out; ``lambda_0`` is the prior's strength),
        and the arm's prior strength is lowered to it exactly (``set_strength``) when it
        beats the current one by more than ``trust_margin`` nats, but only once the prior
        has predicted the arm's rewards worse than the arm's running mean would have (a
        prequential test at ``trust_z`` standard errors: a Gaussian likelihood alone also
        rejects right priors on 0/1 rewards; an arm's own test waits for
        ``TRUST_MIN_ARM`` observations of it, as a few 0/1 rewards make its standard
        error meaningless). The same is done jointly over all arms every ``trust_every``
        updates of any arm, with one scale on every arm's strength or, when more likely,
        the prior dropped (``_check_trust_jointly``). A wrong prior (another workload, a
        model that changed) so loses its weight and the arms learn like ones without
        prior; a right one keeps it.
    """

    #: observations of an arm before its own prequential test may lower its strength
    TRUST_MIN_ARM = 30

    def __init__(
        self,
        arms,
        dim: int,
        *,
        ridge: float = 1.0,
        priors: Mapping[str, ArmPrior | Mapping[str, Any]] | None = None,
        cold_strength: float | None = None,
        forgetting: float = 1.0,
        refactor_every: int = 500,
        drift: bool = False,
        drift_delta: float = 0.002,
        drift_boost: float = 2.0,
        drift_boost_steps: int = 200,
        trust: bool = False,
        trust_every: int = 10,
        trust_margin: float = 3.0,
        trust_floor: float = 1.0,
        trust_z: float = 3.0,
        reward_range: tuple[float, float] = (0.0, 1.0),
        seed: int | None = None,
    ) -> None:
        super().__init__(arms, dim, reward_range=reward_range, seed=seed)
        if int(trust_every) < 1:
            raise ConfigurationError(f"trust_every must be >= 1, got {trust_every}.")
        if not trust_margin >= 0:
            raise ConfigurationError(f"trust_margin must be >= 0, got {trust_margin}.")
        self.trust = bool(trust)
        self.trust_every = int(trust_every)
        self.trust_margin = float(trust_margin)
        if not trust_floor > 0:
            raise ConfigurationError(f"trust_floor must be positive, got {trust_floor}.")
        self.trust_floor = float(trust_floor)
        if not trust_z >= 0:
            raise ConfigurationError(f"trust_z must be >= 0, got {trust_z}.")
        self.trust_z = float(trust_z)
        if not ridge > 0:
            raise ConfigurationError(f"ridge must be positive, got {ridge}.")
        if not 0.0 < forgetting <= 1.0:
            raise ConfigurationError(f"forgetting must be in (0, 1], got {forgetting}.")
        if int(refactor_every) < 1:
            raise ConfigurationError(f"refactor_every must be >= 1, got {refactor_every}.")
        self.ridge = float(ridge)
        self.cold_strength = float(cold_strength) if cold_strength is not None else self.ridge
        if not self.cold_strength > 0:
            raise ConfigurationError(f"cold_strength must be positive, got {cold_strength}.")
        self.forgetting = float(forgetting)
        self.refactor_every = int(refactor_every)
        self.drift = bool(drift)
        self.drift_delta = float(drift_delta)
        self.drift_boost = float(drift_boost)
        self.drift_boost_steps = int(drift_boost_steps)
        self.watch = DriftWatch(drift_delta, drift_boost, drift_boost_steps) if drift else None
        priors = {str(a): ArmPrior.coerce(p) for a, p in (priors or {}).items()}
        strength, theta0 = self._initial_priors(priors)
        # Without priors every arm learns the reward minus the middle of the reward range,
        # so an arm without data is estimated at that middle, not at the range's bottom: an
        # estimate of 0 for every untried model made low-alpha LinUCB under a budget lock
        # onto the fallback (the cheapest model), as no untried model cleared its price.
        lo, hi = self.reward_range
        self._offset = 0.0 if priors else 0.5 * (float(lo) + float(hi))
        self.state = ridge_arms(
            self.n_arms, self.dim, strength, theta0, self.forgetting, self.refactor_every
        )
        # the float64 stationary state scores into its own buffers (``_mean_width``)
        self._fast = type(self.state) is RidgeArms and self.state.dtype == np.float64
        # the strengths the arms started from, and the adaptive trust's statistics per arm:
        # (discounted) sum of squared rewards, count, updates since the last check
        self._lambda0 = strength.copy()
        self._theta0_start = theta0.copy()
        self._trust_yy = np.zeros(self.n_arms)
        self._trust_n = np.zeros(self.n_arms)
        self._trust_since = np.zeros(self.n_arms, dtype=np.int64)
        # prequential test per arm: (discounted) sum of rewards, and of the differences
        # d = (r - x' theta0)^2 - (r - running mean)^2, d^2 and the largest variance d can
        # have if the prior is right (``_prior_worse``), ``(K, 4)``
        self._trust_pq = np.zeros((self.n_arms, 4))
        self._trust_scale = 1.0  # the joint test's scale on every arm's starting strength
        # arm -> (key, (e, z2, rr)): the last eigen-decomposition of the arm's data
        self._trust_memo: dict[int, tuple] = {}
        self.trust_events = 0
        # (x, x bytes, A_inv x per arm, theta'x, x'A_inv x) of the last scoring call
        # (None, None, None for the last three: in the state's buffers, ``score_into``)
        self._cache: tuple | None = None
        self._best = -2  # argmax of the last LinUCB values from the compiled score, -2: none

    # ---- priors ---------------------------------------------------------------------
    def _initial_priors(self, priors: Mapping[str, ArmPrior]) -> tuple[np.ndarray, np.ndarray]:
        unknown = sorted(set(priors) - set(self._arms))
        if unknown:
            raise ConfigurationError(
                f"priors given for models that are not arms: {unknown}; arms are {self._arms}."
            )
        for arm, p in priors.items():
            if p.theta0.shape != (self.dim,):
                raise DimensionMismatchError(
                    f"prior of {arm!r} has {p.theta0.shape[0]} dimensions, the policy {self.dim}; "
                    "build the policy with the prior's featurizer."
                )
        K, d = self.n_arms, self.dim
        strength = np.full(K, self.ridge)
        theta0 = np.zeros((K, d))
        if priors:
            pooled = np.mean([p.theta0 for p in priors.values()], axis=0)
            for k, arm in enumerate(self._arms):
                p = priors.get(arm)
                if p is None:
                    strength[k], theta0[k] = self.cold_strength, pooled
                else:
                    strength[k], theta0[k] = p.strength, p.theta0
        return strength, theta0

    def _add_arm_state(self, arm: str, prior: ArmPrior | None) -> None:
        if prior is None:
            theta0, strength = self.state.theta.mean(axis=0), self.cold_strength
        else:
            if prior.theta0.shape != (self.dim,):
                raise DimensionMismatchError(
                    f"prior of {arm!r} has {prior.theta0.shape[0]} dimensions, expected {self.dim}."
                )
            theta0, strength = prior.theta0, prior.strength
        self.state.add(strength, theta0)
        self._lambda0 = np.append(self._lambda0, strength)
        self._theta0_start = np.vstack([self._theta0_start, np.asarray(theta0, float)[None]])
        self._trust_yy = np.append(self._trust_yy, 0.0)
        self._trust_n = np.append(self._trust_n, 0.0)
        self._trust_since = np.append(self._trust_since, 0)
        self._trust_pq = np.vstack([self._trust_pq, np.zeros((1, 4))])
        self._trust_memo.clear()
        self._cache = None

    def _remove_arm_state(self, k: int) -> None:
        self.state.remove(k)
        for name in ("_lambda0", "_trust_yy", "_trust_n", "_trust_since"):
            setattr(self, name, np.delete(getattr(self, name), k))
        self._trust_pq = np.delete(self._trust_pq, k, axis=0)
        self._theta0_start = np.delete(self._theta0_start, k, axis=0)
        self._trust_memo.clear()
        self._cache = None

    # ---- adaptive trust in the prior ------------------------------------------------
    def prior_strengths(self) -> np.ndarray:
        """Every arm's current prior strength ``(K,)`` (below its starting one when the
        adaptive trust lowered it)."""
        return self.state.strength.copy()

    def _trust_spectrum(
        self, k: int, yy: float, theta0: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Arm ``k``'s data spectrum for the evidence: eigenvalues ``e`` ``(d,)`` of ``D``,
        ``z2`` ``(d,)`` (the prior's residual ``c - D theta0`` in that basis, squared) and
        ``rr`` (the sum of the prior's squared residuals), around the arm's prior mean or
        ``theta0`` ``(d,)``.

        One ``O(d^3)`` eigen-decomposition, kept until the arm's data changes (an update of
        the arm; with forgetting, an update of any arm) or its strength does: a check then
        costs one decomposition per arm updated since the last, not one per arm (the joint
        test reads every arm). Another prior mean reuses it (``O(d^2)``). The same
        arithmetic as without the memo, so the same values.
        """
        st = self.state
        key = (
            int(st.counts[k]),
            float(st.strength[k]),
            yy,
            st.t if self.forgetting < 1.0 else 0,
        )
        hit = self._trust_memo.get(k)
        if hit is None or hit[0] != key:
            D, c = st.data_statistics(k)
            e, V = np.linalg.eigh(0.5 * (D + D.T))
            e = np.maximum(e, 0.0)
            hit = (key, (D, c, e, V), {})
            self._trust_memo[k] = hit
        D, c, e, V = hit[1]
        own = theta0 is None
        if own and "own" in hit[2]:
            return hit[2]["own"]
        th0 = st.theta0[k] if own else theta0
        Dth = D @ th0
        rr = yy - 2.0 * float(th0 @ c) + float(th0 @ Dth)  # sum of the prior's residuals^2
        z2 = (V.T @ (c - Dth)) ** 2
        if own:
            hit[2]["own"] = (e, z2, rr)
        return e, z2, rr

    def _trust_evidence(
        self, k: int, grid: np.ndarray, theta0: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Profile log-likelihood of arm ``k``'s observations for prior strengths ``grid``
        around its prior mean (or ``theta0`` ``(d,)``)."""
        n = float(self._trust_n[k])
        yy = float(self._trust_yy[k])
        if not (np.isfinite(yy) and n >= 2.0):
            return None
        e, z2, rr = self._trust_spectrum(k, yy, theta0)
        L = grid[:, None]
        quad = np.maximum(rr - np.sum(z2 / (L + e), axis=1), 1e-12 * max(rr, 1e-300))
        return -0.5 * n * np.log(quad / n) - 0.5 * np.sum(np.log1p(e / L), axis=1)

    def _prior_worse(self, rows: np.ndarray) -> bool:
        """The prequential test: over the arms ``rows``, has the prior predicted the
        observed rewards worse than each arm's running mean (a predictor with no prior and
        no context), by more than ``trust_z`` standard errors?

        The standard error is the larger of the one estimated from the differences ``d``
        and the largest one ``d`` can have if the prior is right: with ``p = x' theta0``
        and ``m`` the running mean, ``Var d = 4 (m - p)^2 Var r <= 4 (m - p)^2 (hi - p)
        (p - lo)`` for rewards in ``[lo, hi]``. A few 0/1 rewards alike (ten misses in a
        row of a model the prior gives even odds) make the estimated one nearly 0, and a
        right prior was dropped on them."""
        n = self._trust_n[rows]
        if n.sum() < 10.0:
            return False
        d, d2 = self._trust_pq[rows, 1], self._trust_pq[rows, 2]
        var = float(np.sum(d2 - np.where(n > 0, d * d / np.maximum(n, 1e-300), 0.0)))
        var = max(var, float(self._trust_pq[rows, 3].sum()))
        return float(d.sum()) > self.trust_z * np.sqrt(max(var, 1e-300))

    def _check_trust(self, k: int) -> None:
        """Arm ``k``'s own test, then the joint one of one scale on every arm's strength
        (a prior is one model of all arms: evidence against it on the arms that were tried
        also lowers it on those not tried yet, which otherwise would never be corrected).
        Strengths are only changed when the prior predicts worse than no prior would
        (``_prior_worse``), and then to the most likely one below the current."""
        self._trust_since[k] = 0
        if self._trust_scale == 0.0:  # the prior was dropped (``_check_trust_jointly``)
            return
        lam0 = float(self._lambda0[k])
        floor = min(self.trust_floor, lam0)
        cur = float(self.state.strength[k])
        # a strength at the floor cannot be lowered (the grid starts at the floor): skip
        if (
            lam0 > floor
            and cur > floor
            and self._trust_n[k] >= self.TRUST_MIN_ARM
            and self._prior_worse(np.array([k]))
        ):
            grid = np.append(np.geomspace(floor, lam0, 25), cur)
            ll = self._trust_evidence(k, grid)
            if ll is not None:
                i = int(ll[:-1].argmax())
                if ll[i] - ll[-1] > self.trust_margin and grid[i] < cur:
                    self.state.set_strength(k, float(grid[i]))
                    self._trust_memo.pop(k, None)
                    self.trust_events += 1
        self._check_trust_jointly()

    def _check_trust_jointly(self) -> None:
        """The joint test (one scale on every arm's starting strength, or no prior at all):
        once the prior predicts worse than the arms' running means (``_prior_worse`` over
        every arm), the most likely of (a) every strength scaled down and (b) the prior
        dropped (every arm's mean moved to the pooled mean of the starting priors, the same
        for all, at ``trust_floor``: a prior-free start that keeps the level and what the
        queries share, but no ranking of the models) is taken when it beats the current
        state by ``trust_margin`` nats. Dropping is for good: an inverted or mismatched
        prior's means still pull every arm the wrong way at the floor strength."""
        lam0 = self._lambda0
        floors = np.minimum(self.trust_floor, lam0)
        ratio = float((floors / lam0).min()) if len(lam0) else 1.0
        # once dropped the prior stays dropped; at the lowest scale the drop is still tested
        if (
            ratio >= 1.0
            or self._trust_scale == 0.0
            or not self._prior_worse(np.arange(self.n_arms))
        ):
            return
        scales = np.append(np.geomspace(ratio, 1.0, 25), self._trust_scale)
        pooled = self._theta0_start.mean(axis=0)
        total = np.zeros(len(scales))
        dropped = 0.0
        used = 0
        for j in range(self.n_arms):
            ll = self._trust_evidence(j, np.maximum(floors[j], scales * lam0[j]))
            if ll is not None:
                total += ll
                dropped += float(self._trust_evidence(j, floors[j : j + 1], pooled)[0])
                used += 1
        if used == 0:
            return
        i = int(total[:-1].argmax())
        if dropped > total[i] and dropped - total[-1] > self.trust_margin:
            self._trust_scale = 0.0
            for j in range(self.n_arms):
                self.state.set_strength(j, float(floors[j]), theta0=pooled)
            self._trust_memo.clear()  # the memo is keyed on strengths, not on prior means
            self.trust_events += 1
            return
        if total[i] - total[-1] > self.trust_margin and scales[i] < self._trust_scale:
            self._trust_scale = float(scales[i])
            target = np.maximum(floors, self._trust_scale * lam0)
            for j in np.flatnonzero(self.state.strength > target * (1 + 1e-12)):
                self.state.set_strength(int(j), float(target[j]))
                self._trust_memo.pop(int(j), None)
            self.trust_events += 1

    # ---- scoring --------------------------------------------------------------------
    @property
    def exploration_scale(self) -> float:
        return self.watch.scale if self.watch is not None else 1.0

    def _mean_width(
        self, x: np.ndarray, alpha: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Means, widths and values ``width * alpha + mean`` (left empty when ``alpha`` is
        None), rows of one new ``(3, K)`` array (the scores own it; nothing is reused)."""
        st = self.state
        if self._fast and type(x) is np.ndarray and x.dtype is _F64 and x.shape == self._shape:
            # the float64 stationary state: the products go into its buffers, no copies;
            # the update of the chosen arm reuses them (``update_scored``)
            out = np.empty((3, st._var.shape[0]))
            kern = st.kernels
            if kern is not None:  # one compiled pass (the optional extra)
                best = kern.score(
                    st._M, x, st._Y, st._var, out, 0.0 if alpha is None else alpha, self._offset
                )
                if best == -1:
                    raise InvalidInputError("context contains NaN or infinite values.")
                self._cache = (x, x.tobytes(), None, None, None)
                self._best = best  # the values' argmax (-2: numpy decides)
                return out[0], out[1], out[2]
            self._best = -2
            if not st.score_into(x):
                raise InvalidInputError("context contains NaN or infinite values.")
            self._cache = (x, x.tobytes(), None, None, None)
            mean, width, value = out[0], out[1], out[2]
            if self._offset:
                np.add(st._Ymean, self._offset, out=mean)
            else:
                mean[:] = st._Ymean
            np.maximum(st._var, 0.0, out=width)
            np.sqrt(width, out=width)
        else:
            self._best = -2
            x = self.check_context(x)
            mean, var, U = st.mean_and_variance(x)
            self._cache = (x, x.tobytes(), U, mean, var)
            if self._offset:
                mean = mean + self._offset
            width = np.maximum(var, 0.0)  # a copy: var stays cached for the update
            np.sqrt(width, out=width)
            value = np.empty_like(width)
        if alpha is not None:
            np.multiply(width, alpha, out=value)
            value += mean
        return mean, width, value

    # ---- learning -------------------------------------------------------------------
    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        k = self._index.get(arm)
        if k is None:
            k = self.arm_index(arm)  # raises
        r = float(reward)
        lo, hi = self.reward_range
        if not (lo <= r <= hi):
            r = self.check_reward(reward)  # raises
        r -= self._offset
        if self.trust:
            g = 1.0
            if self.forgetting < 1.0:  # the data's discount once this event is counted
                g = float(self.state.pending_discount()[k]) * self.forgetting
            n_k = self._trust_n[k]
            pq = self._trust_pq[k]
            m = pq[0] / n_k if n_k > 0 else 0.5 * sum(self.reward_range) - self._offset
            pred0 = float(self.state.theta0[k] @ x)
            dd = (r - pred0) ** 2 - (r - m) ** 2
            lo, hi = self.reward_range[0] - self._offset, self.reward_range[1] - self._offset
            p = min(max(pred0, lo), hi)
            pq *= g
            pq += (r, dd, dd * dd, 4.0 * (m - p) ** 2 * (hi - p) * (p - lo))
            self._trust_yy[k] = g * self._trust_yy[k] + r * r
            self._trust_n[k] = g * n_k + 1.0
            self._trust_since[k] += 1
        cache = self._cache
        if cache is not None and x is cache[0] and x.tobytes() == cache[1]:
            if cache[2] is None:  # scored by ``score_into``: its buffers hold the products
                residual = self.state.update_scored(k, x, r)
            else:
                residual = self.state.update(
                    k, x, r, cache[2][k], float(cache[3][k]), float(cache[4][k])
                )
        else:
            residual = self.state.update(k, self.check_context(x), r)
        self._cache = None
        self.n_updates += 1
        if self.watch is not None:
            self.watch.observe(residual)
        if self.trust:
            if self._trust_since[k] >= self.trust_every:
                self._check_trust(k)  # the arm's test, then the joint one
            elif self.n_updates % self.trust_every == 0:
                self._check_trust_jointly()

    @property
    def theta(self) -> np.ndarray:
        """Current mean estimate of every arm, shape ``(K, d)``."""
        return self.state.theta

    def sample_parameters(self, scale: float = 1.0) -> np.ndarray:
        """Draw every arm's weights from ``N(theta_k, scale^2 A_k^-1)`` through a Cholesky factor.

        Returns ``(K, d)``. ``theta_k`` and ``A_k`` are the current posterior: with
        forgetting they include the discount of the events since the arm's last update,
        like the widths of ``score``. Deciding does not need this (the draw's projection on
        ``x`` is sampled exactly from its one-dimensional law), but it is the full draw.
        """
        theta, A_inv = self.state.theta, self.state.A_inv
        L = np.linalg.cholesky(A_inv)
        z = self.rng.standard_normal(theta.shape)
        return theta + scale * np.einsum("kij,kj->ki", L, z)

    # ---- state ----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.update(
            ridge=self.ridge,
            cold_strength=self.cold_strength,
            forgetting=self.forgetting,
            refactor_every=self.refactor_every,
            drift=self.drift,
            drift_delta=self.drift_delta,
            drift_boost=self.drift_boost,
            drift_boost_steps=self.drift_boost_steps,
            trust=self.trust,
            trust_every=self.trust_every,
            trust_margin=self.trust_margin,
            trust_floor=self.trust_floor,
            trust_z=self.trust_z,
            priors=self.prior_config(),
        )
        return cfg

    def prior_config(self) -> dict[str, dict[str, Any]] | None:
        """Every arm's starting point as JSON-ready ``{arm: {"theta0": [...], "strength": s}}``.

        ``None`` when every arm starts from the default ``N(0, I / ridge)``. Arms that were
        cold (pooled mean) or added at run time are listed with the prior they started from,
        so ``type(policy)(**policy.config())`` starts exactly where this policy started.
        """
        theta0, strength = self._theta0_start, self._lambda0
        if not (theta0.any() or (strength != self.ridge).any()):
            return None
        return {
            arm: ArmPrior(theta0[k], strength[k]).to_config() for k, arm in enumerate(self._arms)
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = dict(self.state.arrays())
        if self.watch is not None:
            arrays["drift_watch"] = np.frombuffer(pickle.dumps(self.watch), dtype=np.uint8)
        if self.trust:
            arrays["trust_yy"] = self._trust_yy
            arrays["trust_n"] = self._trust_n
            arrays["trust_since"] = self._trust_since
            arrays["trust_scale"] = np.array(self._trust_scale)
            arrays["trust_pq"] = self._trust_pq
        arrays["lambda0"] = self._lambda0
        arrays["theta0_start"] = self._theta0_start
        # prior-free arms learn reward - offset; config() lists an arm added at run time
        # (pooled-mean start) as a prior, which alone would rebuild the policy without it
        arrays["reward_offset"] = np.array(self._offset)
        return arrays

    def _validate_state(self, arrays, extra) -> None:
        self.state.check_arrays(arrays, self.n_arms)
        if self.drift and "drift_watch" not in arrays:
            raise StateError("state of a drift-watching policy lacks its detector.")

    def _restore(self, arrays, extra) -> None:
        self.state.load(arrays)
        if "reward_offset" in arrays:
            self._offset = float(arrays["reward_offset"])
        K = self.n_arms
        lam0 = arrays.get("lambda0")
        self._lambda0 = (
            np.array(lam0, dtype=np.float64)
            if lam0 is not None and lam0.shape == (K,)
            else self.state.strength.copy()
        )
        th0 = arrays.get("theta0_start")
        self._theta0_start = (
            np.array(th0, dtype=np.float64)
            if th0 is not None and th0.shape == (K, self.dim)
            else self.state.theta0.copy()
        )
        if self.trust and "trust_yy" in arrays and arrays["trust_yy"].shape == (K,):
            self._trust_yy = np.array(arrays["trust_yy"], dtype=np.float64)
            self._trust_n = np.array(arrays["trust_n"], dtype=np.float64)
            self._trust_since = np.array(arrays["trust_since"], dtype=np.int64)
            self._trust_scale = float(arrays.get("trust_scale", 1.0))
            pq = arrays.get("trust_pq")
            self._trust_pq = np.zeros((K, 4))
            if pq is not None and pq.ndim == 2 and pq.shape[0] == K and pq.shape[1] in (3, 4):
                self._trust_pq[:, : pq.shape[1]] = pq  # states from before the bound: 0
        else:  # a state saved without the statistics: arms with data are not re-checked
            self._trust_yy = np.where(self.state.counts > 0, np.nan, 0.0)
            self._trust_n = np.zeros(K)
            self._trust_since = np.zeros(K, dtype=np.int64)
            self._trust_pq = np.zeros((K, 4))
        if self.drift:
            self.watch = pickle.loads(arrays["drift_watch"].tobytes())  # our own checksummed blob
        self._trust_memo.clear()
        self._cache = None
