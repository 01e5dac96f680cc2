"""Linear epsilon-greedy: the ridge estimate, with uniform exploration at rate epsilon."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError
from bandit_router.policies.base import ArmScores, Decision
from bandit_router.policies.linear import LinearPolicy


class EpsilonGreedy(LinearPolicy):
    """Greedy on ``x' theta_a``; with probability ``epsilon`` a uniform candidate model.

    The values are the estimates (deterministic given the state); the coin is tossed in
    ``choose``. Under a budget allocator an exploring step picks uniformly among the
    candidates the allocator left (allowed, affordable, within its cap), so exploration
    is not stuck on the fallback while estimates are still below every price, and the
    propensity ``epsilon / |pool| + (1 - epsilon) [k = exploit]`` is exact.

    >>> import numpy as np
    >>> pol = EpsilonGreedy(["a", "b"], dim=1, epsilon=0.1, seed=0)
    >>> d = pol.decide(np.array([1.0]))
    >>> round(d.propensity, 2) in (0.95, 0.05)
    True
    >>> pol.action_probabilities(pol.score(np.array([1.0]))).round(2).tolist()
    [0.95, 0.05]
    """

    name = "epsilon-greedy"

    def __init__(self, arms, dim: int, *, epsilon: float = 0.1, **kwargs: Any):
        super().__init__(arms, dim, **kwargs)
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigurationError(f"epsilon must be in [0, 1], got {epsilon}.")
        self.epsilon = float(epsilon)

    def score(self, x: np.ndarray) -> ArmScores:
        mean, width, _ = self._mean_width(x)
        return ArmScores(self._arms, mean, width, mean)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        return self._epsilon_choice(scores, self.selection(allowed), self.epsilon)

    def action_probabilities(self, scores: ArmScores, allowed=None) -> np.ndarray:
        sel = self.selection(allowed)
        return sel.mixture(sel.exploit(scores.value), self.epsilon)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "epsilon": self.epsilon}
