"""Coverage of the off-policy intervals for every registered policy as the candidate.

The log comes from a uniform-random logger (exact propensities 1/K) on a linear synthetic
environment whose expected rewards are known. The candidate learns from the logged events
as ``evaluate`` does by default, so its value is ``V = mean_i E[mu(x_i, A_i)]`` where
``A_i`` is what the candidate, trained on events ``< i``, would choose at event ``i``. That
truth is measured here by running a twin of the candidate (same seed, same updates) and
letting it *choose* (its own ``choose``, not the probabilities ``evaluate`` computes), so a
wrong ``target_probabilities`` shows up as a biased estimate and lost coverage.
"""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.policies import POLICY_CLASSES, ArmPrior, make_policy
from bandit_router.simulations.ope import LoggedData, estimate_value, target_probabilities
from bandit_router.simulations.synthetic import LinearEnvironment

K, DIM, N, SEEDS, BOOTSTRAP, DRAWS = 3, 4, 400, 20, 400, 2
ARMS = [f"m{k}" for k in range(K)]


def _candidate_names() -> list[str]:
    return [n if n != "fixed" else "fixed:m1" for n in POLICY_CLASSES]


#: more exploration than the defaults, so that wrong action probabilities move the estimate
#: by more than the interval's width (epsilon 0.1 over 3 models hides a one-hot mistake)
OPTIONS = {"epsilon-greedy": {"epsilon": 0.3}, "river-exp3": {"gamma": 0.3}}


def _make(name: str, seed: int):
    kw = dict(OPTIONS.get(name, {}))
    if getattr(POLICY_CLASSES.get(name), "needs_prior", False):
        # a weak, somewhat wrong prior: the bias coordinate says every model is average
        kw["priors"] = {a: ArmPrior(np.r_[np.zeros(DIM - 1), 0.45], 2.0) for a in ARMS}
    return make_policy(name, ARMS, DIM, seed=seed, **kw)


def _uniform_log(seed: int) -> tuple[LoggedData, np.ndarray]:
    env = LinearEnvironment(n_arms=K, dim=DIM, seed=seed)
    rng = np.random.default_rng([seed, 1])
    X = np.array([env.context() for _ in range(N)])
    mu = np.array([env.expected(x) for x in X])  # (N, K) true means
    actions = rng.integers(0, K, N)
    rewards = (rng.random(N) < mu[np.arange(N), actions]).astype(float)
    return LoggedData(X, actions, rewards, np.full(N, 1.0 / K), ARMS), mu


def _true_value(name: str, seed: int, data: LoggedData, mu: np.ndarray) -> float:
    """``mean_i E[mu(x_i, A_i)]`` of the candidate trained on the log as it goes, from the
    candidate's own choices (``DRAWS`` per event)."""
    twin = _make(name, seed)
    total = 0.0
    for i in range(data.n):
        scores = twin.score(data.X[i])
        total += np.mean([mu[i, twin.choose(scores).index] for _ in range(DRAWS)])
        twin.update(ARMS[data.actions[i]], data.X[i], float(data.rewards[i]))
    return total / data.n


@pytest.mark.parametrize("name", _candidate_names())
def test_the_true_value_lies_in_the_95_interval_in_17_of_20_seeds(name):
    hits = {"ips": 0, "snips": 0, "dr": 0}
    misses = []
    for seed in range(SEEDS):
        data, mu = _uniform_log(seed)
        truth = _true_value(name, seed, data, mu)
        pi = target_probabilities(_make(name, seed), data, learn=True, seed=seed)
        assert pi.shape == (N, K)
        est = estimate_value(pi, data, bootstrap=BOOTSTRAP, seed=seed)
        for key, e in est.items():
            covered = e.lo <= truth <= e.hi
            hits[key] += covered
            if not covered:
                misses.append((seed, key, round(truth, 3), round(e.lo, 3), round(e.hi, 3)))
    # nominal 95%: P(fewer than 17 of 20) is 1.6% for a calibrated interval
    assert min(hits.values()) >= 17, (name, hits, misses[:6])
