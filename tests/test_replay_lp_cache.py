"""The replay's hindsight-LP cache must never hand one problem another problem's optimum."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.simulations import metrics
from bandit_router.simulations.replay import Problem, ReplayConfig, run_replay


def _problem(seed: int, n: int = 12) -> Problem:
    rng = np.random.default_rng(seed)
    return Problem.from_arrays(
        np.ones((n, 1)), rng.uniform(0, 1, (n, 2)), rng.uniform(0.01, 0.2, (n, 2))
    )


def test_sequential_problems_get_their_own_lp_optimum() -> None:
    """Problems built and freed in a loop reuse ``id()``s; each run's LP optimum must still
    be the optimum of its own expected rewards and costs."""
    cfg = ReplayConfig(budget=0.5)
    wrong = []
    for seed in range(30):
        p = _problem(seed)
        got = run_replay(p, "random", cfg, seed=0).summary["lp_optimum_mean_reward"]
        want = metrics.hindsight_lp(p.expected, p.costs, np.array([0.5]), users=p.users)[0]
        if got != pytest.approx(want / p.n, abs=1e-9):
            wrong.append(seed)
        del p  # freed at once (no cycles): the next problem may get its id
    assert wrong == []


def test_equal_content_shares_the_cached_optimum_and_the_caller_cannot_corrupt_it() -> None:
    from bandit_router.simulations.replay import _lp

    a, b = _problem(3), _problem(3)  # equal content, different objects
    budgets = np.array([0.4])
    opt_a, per_a = _lp(a, budgets)
    per_a[:] = -1.0  # a caller writing into the result must not change the cache
    opt_b, per_b = _lp(b, budgets)
    assert opt_a == opt_b
    assert per_b.sum() == pytest.approx(opt_b)
    other = _lp(_problem(4), budgets)[0]
    assert other == pytest.approx(
        metrics.hindsight_lp(_problem(4).expected, _problem(4).costs, budgets)[0]
    )
