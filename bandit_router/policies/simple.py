"""Context-free baselines: uniform random and always-one-model."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError
from bandit_router.policies.base import ArmScores, Decision, Policy


class RandomPolicy(Policy):
    """Uniform over the allowed arms; learns nothing.

    >>> import numpy as np
    >>> pol = RandomPolicy(["a", "b", "c"], dim=2, seed=0)
    >>> round(pol.decide(np.zeros(2)).propensity, 3)
    0.333
    """

    name = "random"

    def score(self, x: np.ndarray) -> ArmScores:
        self.check_context(x)
        z = np.zeros(self.n_arms)
        return ArmScores(self._arms, z, z, self.rng.random(self.n_arms))

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        mask = self.allowed_mask(allowed)
        value = scores.value if mask is None else np.where(mask, scores.value, -np.inf)
        k = int(value.argmax())
        n_ok = self.n_arms if mask is None else int(mask.sum())
        return Decision(self._arms[k], k, scores, 1.0 / n_ok, explored=True)

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
        mask = self.allowed_mask(allowed)
        value = scores.value if mask is None else np.where(mask, scores.value, -np.inf)
        k = int(value.argmax())
        return Decision(self._arms[k], k, scores, 1.0)

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
