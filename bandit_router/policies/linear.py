"""Shared machinery of the linear policies (LinUCB, LinTS, epsilon-greedy)."""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError, DimensionMismatchError, StateError
from bandit_router.policies.base import ArmScores, Decision, Policy
from bandit_router.policies.drift import DriftWatch
from bandit_router.policies.prior import ArmPrior
from bandit_router.policies.ridge import ridge_arms


class LinearPolicy(Policy):
    """Disjoint ridge arms with optional priors, forgetting and drift watch.

    Parameters
    ----------
    ridge
        Strength of the default prior ``N(0, I / ridge)`` of arms without a prior.
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
    """

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
        reward_range: tuple[float, float] = (0.0, 1.0),
        seed: int | None = None,
    ) -> None:
        super().__init__(arms, dim, reward_range=reward_range, seed=seed)
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
        self.state = ridge_arms(
            self.n_arms, self.dim, strength, theta0, self.forgetting, self.refactor_every
        )
        # (x, x bytes, A_inv x per arm, theta'x, x'A_inv x) of the last scoring call
        self._cache: tuple | None = None

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
        self._cache = None

    def _remove_arm_state(self, k: int) -> None:
        self.state.remove(k)
        self._cache = None

    # ---- scoring --------------------------------------------------------------------
    @property
    def exploration_scale(self) -> float:
        return self.watch.scale if self.watch is not None else 1.0

    def _mean_width(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.check_context(x)
        mean, var, U = self.state.mean_and_variance(x)
        self._cache = (x, x.tobytes(), U, mean, var)
        width = np.maximum(var, 0.0)  # a copy: var stays cached for the update
        return mean, np.sqrt(width, out=width)

    def _greedy_choice(
        self, scores: ArmScores, allowed: Iterable[str] | np.ndarray | None, epsilon: float
    ) -> Decision:
        """Arg-max of ``scores.value`` with an epsilon-uniform exploration floor."""
        mask = self.allowed_mask(allowed)
        value = scores.value if mask is None else np.where(mask, scores.value, -np.inf)
        best = int(value.argmax())
        if epsilon <= 0.0:
            return Decision(self._arms[best], best, scores, 1.0)
        n_ok = self.n_arms if mask is None else int(mask.sum())
        explored = bool(self.rng.random() < epsilon)
        k = best
        if explored:
            pool = np.arange(self.n_arms) if mask is None else np.flatnonzero(mask)
            k = int(pool[self.rng.integers(len(pool))])
        p = epsilon / n_ok + (1.0 - epsilon if k == best else 0.0)
        return Decision(self._arms[k], k, scores, p, explored=explored)

    # ---- learning -------------------------------------------------------------------
    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        k = self.arm_index(arm)
        r = self.check_reward(reward)
        cache = self._cache
        if cache is not None and x is cache[0] and x.tobytes() == cache[1]:
            residual = self.state.update(
                k, x, r, cache[2][k], float(cache[3][k]), float(cache[4][k])
            )
        else:
            residual = self.state.update(k, self.check_context(x), r)
        self._cache = None
        self.n_updates += 1
        if self.watch is not None:
            self.watch.observe(residual)

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
            priors=self.prior_config(),
        )
        return cfg

    def prior_config(self) -> dict[str, dict[str, Any]] | None:
        """Every arm's starting point as JSON-ready ``{arm: {"theta0": [...], "strength": s}}``.

        ``None`` when every arm starts from the default ``N(0, I / ridge)``. Arms that were
        cold (pooled mean) or added at run time are listed with the prior they started from,
        so ``type(policy)(**policy.config())`` starts exactly where this policy started.
        """
        theta0, strength = self.state.theta0, self.state.strength
        if not (theta0.any() or (strength != self.ridge).any()):
            return None
        return {
            arm: ArmPrior(theta0[k], strength[k]).to_config() for k, arm in enumerate(self._arms)
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = dict(self.state.arrays())
        if self.watch is not None:
            arrays["drift_watch"] = np.frombuffer(pickle.dumps(self.watch), dtype=np.uint8)
        return arrays

    def _validate_state(self, arrays, extra) -> None:
        self.state.check_arrays(arrays, self.n_arms)
        if self.drift and "drift_watch" not in arrays:
            raise StateError("state of a drift-watching policy lacks its detector.")

    def _restore(self, arrays, extra) -> None:
        self.state.load(arrays)
        if self.drift:
            self.watch = pickle.loads(arrays["drift_watch"].tobytes())  # our own checksummed blob
        self._cache = None
