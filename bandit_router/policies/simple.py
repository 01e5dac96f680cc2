"""Context-free baselines: uniform random and always-one-model."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError, InvalidInputError
from bandit_router.policies.base import ArmScores, Decision, Policy


class RandomPolicy(Policy):
    """Uniform over the candidate models (allowed, and under a budget affordable within the
    allocator's cap; the fallback alone when none is); learns nothing.

    >>> import numpy as np
    >>> pol = RandomPolicy(["a", "b", "c"], dim=2, seed=0)
    >>> round(pol.decide(np.zeros(2)).propensity, 3)
    0.333
    >>> pol.action_probabilities(pol.score(np.zeros(2)), ["a", "c"]).tolist()
    [0.5, 0.0, 0.5]
    """

    name = "random"

    def score(self, x: np.ndarray) -> ArmScores:
        self.check_context(x)
        z = np.zeros(self.n_arms)
        return ArmScores(self._arms, z, z, z)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        pool = self.selection(allowed).explore_pool()
        if pool.size == 0:
            raise InvalidInputError("no model is a candidate for this query.")
        k = int(pool[self.rng.integers(pool.size)])
        return Decision(self._arms[k], k, scores, 1.0 / pool.size, explored=True)

    def action_probabilities(self, scores: ArmScores, allowed=None) -> np.ndarray:
        pool = self.selection(allowed).explore_pool()
        p = np.zeros(self.n_arms)
        p[pool] = 1.0 / max(pool.size, 1)
        return p

    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        self.arm_index(arm)
        self.check_context(x)
        self.check_reward(reward)
        self.n_updates += 1


class FixedPolicy(Policy):
    """Always the same model (``fixed:<model>``); when it is not allowed, the first allowed arm.

    >>> import numpy as np
    >>> FixedPolicy(["a", "b"], dim=1, model="b").decide(np.ones(1)).arm
    'b'
    """

    name = "fixed"

    def __init__(self, arms, dim: int, *, model: str, **kwargs: Any):
        super().__init__(arms, dim, **kwargs)
        if model not in self._index:
            raise ConfigurationError(
                f"fixed:{model} names no arm; the models are: {', '.join(self._arms)}."
            )
        self.model = model

    def score(self, x: np.ndarray) -> ArmScores:
        self.check_context(x)
        value = np.zeros(self.n_arms)
        value[self._index[self.model]] = 1.0
        z = np.zeros(self.n_arms)
        return ArmScores(self._arms, z, z, value)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        k = self.selection(allowed).exploit(scores.value)
        if k < 0:
            raise InvalidInputError("no model clears its price and there is no fallback.")
        return Decision(self._arms[k], k, scores, 1.0)

    def action_probabilities(self, scores: ArmScores, allowed=None) -> np.ndarray:
        sel = self.selection(allowed)
        return sel.mixture(sel.exploit(scores.value), 0.0)

    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        self.arm_index(arm)
        self.check_context(x)
        self.check_reward(reward)
        self.n_updates += 1

    def remove_arm(self, arm: str) -> None:
        if arm == self.model:
            raise ConfigurationError(
                f"cannot retire {arm!r}: it is the model fixed:{arm} always picks."
            )
        super().remove_arm(arm)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "model": self.model}
