"""The replay environment: bandit feedback, delays, noise, order, budgets, priors, sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.errors import ConfigurationError
from bandit_router.policies import ArmPrior, make_policy
from bandit_router.simulations.outcomes import OutcomeTable, load_outcomes
from bandit_router.simulations.replay import (
    DelaySpec,
    ReplayConfig,
    featurize_table,
    resolve_users,
    run_replay,
    stream_order,
)
from bandit_router.simulations.sweep import grid, run_sweep
from bandit_router.simulations.synthetic import make_synthetic_problem
from tests.conftest import shared_file


class Spy:
    """Wraps a policy and records every update and how many it had seen at each decision."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.reward_range = inner.reward_range
        self.updates: list[tuple[str, np.ndarray, float]] = []
        self.seen_at_decision: list[int] = []

    def score(self, x):
        self.seen_at_decision.append(len(self.updates))
        return self.inner.score(x)

    def choose(self, scores, allowed=None):
        return self.inner.choose(scores, allowed)

    def update(self, arm, x, reward):
        self.updates.append((arm, x, reward))
        self.inner.update(arm, x, reward)

    @property
    def arms(self):
        return self.inner.arms

    def __getattr__(self, name):  # the rest of the Policy interface the Router uses
        return getattr(self.inner, name)


def tiny_problem(n=200, K=3, seed=0, **kw):
    return make_synthetic_problem("linear", n=n, n_arms=K, dim=4, seed=seed, **kw)


def test_only_the_chosen_models_reward_is_revealed():
    p = tiny_problem()
    spy = Spy(make_policy("lints", p.arms, p.dim, seed=0))
    res = run_replay(p, spy, ReplayConfig(), seed=0)
    assert len(spy.updates) == p.n
    for (arm, x, r), row, model in zip(
        spy.updates, res.steps["row"], res.steps["model"], strict=True
    ):
        assert arm == model
        assert r == p.observed[row, p.arms.index(arm)]
        np.testing.assert_array_equal(x, p.X[row])


@pytest.mark.parametrize("k", [1, 5])
def test_fixed_delay_holds_feedback_back(k):
    p = tiny_problem(n=50)
    spy = Spy(make_policy("linucb", p.arms, p.dim, seed=0))
    run_replay(p, spy, ReplayConfig(delay=f"fixed:{k}"), seed=0)
    # feedback of decision t arrives just before decision t + k
    assert spy.seen_at_decision == [max(0, t - k + 1) for t in range(50)]


def test_delay_specs():
    rng = np.random.default_rng(0)
    assert DelaySpec.parse("geometric:3").sample(rng, 20000).mean() == pytest.approx(3, rel=0.05)
    assert DelaySpec.parse("poisson:2").sample(rng, 20000).mean() == pytest.approx(2, rel=0.05)
    with pytest.raises(ConfigurationError, match="unknown delay"):
        DelaySpec.parse("sometimes")


def test_noise_changes_what_the_policy_sees_not_the_metrics():
    p = tiny_problem(noise="none")
    spy = Spy(make_policy("linucb", p.arms, p.dim, seed=0))
    res = run_replay(p, spy, ReplayConfig(noise=0.2), seed=0)
    seen = np.array([u[2] for u in spy.updates])
    truth = p.expected[res.steps["row"].to_numpy(), [p.arms.index(m) for m in res.steps["model"]]]
    assert np.abs(seen - truth).mean() > 0.05
    np.testing.assert_allclose(res.steps["reward"], truth)
    assert (seen >= 0).all() and (seen <= 1).all()


def test_orders():
    p = tiny_problem(n=40)
    p.tasks = np.array(["a", "b", "c", "d"] * 10, dtype=object)
    a, b = stream_order(p, "shuffle", 1), stream_order(p, "shuffle", 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, stream_order(p, "shuffle", 2))
    assert sorted(a) == list(range(40))
    blocks = p.tasks[stream_order(p, "blocks", 3)]
    changes = int((blocks[1:] != blocks[:-1]).sum())
    assert changes == 3  # four contiguous blocks


def test_same_seed_same_run_and_exact_regret():
    p = tiny_problem(n=300)
    r1 = run_replay(p, "lints", ReplayConfig(), seed=4)
    r2 = run_replay(p, "lints", ReplayConfig(), seed=4)
    pd.testing.assert_frame_equal(r1.steps, r2.steps)
    fixed = run_replay(p, "fixed:arm0", ReplayConfig(), seed=0)
    exact = (p.expected.max(axis=1) - p.expected[:, 0]).sum()
    assert fixed.summary["cumulative_regret"] == pytest.approx(exact)


def test_learning_beats_random_on_a_synthetic_stream():
    p = make_synthetic_problem("linear", n=2000, n_arms=4, dim=6, seed=0)
    lin = np.mean([run_replay(p, "linucb", seed=s).summary["cumulative_regret"] for s in range(2)])
    rnd = np.mean([run_replay(p, "random", seed=s).summary["cumulative_regret"] for s in range(2)])
    assert lin < 0.5 * rnd


