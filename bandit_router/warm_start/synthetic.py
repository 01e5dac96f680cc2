"""Synthetic preferences from a planted PILOT model: for tests and for checking recovery."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit_router.embeddings.precomputed import PrecomputedEmbedder
from bandit_router.warm_start.data import PreferenceData
from bandit_router.warm_start.model import PilotModel, _sigmoid


@dataclass
class PlantedPreferences:
    """A planted model, the prompt embeddings ``X`` ``(n_q, D)`` and judgements drawn from it.

    ``embedder`` looks the prompt texts up in ``X`` (so the one-call API can be used), and
    ``oracle_accuracy`` is the held-out pairwise accuracy of the true model itself.
    """

    truth: PilotModel
    X: np.ndarray
    data: PreferenceData
    embedder: PrecomputedEmbedder

    def true_prob(self) -> np.ndarray:
        """``P(a beats b | q)`` of every judgement under the planted model, ``(n,)``."""
        F = self.truth.scores(self.X)
        d = self.data
        return _sigmoid(F[d.query, d.a] - F[d.query, d.b])


def planted_preferences(
    n_queries: int = 400,
    in_dim: int = 24,
    dim: int = 6,
    n_models: int = 5,
    pairs_per_query: int = 6,
    scale: float = 6.0,
    seed: int = 0,
) -> PlantedPreferences:
    """Draw judgements from ``P(a beats b | q) = sigmoid(f_a(q) - f_b(q))`` with a random
    planted ``W (dim, in_dim)``, ``c``, unit ``theta (n_models, dim)``, ``beta`` and ``scale``.

    Queries are ``q0, q1, ...`` with Gaussian embeddings; each gets ``pairs_per_query``
    random model pairs; no ties.

    >>> s = planted_preferences(n_queries=20, seed=1)
    >>> s.X.shape, s.data.n_models, s.data.n_pairs
    ((20, 24), 5, 120)
    """
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(dim, in_dim)) / np.sqrt(in_dim)
    c = 0.1 * rng.normal(size=dim)
    theta = rng.normal(size=(n_models, dim))
    beta = 0.5 * rng.normal(size=n_models)
    truth = PilotModel(W, c, theta, beta - beta.mean(), scale)
    X = rng.normal(size=(n_queries, in_dim))
    F = truth.scores(X)
    q = np.repeat(np.arange(n_queries), pairs_per_query)
    a = rng.integers(0, n_models, size=len(q))
    b = (a + rng.integers(1, n_models, size=len(q))) % n_models
    y = (rng.random(len(q)) < _sigmoid(F[q, a] - F[q, b])).astype(float)
    prompts = [f"q{i}" for i in range(n_queries)]
    data = PreferenceData(prompts, [f"m{k}" for k in range(n_models)], q, a, b, y, source="planted")
    emb = PrecomputedEmbedder(dict(zip(prompts, X, strict=True)), name=f"planted-{in_dim}")
    return PlantedPreferences(truth, X, data, emb)
