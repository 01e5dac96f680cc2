"""Build every registered policy for the contract suite."""

from __future__ import annotations

import numpy as np

from bandit_router.policies import POLICY_CLASSES, ArmPrior, make_policy

ARMS = ["nano", "small", "medium", "large"]
DIM = 6


def priors(dim: int = DIM, seed: int = 0) -> dict[str, ArmPrior]:
    rng = np.random.default_rng(seed)
    return {a: ArmPrior(rng.normal(0, 0.2, dim), strength=2.0 + i) for i, a in enumerate(ARMS[:3])}


def build(name: str, seed: int = 0, **kwargs):
    if name == "fixed":
        return make_policy("fixed:medium", ARMS, DIM, seed=seed, **kwargs)
    if getattr(POLICY_CLASSES[name], "needs_prior", False):
        kwargs.setdefault("priors", priors())
    return make_policy(name, ARMS, DIM, seed=seed, **kwargs)


ALL_NAMES = sorted(POLICY_CLASSES)
LINEAR_NAMES = ["linucb", "lints", "pilot", "pilot-ts", "epsilon-greedy"]


def contexts(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, DIM))
    X[:, -1] = 1.0
    return X
