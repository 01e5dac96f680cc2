"""river's context-free bandits (UCB, Thompson sampling, Exp3) behind our policy interface.

They ignore the query and learn one reward figure per model: the baselines a simulator run
compares contextual routing against.
"""

from __future__ import annotations

import math
import pickle
from typing import Any, ClassVar

import numpy as np

from bandit_router.errors import ConfigurationError, InvalidInputError, StateError
from bandit_router.policies.base import ArmScores, Decision, Policy


class RiverPolicy(Policy):
    """Wraps one river bandit policy. Rewards are rescaled to [0, 1] from ``reward_range``.

    >>> import numpy as np
    >>> pol = RiverUCB(["a", "b"], dim=3, seed=0)
    >>> d = pol.decide(np.zeros(3))
    >>> d.arm in ("a", "b")
    True
    """

    kind: ClassVar[str] = ""

    def __init__(self, arms, dim: int, **kwargs: Any) -> None:
        super().__init__(arms, dim, **kwargs)
        self._seed_int = int(self.seed) if self.seed is not None else 0
        self.model = self._make()

    def _make(self):
        raise NotImplementedError

    def _unit(self, reward: float) -> float:
        lo, hi = self.reward_range
        return (reward - lo) / (hi - lo)

    def _means(self) -> np.ndarray:
        out = np.zeros(self.n_arms)
        for k, arm in enumerate(self._arms):
            obj = self.model._rewards.get(arm)
            if obj is None:
                continue
            if hasattr(obj, "alpha") and hasattr(obj, "beta"):  # a Beta posterior
                out[k] = obj.alpha / (obj.alpha + obj.beta)
            else:
                out[k] = float(obj.get() or 0.0)
        return out

    def score(self, x: np.ndarray) -> ArmScores:
        self.check_context(x)
        mean = self._means()
        return ArmScores(self._arms, mean, np.zeros(self.n_arms), mean.copy())

    def _pool(self, scores: ArmScores, allowed) -> list[str]:
        """The models river picks among: the admitted ones (their mean clears the price),
        else the fallback alone."""
        sel = self.selection(allowed)
        ok = sel.admitted(scores.value)
        if not ok.any():
            if sel.fallback < 0:
                raise InvalidInputError("no model clears its price and there is no fallback.")
            return [self._arms[sel.fallback]]
        return [a for a, good in zip(self._arms, ok, strict=True) if good]

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        pool = self._pool(scores, allowed)
        p = self._pool_probabilities(pool)
        arm = self.model.pull(pool)
        return Decision(
            arm, self._index[arm], scores, p[pool.index(arm)], mc_draws=self._mc_draws(pool)
        )

    def action_probabilities(self, scores: ArmScores, allowed=None) -> np.ndarray:
        pool = self._pool(scores, allowed)
        out = np.zeros(self.n_arms)
        for a, q in zip(pool, self._pool_probabilities(pool), strict=True):
            out[self._index[a]] = q
        return out

    def _pool_probabilities(self, pool: list[str]) -> np.ndarray:
        """Probability of each model of ``pool`` under river's ``pull(pool)``."""
        raise NotImplementedError

    def _mc_draws(self, pool: list[str]) -> int:
        return 0

    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        self.arm_index(arm)
        self.check_context(x)
        self.model.update(arm, self._unit(self.check_reward(reward)))
        self.n_updates += 1

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"river_model": np.frombuffer(pickle.dumps(self.model), dtype=np.uint8)}

    def _validate_state(self, arrays, extra) -> None:
        if "river_model" not in arrays:
            raise StateError("state lacks the river model; it was saved by another policy.")

    def _restore(self, arrays, extra) -> None:
        model = pickle.loads(arrays["river_model"].tobytes())  # our own checksummed blob
        from river import bandit

        if not isinstance(model, bandit.base.Policy):
            raise StateError("state's river model is not a river bandit policy.")
        self.model = model

    def add_arm(self, arm: str, prior=None) -> None:
        if prior is not None:
            raise ConfigurationError(f"{self.name} is context-free and takes no prior.")
        super().add_arm(arm)


