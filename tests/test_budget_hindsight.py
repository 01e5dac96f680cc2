"""The hindsight LP optimum and the naive splits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.budget import hindsight_optimum, naive_split
from bandit_router.budget.synthetic import synthetic_stream
from bandit_router.errors import BudgetError, DimensionMismatchError


def brute_force(values: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """Best integral allocation (each query: one model or none), by enumeration."""
    n, K = values.shape
    best = 0.0
    for pick in itertools.product(range(-1, K), repeat=n):
        rows = [i for i in range(n) if pick[i] >= 0]
        cost = sum(costs[i, pick[i]] for i in rows)
        if cost <= budget + 1e-12:
            best = max(best, sum(values[i, pick[i]] for i in rows))
    return best


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4),
    K=st.integers(1, 3),
    share=st.floats(0.0, 1.5),
)
def test_lp_bounds_the_integral_optimum(seed, n, K, share):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0, 1, (n, K))
    c = rng.uniform(0.01, 1.0, (n, K))
    B = share * float(c.max(axis=1).sum())
    opt = hindsight_optimum(v, c, B)
    integral = brute_force(v, c, B)
    assert integral <= opt.value + 1e-7
    assert opt.value <= integral + v.max() + 1e-7  # at most one fractional query
    x = opt.allocation
    assert x.shape == (n, K) and (x >= 0).all() and (x.sum(axis=1) <= 1 + 1e-7).all()
    assert opt.spend <= B + 1e-7
    assert opt.value == pytest.approx(float((x * v).sum()), abs=1e-7)


def test_exactly_one_and_infeasible_budget():
    v = np.array([[0.2, 1.0], [0.1, 0.9]])
    c = np.array([[1.0, 4.0], [1.0, 4.0]])
    opt = hindsight_optimum(v, c, 5.0, exactly_one=True)
    np.testing.assert_allclose(opt.allocation.sum(axis=1), 1.0)
    assert opt.value == pytest.approx(1.1)  # one upgrade fits
    assert opt.budget_price > 0
    with pytest.raises(BudgetError, match="cheapest model"):
        hindsight_optimum(v, c, 1.5, exactly_one=True)
    with pytest.raises(DimensionMismatchError):
        hindsight_optimum(v, c[:1], 5.0)
    with pytest.raises(BudgetError):
        hindsight_optimum(v, -c, 5.0)


def test_lp_on_a_replay_shaped_stream_is_a_feasible_bounded_optimum():
    # the speed at n = 5000 is measured by benchmarks/hindsight_lp_speed.py, not asserted here
    v, c = synthetic_stream(400, 11, seed=0)
    budget = 0.2 * c[:, -1].sum()
    opt = hindsight_optimum(v, c, budget)
    x = opt.allocation
    assert x.shape == (400, 11)
    assert (x >= -1e-9).all() and (x.sum(axis=1) <= 1 + 1e-7).all()
    assert (x * c).sum() <= budget * (1 + 1e-9) and opt.spend == pytest.approx((x * c).sum())
    assert opt.value == pytest.approx(float((x * v).sum()))
    assert opt.value <= v.max(axis=1).sum() + 1e-6
    # the budget binds (the dearest models are out of reach for most queries) and the LP
    # beats any naive split of the same budget
    assert opt.spend == pytest.approx(budget, rel=1e-6)
    assert opt.value >= naive_split(v, c, budget, carry_over=True).value - 1e-9


def test_naive_splits_stay_within_budget():
    v, c = synthetic_stream(500, 5, seed=1)
    for rho in (0.0, 0.03, 0.2, 1.0):
        B = rho * c[:, -1].sum()
        for carry in (False, True):
            out = naive_split(v, c, B, carry_over=carry)
            assert out.spend <= B + 1e-12
            assert out.value <= hindsight_optimum(v, c, B).value + 1e-9
