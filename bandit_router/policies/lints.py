"""Linear Thompson sampling (Agrawal and Goyal, 2013), optionally from a preference prior."""

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


class LinTS(LinearPolicy):
    """Draws ``theta_a ~ N(theta_a_hat, v^2 A_a^-1)`` per arm and picks the best draw.

    Only the draw's projection on the context matters for the choice, and it has the exact
    law ``N(x' theta_a_hat, v^2 x' A_a^-1 x)``, so one standard normal per arm replaces
    a ``d``-dimensional draw through the Cholesky factor (``sample_parameters`` gives that
    full draw). The propensity is a Monte-Carlo estimate over ``n_mc`` redraws, computed
    when first read. Under a budget, ``cost_aware`` (default) scales each model's draw
    around its mean by ``exploration_discount`` (less exploration as its price rises).

    >>> import numpy as np
    >>> pol = LinTS(["a", "b"], dim=2, v=0.3, seed=1)
    >>> x = np.array([0.0, 1.0])
    >>> for _ in range(30):
    ...     d = pol.decide(x)
    ...     pol.update(d.arm, x, 0.9 if d.arm == "b" else 0.1)
    >>> pol.decide(x).arm
    'b'
    """

    name = "lints"

    def __init__(
        self,
        arms,
        dim: int,
        *,
        v: float = 0.5,
        n_mc: int = 512,
        cost_aware: bool = True,
        **kwargs: Any,
    ):
        super().__init__(arms, dim, **kwargs)
        self.cost_aware = bool(cost_aware)
        if not v > 0:
            raise ConfigurationError(f"v (posterior scale) must be positive, got {v}.")
        if int(n_mc) < 16:
            raise ConfigurationError(f"n_mc must be at least 16, got {n_mc}.")
        self.v = float(v)
        self.n_mc = int(n_mc)
        self._n_decisions = 0
        self._mc_rng: np.random.Generator | None = None

    def score(self, x: np.ndarray) -> ArmScores:
        mean, width, _ = self._mean_width(x)
        sd = (self.v * self.exploration_scale) * width
        value = mean + sd * self.rng.standard_normal(self.n_arms)
        return ArmScores(self._arms, mean, sd, value)

    def choose(self, scores: ArmScores, allowed=None) -> Decision:
        sel = self.selection(allowed)
        f = exploration_discount(sel, self.reward_range) if self.cost_aware else None
        if f is not None:  # the draw's deviation from the mean, discounted by its price
            scores = ArmScores(
                scores.arms,
                scores.mean,
                scores.width,
                discounted_values(scores.mean, scores.value, f, sel.price),
            )
        k = sel.exploit(scores.value)
        if k < 0:
            raise InvalidInputError("no model clears its price and there is no fallback.")
        self._n_decisions += 1
        seed = (self.seed if self.seed is not None else 0, self._n_decisions)

        def propensity() -> float:
            p = self._mc_probabilities(scores, sel, np.random.default_rng(seed))
            return max(float(p[k]), 1.0 / self.n_mc)  # k was drawn: its probability is > 0

        return Decision(self._arms[k], k, scores, propensity, mc_draws=self.n_mc)

    def action_probabilities(self, scores: ArmScores, allowed=None, rng=None) -> np.ndarray:
        """Monte-Carlo estimate over ``n_mc`` redraws of the posterior values, through the
        same selection as ``choose`` (standard error ``sqrt(p (1 - p) / n_mc)``)."""
        if rng is None:
            if self._mc_rng is None:
                self._mc_rng = np.random.default_rng((self.seed or 0, 0x5EED))
            rng = self._mc_rng
        return self._mc_probabilities(scores, self.selection(allowed), rng)

    def _mc_probabilities(self, scores: ArmScores, sel, rng: np.random.Generator) -> np.ndarray:
        K = len(scores.mean)
        f = exploration_discount(sel, self.reward_range) if self.cost_aware else None
        draws = scores.mean + scores.width * rng.standard_normal((self.n_mc, K))
        if f is not None:
            draws = discounted_values(scores.mean, draws, f, sel.price)
        ks = sel.exploit_many(draws)
        return np.bincount(ks[ks >= 0], minlength=K)[:K] / self.n_mc

    def config(self) -> dict[str, Any]:
        return {**super().config(), "v": self.v, "n_mc": self.n_mc, "cost_aware": self.cost_aware}

    def _state_extra(self) -> dict[str, Any]:
        return {"n_decisions": self._n_decisions}

    def _restore(self, arrays, extra) -> None:
        super()._restore(arrays, extra)
        self._n_decisions = int(extra.get("n_decisions", 0))


class PilotTS(LinTS):
    """Linear Thompson sampling from the preference prior. ``priors`` is required."""

    name = "pilot-ts"
    needs_prior = True

    def __init__(self, arms, dim: int, **kwargs: Any):
        if not kwargs.get("priors") and not kwargs.pop("_from_state", False):
            raise ConfigurationError(
                "the 'pilot-ts' policy needs a preference prior: pass priors= (CLI: --prior "
                "FILE or --train TABLE); without one use 'lints'."
            )
        kwargs.setdefault("trust", True)  # adaptive trust in the prior: on by default
        super().__init__(arms, dim, **kwargs)