class RiverUCB(RiverPolicy):
    """river ``bandit.UCB`` (context-free upper confidence bound)."""

    name = "river-ucb"

    def __init__(self, arms, dim: int, *, delta: float = 1.0, **kwargs: Any):
        self.delta = float(delta)
        super().__init__(arms, dim, **kwargs)

    def _make(self):
        from river import bandit

        return bandit.UCB(delta=self.delta, seed=self._seed_int)

    def _pool_probabilities(self, pool: list[str]) -> np.ndarray:
        # river's UCB: untried models have an infinite bound; ties are broken uniformly
        m = self.model
        if len(pool) == 1:
            return np.ones(1)
        bounds = np.array(
            [
                math.inf
                if (r := m._rewards.get(a)) is None
                else r.get() + m.delta * math.sqrt(2 * math.log(m._n) / m._counts[a])
                for a in pool
            ]
        )
        top = bounds == bounds.max()
        return top / top.sum()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "delta": self.delta}


class RiverTS(RiverPolicy):
    """river ``bandit.ThompsonSampling`` with Beta(1, 1) posteriors per model."""

    name = "river-ts"

    def __init__(self, arms, dim: int, *, n_mc: int = 512, **kwargs: Any):
        self.n_mc = int(n_mc)
        self._n_mc_calls = 0
        super().__init__(arms, dim, **kwargs)

    def _make(self):
        from river import bandit, proba

        return bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=self._seed_int)

    def _pool_probabilities(self, pool: list[str]) -> np.ndarray:
        # Monte-Carlo over the Beta posteriors river draws from (the draw is river's own)
        if len(pool) == 1:
            return np.ones(1)
        self._n_mc_calls += 1  # a fresh Monte-Carlo stream per decision: errors average out
        rng = np.random.default_rng((self._seed_int, self._n_mc_calls))
        ab = []
        for a in pool:
            obj = self.model._rewards.get(a)
            ab.append((obj.alpha, obj.beta) if obj is not None else (1.0, 1.0))
        ab_arr = np.asarray(ab)
        draws = rng.beta(ab_arr[:, 0], ab_arr[:, 1], size=(self.n_mc, len(pool)))
        wins = np.bincount(draws.argmax(axis=1), minlength=len(pool))
        return np.maximum(wins, 1) / self.n_mc

    def _mc_draws(self, pool: list[str]) -> int:
        return self.n_mc if len(pool) > 1 else 0

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_mc": self.n_mc}


class RiverExp3(RiverPolicy):
    """river ``bandit.Exp3`` (adversarial bandit; propensities are its own probabilities)."""

    name = "river-exp3"

    def __init__(self, arms, dim: int, *, gamma: float = 0.1, **kwargs: Any):
        self.gamma = float(gamma)
        super().__init__(arms, dim, **kwargs)

    def _make(self):
        from river import bandit

        return bandit.Exp3(gamma=self.gamma, seed=self._seed_int)

    def _pool_probabilities(self, pool: list[str]) -> np.ndarray:
        # river's Exp3 over the offered pool: (1 - gamma) w / sum w + gamma / |pool|
        m = self.model
        w = np.array([m._weights[a] for a in pool], dtype=np.float64)
        p = (1.0 - m.gamma) * w / w.sum() + m.gamma / len(pool)
        return np.minimum(p, 1.0)

    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        self.arm_index(arm)
        self.check_context(x)
        self.check_reward(reward)
        if arm not in self.model._probabilities:
            # feedback for a model the last pull did not offer (e.g. a logged decision):
            # importance-weight it with the probabilities over all arms, as Exp3 defines them
            model = self.model
            total = sum(model._weights[a] for a in self._arms)
            model._probabilities = {
                a: (1 - model.gamma) * model._weights[a] / total + model.gamma / self.n_arms
                for a in self._arms
            }
        super().update(arm, x, reward)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "gamma": self.gamma}
