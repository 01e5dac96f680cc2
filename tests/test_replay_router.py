"""The replay goes through the Router and makes exactly the choices of the bare decision
path (policy.score -> allocator.choose -> policy.update), with and without a budget."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.budget import AccountState, Budget, BudgetAllocator
from bandit_router.config import build_policy
from bandit_router.simulations.replay import ReplayConfig, run_replay, stream_order
from bandit_router.simulations.synthetic import make_synthetic_problem


def bare_loop(problem, name, seed, budget_fraction):
    """The decision path without Router, stores or ledger: spend and counts kept here."""
    pol = build_policy(name, problem.arms, problem.dim, priors=problem.priors, seed=seed)
    order = stream_order(problem, "shuffle", seed)
    alloc = BudgetAllocator()
    budget = None
    if budget_fraction is not None:
        B = float(problem.user_budgets(budget_fraction=budget_fraction)[0])
        budget = Budget(B, expected_queries=problem.n)
    spent, n_made, chosen = 0.0, 0, []
    for i in order:
        x = problem.X[i]
        scores = pol.score(x)
        if budget is None:
            d = pol.choose(scores)
        else:
            state = AccountState("u", budget, 0.0, spent=spent, n_decisions=n_made)
            d = alloc.choose(pol, scores, problem.costs[i], state).decision
        if d is None:
            chosen.append(None)
            continue
        spent += problem.costs[i, d.index]
        n_made += 1
        chosen.append(d.arm)
        pol.update(d.arm, x, float(problem.observed[i, d.index]))
    return chosen, pol


@pytest.mark.parametrize("name", ["linucb", "lints", "epsilon-greedy", "random"])
@pytest.mark.parametrize("budget_fraction", [None, 0.3])
def test_replay_through_the_router_makes_the_bare_paths_choices(name, budget_fraction):
    p = make_synthetic_problem("linear", n=300, n_arms=4, dim=5, seed=2)
    res = run_replay(p, name, ReplayConfig(budget_fraction=budget_fraction), seed=1)
    want, _ = bare_loop(p, name, 1, budget_fraction)
    assert res.steps["model"].tolist() == want
    if budget_fraction is not None:
        assert res.summary["total_cost"] <= res.summary["budget"] + 1e-12


def test_the_replay_log_carries_the_routers_propensities():
    p = make_synthetic_problem("linear", n=120, n_arms=3, dim=4, seed=0)
    res = run_replay(
        p, "epsilon-greedy", ReplayConfig(budget_fraction=0.5), seed=0, log_decisions=True
    )
    log = res.log
    assert len(log) == int((res.steps["model"].notna()).sum())
    assert ((log["propensity"] > 0) & (log["propensity"] <= 1)).all()
    assert np.isfinite(log["propensity"]).all()
