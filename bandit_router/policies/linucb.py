"""LinUCB with disjoint arms (Li et al., 2010), optionally from a preference prior (PILOT)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError, InvalidInputError
from bandit_router.policies.base import ArmScores, Decision
from bandit_router.policies.linear import (
    LinearPolicy,
    discounted_values,
    exploration_discount,
)
from bandit_router.policies.selection import Selection


class LinUCB(LinearPolicy):
    """Picks the arm maximising ``x' theta_a + alpha * sqrt(x' A_a^-1 x)``.

    Deterministic (propensity 1) unless ``epsilon`` > 0, an exploration floor that picks
    uniformly among the candidate models (allowed and affordable) with that probability.
    Under a budget (the allocator prices every model), ``cost_aware`` (default) counts the
    bonus by ``exploration_discount``: ``alpha * width * max(0, 1 - price)`` (price in
    reward units): no discount while the budget is slack, none left for a model whose price
    reaches the most its answer could be worth.

    >>> import numpy as np
    >>> pol = LinUCB(["small", "large"], dim=2, alpha=0.5, seed=0)
    >>> x = np.array([1.0, 0.0])
    >>> for _ in range(20):
    ...     d = pol.decide(x)
    ...     pol.update(d.arm, x, 1.0 if d.arm == "large" else 0.2)
    >>> pol.decide(x).arm
    'large'
    """

    name = "linucb"

    def __init__(
        self,
        arms,
        dim: int,
        *,
        alpha: float = 1.0,
        epsilon: float = 0.0,
        cost_aware: bool = True,
        **kwargs: Any,
    ):
        super().__init__(arms, dim, **kwargs)
        self.cost_aware = bool(cost_aware)
        if not alpha >= 0:
            raise ConfigurationError(f"alpha must be >= 0, got {alpha}.")
        if not 0.0 <= epsilon < 1.0:
            raise ConfigurationError(f"epsilon must be in [0, 1), got {epsilon}.")
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)

    def score(self, x: np.ndarray) -> ArmScores:
        a = self.alpha if self.watch is None else self.alpha * self.watch.scale
        mean, width, value = self._mean_width(x, a)
        return ArmScores(self._arms, mean, width, value)

    def decide(self, x: np.ndarray, allowed=None) -> Decision:
        scores = self.score(x)
        if allowed is None and self.epsilon <= 0.0:  # every arm, no price: the argmax
            k = self._best  # found by the compiled score (-2: not computed)
            if k < 0:
                k = int(scores.value.argmax())
            return Decision.certain(self._arms[k], k, scores)
        return self.choose(scores, allowed)

    def _priced(self, scores: ArmScores, sel) -> ArmScores:
        """Under a budget (``cost_aware``), the bonus ``alpha * width`` of each model times
        ``exploration_discount``; the scores as they are otherwise."""
        f = exploration_discount(sel, self.reward_range) if self.cost_aware else None
        if f is None:
            return scores
        value = discounted_values(scores.mean, scores.value, f, sel.price)
        return ArmScores(scores.arms, scores.mean, scores.width, value)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        if allowed is None and self.epsilon <= 0.0:  # every arm, no price: the argmax
            k = int(scores.value.argmax())
            return Decision.certain(self._arms[k], k, scores)
        if type(allowed) is Selection and allowed.candidates.shape[0] == len(self._arms):
            sel = allowed  # an allocator's (what ``selection`` checks, inline)
        else:
            sel = self.selection(allowed)
        kern = self.state.kernels if self._fast else None
        if (
            kern is not None
            and self.cost_aware
            and self.epsilon <= 0.0
            and sel.price is not None
            and sel.surplus
            and scores.value.shape == sel.price.shape
        ):
            # the allocator's priced selection in one compiled loop (the same floats and
            # choice as ``_priced`` + ``Selection.exploit``; -2: not finite, numpy decides)
            lo, hi = self.reward_range
            value = np.empty_like(scores.value)
            k = kern.priced_choice(
                scores.value, scores.mean, sel.price, sel.candidates, sel.fallback, lo,
                hi - lo, value,
            )  # fmt: skip
            if k != -2:
                if k < 0:
                    raise InvalidInputError("no model clears its price and there is no fallback.")
                priced = ArmScores(scores.arms, scores.mean, scores.width, value)
                return Decision.certain(self._arms[k], k, priced)
        return self._epsilon_choice(self._priced(scores, sel), sel, self.epsilon)

    def action_probabilities(self, scores: ArmScores, allowed=None) -> np.ndarray:
        sel = self.selection(allowed)
        return sel.mixture(sel.exploit(self._priced(scores, sel).value), self.epsilon)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "alpha": self.alpha,
            "epsilon": self.epsilon,
            "cost_aware": self.cost_aware,
        }


class PilotUCB(LinUCB):
    """LinUCB whose arms start from the preference prior (PILOT). ``priors`` is required."""

    name = "pilot"
    needs_prior = True

    def __init__(self, arms, dim: int, **kwargs: Any):
        if not kwargs.get("priors") and not kwargs.pop("_from_state", False):
            raise ConfigurationError(
                "the 'pilot' policy needs a preference prior: pass priors= (CLI: --prior FILE "
                "or --train TABLE); without one use 'linucb'."
            )
        kwargs.setdefault("trust", True)  # adaptive trust in the prior: on by default
        super().__init__(arms, dim, **kwargs)
