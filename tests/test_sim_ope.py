"""Off-policy estimators on synthetic logs whose true value is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bandit_router.policies import make_policy
from bandit_router.simulations.ope import (
    LogFormatError,
    LoggedData,
    estimate_value,
    evaluate_candidate,
    log_from_frame,
    ridge_reward_model,
)
from bandit_router.simulations.synthetic import make_synthetic_problem


def synthetic_log(n: int, seed: int, logging: str = "softmax"):
    """Contexts and Bernoulli rewards of a linear problem, logged by a stochastic policy
    with known propensities. Returns the log and the expected rewards ``(n, K)``."""
    p = make_synthetic_problem("linear", n=n, n_arms=3, dim=5, seed=seed)
    rng = np.random.default_rng(seed + 100)
    if logging == "uniform":
        probs = np.full((n, 3), 1 / 3)
    else:  # a softmax logger that prefers what it believes is good, with full support
        logits = 4.0 * p.expected + rng.normal(0, 0.5, (n, 3))
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    u = rng.random(n)
    actions = (probs.cumsum(axis=1) < u[:, None]).sum(axis=1)
    rows = np.arange(n)
    rewards = p.observed[rows, actions]
    return LoggedData(p.X, actions, rewards, probs[rows, actions], p.arms), p.expected


def target(expected: np.ndarray) -> np.ndarray:
    """A deterministic target: the best arm by a noisy version of the truth."""
    noisy = expected + np.random.default_rng(7).normal(0, 0.1, expected.shape)
    return np.eye(expected.shape[1])[noisy.argmax(axis=1)]


def test_true_value_lies_in_every_interval():
    data, expected = synthetic_log(4000, seed=0)
    pi = target(expected)
    truth = float((pi * expected).sum(axis=1).mean())
    est = estimate_value(pi, data, bootstrap=400, seed=0)
    for name in ("ips", "snips", "dr"):
        e = est[name]
        assert e.lo <= truth <= e.hi, (name, truth, e)
        assert abs(e.value - truth) < 0.04
    # the reward model removes variance: DR's interval is narrower than IPS's
    assert est["dr"].hi - est["dr"].lo < est["ips"].hi - est["ips"].lo


def test_interval_coverage_over_seeds():
    hits = {"ips": 0, "snips": 0, "dr": 0}
    seeds = range(12)
    for s in seeds:
        data, expected = synthetic_log(1500, seed=s)
        pi = target(expected)
        truth = float((pi * expected).sum(axis=1).mean())
        for name, e in estimate_value(pi, data, bootstrap=300, seed=s).items():
            hits[name] += e.lo <= truth <= e.hi
    for name, h in hits.items():  # nominal 95%: at least 9 of 12 (binomial tail < 2%)
        assert h >= 9, (name, hits)


def test_reward_model_is_cross_fitted_and_accurate():
    data, expected = synthetic_log(3000, seed=1, logging="uniform")
    q = ridge_reward_model(data, folds=2)
    assert q.shape == expected.shape
    assert np.abs(q - expected).mean() < 0.08


def test_learning_candidate_on_a_uniform_log_estimates_a_good_value():
    data, expected = synthetic_log(3000, seed=2, logging="uniform")
    random_value = expected.mean()
    out = evaluate_candidate(
        make_policy("linucb", data.arms, data.X.shape[1], seed=0), data, bootstrap=200
    )
    assert out["estimates"]["dr"]["value"] > random_value + 0.05
    rnd = evaluate_candidate(
        make_policy("random", data.arms, data.X.shape[1], seed=0), data, bootstrap=200
    )
    assert rnd["estimates"]["snips"]["value"] == pytest.approx(random_value, abs=0.03)
    assert rnd["match_rate"] == pytest.approx(1 / 3)


def test_log_validation():
    good = pd.DataFrame(
        {"context": ["[1, 0]"], "model": ["a"], "reward": [1.0], "propensity": [0.5]}
    )
    with pytest.raises(LogFormatError, match="lacks the column"):
        log_from_frame(good.drop(columns=["propensity"]))
    with pytest.raises(LogFormatError, match=r"not in \(0, 1\]"):
        log_from_frame(good.assign(propensity=0.0))
    with pytest.raises(LogFormatError, match="neither a context nor a prompt"):
        log_from_frame(good.drop(columns=["context"]))
    with pytest.raises(LogFormatError, match="not in"):
        log_from_frame(good, arms=["b"])
    with pytest.raises(LogFormatError, match="give an embedder"):
        log_from_frame(good.drop(columns=["context"]).assign(prompt="hi"))
