"""Regret, the hindsight LP, shares and AIQ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations import metrics


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    K=st.integers(1, 4),
    frac=st.floats(0.0, 1.2),
    seed=st.integers(0, 10_000),
)
def test_lp_agrees_with_the_budget_package(n, K, frac, seed):
    from bandit_router.budget import hindsight_optimum

    rng = np.random.default_rng(seed)
    r = rng.random((n, K))
    c = rng.uniform(0.001, 0.01, (n, K))
    budget = frac * c.max(axis=1).sum()
    ours, per_query = metrics.hindsight_lp(r, c, budget)
    theirs = hindsight_optimum(r, c, budget).value
    assert ours == pytest.approx(theirs, rel=1e-7, abs=1e-9)
    assert per_query.sum() == pytest.approx(ours)
    assert ours <= r.max(axis=1).sum() + 1e-9  # never above the per-query oracle


def test_lp_bounds():
    rng = np.random.default_rng(0)
    r, c = rng.random((50, 3)), rng.uniform(0.1, 1.0, (50, 3))
    assert metrics.hindsight_lp(r, c, 1e9)[0] == pytest.approx(r.max(axis=1).sum())
    assert metrics.hindsight_lp(r, c, 0.0)[0] == pytest.approx(0.0, abs=1e-9)


def test_lp_per_user_budgets_decompose():
    rng = np.random.default_rng(1)
    r, c = rng.random((40, 3)), rng.uniform(0.1, 1.0, (40, 3))
    users = np.array(["a", "b"] * 20)
    joint, _ = metrics.hindsight_lp(r, c, np.array([2.0, 3.0]), users=users)
    a = metrics.hindsight_lp(r[users == "a"], c[users == "a"], 2.0)[0]
    b = metrics.hindsight_lp(r[users == "b"], c[users == "b"], 3.0)[0]
    assert joint == pytest.approx(a + b)


def test_regret_is_cumulative_and_nonnegative():
    rng = np.random.default_rng(2)
    e = rng.random((100, 4))
    chosen = rng.integers(-1, 4, 100)
    reg = metrics.cumulative_regret(e, chosen)
    assert (np.diff(reg) >= -1e-12).all() and reg[0] >= 0
    best = e.argmax(axis=1)
    assert metrics.cumulative_regret(e, best)[-1] == pytest.approx(0.0)


def test_shares_of_always_the_most_expensive_model_are_one():
    rng = np.random.default_rng(3)
    e = rng.random((30, 2))
    c = np.column_stack([np.full(30, 0.1), np.full(30, 1.0)])
    s = metrics.quality_shares(float(e[:, 1].mean()), e, c, float(c[:, 1].sum()))
    assert s["quality_vs_most_expensive"] == pytest.approx(1.0)
    assert s["cost_fraction"] == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 1)), min_size=1, max_size=12))
def test_aiq_is_an_average_quality_on_the_hull(points):
    c = np.array([p[0] for p in points])
    q = np.array([p[1] for p in points])
    value = metrics.aiq(c, q)
    assert q.min() - 1e-9 <= value <= q.max() + 1e-9
    hc, hq = metrics.upper_hull(c, q)
    assert (np.diff(hc) > 0).all() and (np.diff(hq) > 0).all()  # strictly rising hull
    # a dominated point (dearer and worse than the best) changes nothing
    c2, q2 = np.append(c, c.max() + 1.0), np.append(q, q.min())
    assert metrics.aiq(c2, q2, cost_range=(c.min(), c.max() + 1.0)) == pytest.approx(
        metrics.aiq(c, q, cost_range=(c.min(), c.max() + 1.0))
    )


def test_aiq_of_a_mix_line():
    # two routers: (0, 0) and (1, 1); the hull is the diagonal, average quality 0.5
    assert metrics.aiq([0.0, 1.0], [0.0, 1.0]) == pytest.approx(0.5, abs=1e-6)
    # a concave point above the diagonal raises it
    assert metrics.aiq([0.0, 0.5, 1.0], [0.0, 0.9, 1.0]) > 0.6
