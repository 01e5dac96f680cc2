"""A Gaussian prior on one arm's weight vector, as the warm start produces it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    >>> ArmPrior.coerce(ArmPrior([0.5, 0.0], 4.0).to_config())
    ArmPrior(theta0=[0.5, 0.0], strength=4.0)
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

    def __repr__(self) -> str:
        return f"ArmPrior(theta0={self.theta0.tolist()}, strength={self.strength})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArmPrior):
            return NotImplemented
        return self.strength == other.strength and np.array_equal(self.theta0, other.theta0)

    __hash__ = None  # type: ignore[assignment]  # holds an array

    def to_config(self) -> dict[str, Any]:
        """The JSON-ready form ``{"theta0": [...], "strength": s}`` (floats round-trip exactly)."""
        return {"theta0": self.theta0.tolist(), "strength": self.strength}

    @classmethod
    def coerce(cls, value: ArmPrior | Mapping[str, Any]) -> ArmPrior:
        """An ``ArmPrior`` from itself or from its ``to_config()`` form."""
        if isinstance(value, ArmPrior):
            return value
        if isinstance(value, Mapping) and "theta0" in value:
            unknown = sorted(set(value) - {"theta0", "strength"})
            if unknown:
                raise ConfigurationError(
                    f"a prior takes the keys 'theta0' and 'strength', not {unknown}."
                )
            try:
                return cls(value["theta0"], value.get("strength", 1.0))
            except (TypeError, ValueError) as exc:
                if isinstance(exc, ConfigurationError):
                    raise
                raise ConfigurationError(
                    f"a prior's theta0 must be a list of numbers and its strength a number ({exc})."
                ) from None
        raise ConfigurationError(
            "a prior must be an ArmPrior or a mapping with 'theta0' (a list of numbers) and "
            f"'strength', got {type(value).__name__}; load priors with --prior FILE."
        )
