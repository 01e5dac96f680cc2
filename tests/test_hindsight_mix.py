"""The hindsight reference lines: best context-free mix and best per-task allocation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bandit_router.simulations.metrics import best_static_mix, hindsight_lp


def _brute_mix(R, C, budget, n, steps=40):
    """Best mix by enumeration: shares on a grid (0..1 in 1/steps) for three models."""
    best = 0.0
    grid = np.arange(steps + 1) / steps
    for p in itertools.product(grid, repeat=3):
        if sum(p) <= 1 + 1e-12 and n * float(np.dot(p, C)) <= budget + 1e-9:
            best = max(best, float(np.dot(p, R)))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_static_mix_matches_enumeration_and_lies_below_the_per_query_lp(seed):
    rng = np.random.default_rng(seed)
    n = 50
    e = rng.random((n, 3)) * np.array([0.5, 0.7, 0.9])
    c = np.tile([0.001, 0.004, 0.02], (n, 1)) * rng.uniform(0.5, 1.5, size=(n, 1))
    budget = 0.3 * c[:, 2].sum()
    got = best_static_mix(e, c, budget)
    ref = _brute_mix(e.mean(axis=0), c.mean(axis=0), budget, n)
    assert ref - 1e-9 <= got <= ref + 0.02  # the grid is coarse: the LP is at least as good
    assert got <= hindsight_lp(e, c, budget)[0] / n + 1e-9


def test_per_task_allocation_beats_the_context_free_mix_when_tasks_differ():
    e = np.array([[0.9, 0.2]] * 10 + [[0.2, 0.9]] * 10)
    c = np.full((20, 2), 0.01)
    tasks = np.array(["a"] * 10 + ["b"] * 10)
    assert best_static_mix(e, c, None) == pytest.approx(0.55)
    assert best_static_mix(e, c, None, tasks=tasks) == pytest.approx(0.9)
    # half the budget of answering everything: each task still gets its best model half the time
    assert best_static_mix(e, c, 0.1, tasks=tasks) == pytest.approx(0.45)
