"""The threshold of Zhou, Chakrabarty and Lukose (2008) for the online (multi-choice) knapsack."""

from __future__ import annotations

import math

from bandit_router.errors import ConfigurationError


def zcl_threshold(z: float, lower: float, upper: float) -> float:
    """``psi(z) = (U e / L)^z (L / e)`` on the spent share ``z`` in [0, 1].

    ``lower`` (L) and ``upper`` (U) bound the value per dollar of any item. An item is
    admitted when its value per dollar is at least ``psi(z)``: ``psi(0) = L / e`` admits
    almost everything, ``psi(1) = U`` almost nothing. The rule is ``ln(U / L) + 1``
    competitive against the offline optimum for an adversarial stream of small items.

    >>> round(zcl_threshold(0.0, 1.0, 100.0), 4), zcl_threshold(1.0, 1.0, 100.0)
    (0.3679, 100.0...)
    """
    if not (0 < lower <= upper):
        raise ConfigurationError(f"need 0 < L <= U for the threshold, got L={lower}, U={upper}.")
    z = min(max(z, 0.0), 1.0)
    return math.exp(z * (math.log(upper / lower) + 1.0)) * lower / math.e
