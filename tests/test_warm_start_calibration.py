"""Calibration into the reward space and prior strengths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bandit_router.errors import ConfigurationError
from bandit_router.warm_start.calibration import (
    calibrate_from_scores,
    calibrate_shared_slope,
    expected_win_rate,
    prior_means,
    strengths_from_accuracy,
)


def test_shared_slope_recovers_planted_line() -> None:
    rng = np.random.default_rng(0)
    n, K, scale = 2000, 4, 3.0
    cos = rng.uniform(-1, 1, size=(n, K))
    beta = np.array([0.5, -0.2, 0.0, 0.3])
    F = scale * cos + beta
    gamma = np.array([0.4, 0.5, 0.45, 0.3])
    target = 0.08 * F + gamma + 0.05 * rng.normal(size=(n, K))
    target[rng.random((n, K)) < 0.1] = np.nan  # missing scores are skipped
    out = calibrate_shared_slope(F, cos, target, scale, beta)
    assert out["alpha"][0] == pytest.approx(0.08, abs=0.005)
    np.testing.assert_allclose(out["s"], 0.08 * scale, atol=0.015)
    np.testing.assert_allclose(out["b"], 0.08 * beta + gamma, atol=0.01)
    # the prior mean reproduces the fitted line in the bandit's context x = [u, 1]
    theta = np.eye(K)
    theta0 = prior_means(theta, out["s"], out["b"])
    x = np.r_[theta[1] * 0.6, 1.0]  # a context whose cosine with model 1 is 0.6
    assert x @ theta0[1] == pytest.approx(out["s"][1] * 0.6 + out["b"][1])


def test_negative_slope_is_clipped_to_zero() -> None:
    F = np.array([[1.0, -1.0], [-1.0, 1.0]])
    out = calibrate_shared_slope(F, F, np.array([[0.1, 0.9], [0.9, 0.1]]), 1.0, np.zeros(2))
    assert out["alpha"][0] == 0.0
    np.testing.assert_allclose(out["b"], [0.5, 0.5])


def test_per_model_fit_and_missing_model() -> None:
    rng = np.random.default_rng(1)
    cos = rng.uniform(-1, 1, size=(500, 3))
    scores = np.column_stack([0.2 * cos[:, 0] + 0.5, 0.5 - 0.1 * cos[:, 1], np.full(500, np.nan)])
    out = calibrate_from_scores(cos, scores, ridge=0.0)
    np.testing.assert_allclose(out["s"][:2], [0.2, -0.1], atol=1e-9)
    np.testing.assert_allclose(out["b"][:2], [0.5, 0.5], atol=1e-9)
    assert out["n"][2] == 0 and out["s"][2] == 0.0
    assert out["b"][2] == pytest.approx(np.nanmean(scores))
    with pytest.raises(ConfigurationError):
        calibrate_from_scores(cos, scores[:, :2])


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)), elements=st.floats(-8, 8))
)
def test_expected_win_rates_share_the_games(F: np.ndarray) -> None:
    wr = expected_win_rate(F)
    K = F.shape[1]
    assert ((wr >= 0) & (wr <= 1)).all()
    np.testing.assert_allclose(wr.sum(axis=1), K / 2)  # every game is won by someone
    order = np.argsort(F, axis=1, kind="stable")
    ranked = np.take_along_axis(wr, order, axis=1)
    assert (np.diff(ranked, axis=1) >= -1e-12).all()  # a higher score never wins less


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=2, max_size=8))
def test_strength_is_monotone_in_accuracy(pairs: list[tuple[int, int]]) -> None:
    n = np.array([a + b for a, b in pairs], dtype=float)
    correct = np.array([a for a, _ in pairs], dtype=float)
    lam = strengths_from_accuracy(correct, n, base=10.0)
    acc = (correct + 1) / (n + 2)
    order = np.argsort(acc)
    assert (np.diff(lam[order]) >= -1e-12).all()
    assert ((lam >= 0.5 - 1e-12) & (lam <= 10.0 + 1e-12)).all()
    with pytest.raises(ConfigurationError):
        strengths_from_accuracy(correct, n, base=0.0)
