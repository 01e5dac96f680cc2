"""A Gaussian prior on one arm's weight vector, as the warm start produces it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit_router.errors import ConfigurationError


@dataclass(frozen=True)
class ArmPrior:
    """Prior mean ``theta0`` (shape ``(d,)``) and strength ``strength`` (lambda > 0).

    The arm starts at ``A = strength * I`` and ``b = strength * theta0``, so its first
    estimate is exactly ``theta0`` and each observation counts as much as ``1 / strength``
    of the prior.

    >>> ArmPrior([0.5, 0.0], 4.0).theta0.tolist()
    [0.5, 0.0]
    """

    theta0: np.ndarray
    strength: float = 1.0

    def __post_init__(self) -> None:
        theta = np.asarray(self.theta0, dtype=np.float64).reshape(-1)
        if not np.isfinite(theta).all():
            raise ConfigurationError("prior mean contains NaN or infinite values.")
        strength = float(self.strength)
        if not (np.isfinite(strength) and strength > 0):
            raise ConfigurationError(f"prior strength must be a positive number, got {strength}.")
        object.__setattr__(self, "theta0", theta)
        object.__setattr__(self, "strength", strength)
