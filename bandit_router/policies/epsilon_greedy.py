"""Linear epsilon-greedy: the ridge estimate, with uniform exploration at rate epsilon."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError
from bandit_router.policies.base import ArmScores, Decision
from bandit_router.policies.linear import LinearPolicy


class EpsilonGreedy(LinearPolicy):
    """Greedy on ``x' theta_a``; with probability ``epsilon`` a uniform allowed arm.

    The coin is tossed in ``score``: an exploring step's ``value`` holds uniform draws
    over the reward range instead of the estimates, so a budget allocator that admits
    models by value per dollar explores among affordable models too (with estimates that
    start at zero it would otherwise never admit an untried model).

    >>> import numpy as np
    >>> pol = EpsilonGreedy(["a", "b"], dim=1, epsilon=0.1, seed=0)
    >>> d = pol.decide(np.array([1.0]))
    >>> round(d.propensity, 2) in (0.95, 0.05)
    True
    """

    name = "epsilon-greedy"

    def __init__(self, arms, dim: int, *, epsilon: float = 0.1, **kwargs: Any):
        super().__init__(arms, dim, **kwargs)
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigurationError(f"epsilon must be in [0, 1], got {epsilon}.")
        self.epsilon = float(epsilon)

    def score(self, x: np.ndarray) -> ArmScores:
        mean, width = self._mean_width(x)
        if self.epsilon > 0.0 and self.rng.random() < self.epsilon:
            lo, hi = self.reward_range
            return ArmScores(self._arms, mean, width, self.rng.uniform(lo, hi, self.n_arms), True)
        return ArmScores(self._arms, mean, width, mean)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        mask = self.allowed_mask(allowed)
        value = scores.value if mask is None else np.where(mask, scores.value, -np.inf)
        k = int(value.argmax())
        if self.epsilon <= 0.0:
            return Decision(self._arms[k], k, scores, 1.0)
        mean = scores.mean if mask is None else np.where(mask, scores.mean, -np.inf)
        best = int(mean.argmax())
        n_ok = self.n_arms if mask is None else int(mask.sum())
        p = self.epsilon / n_ok + (1.0 - self.epsilon if k == best else 0.0)
        return Decision(self._arms[k], k, scores, p, explored=scores.explore)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "epsilon": self.epsilon}