@settings(max_examples=12, deadline=None)
@given(
    frac=st.floats(0.0, 1.0),
    allocator=st.sampled_from(["knapsack", "affordable"]),
    users=st.sampled_from(["single", "hash:3"]),
    seed=st.integers(0, 100),
)
def test_budget_is_never_exceeded_and_lp_bounds_every_run(frac, allocator, users, seed):
    df = pd.DataFrame(
        {
            "sample_id": [f"q{i}" for i in range(120)],
            "prompt": [f"p{i}" for i in range(120)],
            "a": np.random.default_rng(seed).integers(0, 2, 120).astype(float),
            "a|total_cost": np.full(120, 0.001),
            "b": np.random.default_rng(seed + 1).integers(0, 2, 120).astype(float),
            "b|total_cost": np.full(120, 0.01),
        }
    )
    t = OutcomeTable.from_frame(df)
    p = featurize_table(t, "hashing-8", users=users, disk_cache=False, progress=False)
    res = run_replay(p, "linucb", ReplayConfig(budget_fraction=frac, allocator=allocator), seed)
    steps = res.steps.assign(user=p.users[res.steps["row"]])
    budgets = p.user_budgets(budget_fraction=frac)
    spent = steps.groupby("user")["cost"].sum()
    for k, u in enumerate(np.unique(p.users)):
        assert spent.get(u, 0.0) <= budgets[k] + 1e-12
    assert res.steps["budgeted_regret"].iloc[-1] >= -1e-9  # the LP optimum is an upper bound
    assert res.summary["budgeted_regret"] == pytest.approx(res.steps["budgeted_regret"].iloc[-1])


def test_users_from_a_column_and_unknown_specs():
    df = pd.DataFrame(
        {
            "prompt": ["x", "y", "z"],
            "tenant": ["t1", "t2", "t1"],
            "a": [1.0, 0.0, 1.0],
            "a|total_cost": [0.1] * 3,
            "b": [0.0, 1.0, 1.0],
            "b|total_cost": [0.2] * 3,
        }
    )
    t = OutcomeTable.from_frame(df)
    assert resolve_users(t, "column:tenant").tolist() == ["t1", "t2", "t1"]
    for bad in ("column:nope", "hash:0", "everyone"):
        with pytest.raises(ConfigurationError):
            resolve_users(t, bad)


def test_pilot_needs_a_prior_and_uses_it():
    p = tiny_problem(n=20)
    with pytest.raises(ConfigurationError, match="needs a preference prior"):
        run_replay(p, "pilot")
    # a prior that says arm2 is the best everywhere: the first decision follows it
    p.priors = {
        a: ArmPrior(np.r_[np.zeros(p.dim - 1), 0.9 if a == "arm2" else 0.1], 50.0) for a in p.arms
    }
    res = run_replay(p, "pilot", ReplayConfig(), seed=0)
    assert res.steps["model"].iloc[0] == "arm2"


def test_a_good_prior_lowers_early_regret():
    p = make_synthetic_problem("linear", n=300, n_arms=4, dim=6, seed=3)
    env_theta = np.linalg.lstsq(p.X, p.expected, rcond=None)[0].T  # (K, d): the truth, fitted
    p.priors = {a: ArmPrior(env_theta[k], 5.0) for k, a in enumerate(p.arms)}
    early = {
        name: np.mean(
            [run_replay(p, name, seed=s).steps["cumulative_regret"].iloc[99] for s in range(3)]
        )
        for name in ("linucb", "pilot")
    }
    assert early["pilot"] < 0.6 * early["linucb"]


def test_sweep_in_processes_matches_in_process():
    p = tiny_problem(n=150)
    specs = grid(["linucb", "random"], [0, 1], [None, 0.5])
    serial = run_sweep(p, specs, workers=1, progress=False)
    parallel = run_sweep(p, specs, workers=2, progress=False)
    assert [r.policy for r in parallel] == [s.policy for s in specs]
    for a, b in zip(serial, parallel, strict=True):
        pd.testing.assert_frame_equal(a.steps, b.steps)


def test_replay_on_real_table_with_hashing_features():
    t = load_outcomes(shared_file("routellm/gsm8k.csv"))
    p = featurize_table(t, "hashing-32", disk_cache=False, progress=False)
    res = run_replay(p, "linucb", ReplayConfig(budget_fraction=0.25, max_steps=400), seed=0)
    s = res.summary
    assert s["queries"] == 400
    assert s["cost_fraction"] <= 0.25 + 1e-9
    assert 0.0 < s["mean_reward"] <= s["oracle_mean_reward"]
    assert set(s["model_share"]) <= {*t.models, "none"}


def test_learning_bucket_is_unbudgeted_and_unmeasured():
    p = tiny_problem(n=200)
    spy = Spy(make_policy("linucb", p.arms, p.dim, seed=0))
    res = run_replay(p, spy, ReplayConfig(learn_fraction=0.25, budget_fraction=0.3), seed=0)
    assert res.summary["queries"] == 150 and res.summary["learn_queries"] == 50
    assert len(res.steps) == 150
    assert spy.seen_at_decision[50] == 50  # learned from the whole bucket before deploying
    deployed = p.most_expensive_cost[res.steps["row"].to_numpy()].sum()
    assert res.steps["cost"].sum() <= 0.3 * deployed + 1e-12  # budget of the deployment rows
    assert res.steps["budgeted_regret"].iloc[-1] >= -1e-9
