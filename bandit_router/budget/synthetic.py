"""Synthetic streams with known values and costs, for tests and the allocator's figures."""

from __future__ import annotations

import numpy as np

from bandit_router.errors import ConfigurationError


def synthetic_stream(
    n: int, n_models: int = 11, *, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Known per-query values and costs, both of shape ``(n, n_models)``.

    Models range from cheap and weak to dear and strong (prices log-spaced over a factor
    of 50, as between small open models and frontier ones); every query has a difficulty
    ``d`` and a length. The value of model k is ``sigmoid(8 (strength_k - d))`` plus a
    little noise, clipped to [0, 1]: easy queries gain little from a strong model, hard ones
    a lot, so a good allocator spends where the gain per dollar is high. Costs are
    ``tokens * price_k`` with a per-query length drawn log-normally.

    >>> v, c = synthetic_stream(4, 3, seed=1)
    >>> v.shape, c.shape, bool((c[:, 0] < c[:, 2]).all())
    ((4, 3), (4, 3), True)
    """
    if int(n) < 1 or int(n_models) < 1:
        raise ConfigurationError(f"need n >= 1 and n_models >= 1, got {n}, {n_models}.")
    rng = np.random.default_rng(seed)
    K = int(n_models)
    price = np.geomspace(0.1, 5.0, K) / 1e6  # USD per token
    strength = np.linspace(0.25, 0.9, K) + rng.normal(0.0, 0.03, K)
    d = rng.uniform(0.0, 1.0, n)
    tokens = rng.lognormal(np.log(400.0), 0.7, n)
    values = 1.0 / (1.0 + np.exp(-8.0 * (strength[None, :] - d[:, None])))
    values = np.clip(values + rng.normal(0.0, 0.03, (n, K)), 0.0, 1.0)
    costs = tokens[:, None] * price[None, :] * rng.uniform(0.8, 1.25, (n, K))
    return values, costs
