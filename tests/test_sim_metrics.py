"""Regret, the hindsight LP, shares and AIQ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.simulations import metrics


def dual_optimum(r: np.ndarray, c: np.ndarray, budget: float) -> float:
    """The hindsight LP's value without an LP solver: by LP duality it equals
    ``min over lam >= 0 of lam * budget + sum_i max(0, max_a (r_ia - lam * c_ia))``, a convex
    piecewise-linear function of ``lam`` whose minimum lies at 0 or at a breakpoint (where
    an arm's surplus crosses zero or two arms' surpluses cross): try them all."""
    cands = [0.0, *(r / c).ravel()]
    K = r.shape[1]
    for a in range(K):
        for b in range(a + 1, K):
            dc = c[:, a] - c[:, b]
            ok = np.abs(dc) > 1e-15
            cands += list((r[:, a] - r[:, b])[ok] / dc[ok])
    lam = np.array([x for x in cands if x >= 0.0])
    surplus = r[None, :, :] - lam[:, None, None] * c[None, :, :]
    g = lam * budget + np.maximum(surplus.max(axis=2), 0.0).sum(axis=1)
    return float(g.min())


def greedy_fractional_knapsack(r: np.ndarray, c: np.ndarray, budget: float) -> float:
    """One model per query (K = 1): the textbook greedy by value per cost, the last item
    taken fractionally."""
    left, total = budget, 0.0
    for i in np.argsort(-r / c, kind="stable"):
        take = min(1.0, left / c[i]) if left > 0 else 0.0
        total += take * r[i]
        left -= take * c[i]
    return total


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 30),
    K=st.integers(1, 4),
    frac=st.floats(0.0, 1.2),
    seed=st.integers(0, 10_000),
)
def test_lp_equals_its_dual_computed_without_a_solver(n, K, frac, seed):
    rng = np.random.default_rng(seed)
    r = rng.random((n, K))
    c = rng.uniform(0.001, 0.01, (n, K))
    budget = frac * c.max(axis=1).sum()
    ours, per_query = metrics.hindsight_lp(r, c, budget)
    assert ours == pytest.approx(dual_optimum(r, c, budget), rel=1e-7, abs=1e-9)
    # each query's share of the optimum is worth at most its best model, at least nothing
    assert per_query.shape == (n,)
    assert (per_query >= -1e-9).all() and (per_query <= r.max(axis=1) + 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 25), frac=st.floats(0.0, 1.2), seed=st.integers(0, 10_000))
def test_lp_with_one_model_is_the_greedy_fractional_knapsack(n, frac, seed):
    rng = np.random.default_rng(seed)
    r = rng.random((n, 1))
    c = rng.uniform(0.1, 1.0, (n, 1))
    budget = frac * c.sum()
    expect = greedy_fractional_knapsack(r[:, 0], c[:, 0], budget)
    assert metrics.hindsight_lp(r, c, budget)[0] == pytest.approx(expect, rel=1e-7, abs=1e-9)


def test_lp_of_a_hand_sized_instance():
    # budget 1.5, by hand: both cheap models first (cost 0.2, value 0.7), then the upgrade
    # with the most value per cost, query 0's (+0.8 for +0.9), then the 0.4 left buys 0.4
    # of query 1's upgrade (+0.4 for +1.0): 1.0 + (0.5 + 0.4 * 0.4) = 1.66
    r = np.array([[0.2, 1.0], [0.5, 0.9]])
    c = np.array([[0.1, 1.0], [0.1, 1.1]])
    value, per_query = metrics.hindsight_lp(r, c, 1.5)
    assert value == pytest.approx(1.66)
    np.testing.assert_allclose(per_query, [1.0, 0.66], atol=1e-9)


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
    a = dual_optimum(r[users == "a"], c[users == "a"], 2.0)
    b = dual_optimum(r[users == "b"], c[users == "b"], 3.0)
    assert joint == pytest.approx(a + b)
    # one shared pool of 5.0 is worth more than two fenced budgets adding up to 5.0
    assert dual_optimum(r, c, 5.0) > a + b + 1e-6


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
