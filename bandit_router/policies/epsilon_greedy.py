"""Linear epsilon-greedy: the ridge estimate, with uniform exploration at rate epsilon."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError
from bandit_router.policies.base import ArmScores, Decision
from bandit_router.policies.linear import LinearPolicy


class EpsilonGreedy(LinearPolicy):
    """Greedy on ``x' theta_a``; with probability ``epsilon`` a uniform allowed arm.

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
        return ArmScores(self._arms, mean, width, mean)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        return self._greedy_choice(scores, allowed, self.epsilon)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "epsilon": self.epsilon}
