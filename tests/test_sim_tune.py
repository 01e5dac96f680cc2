"""The hyper-parameter tuner (simulations/tune.py) on synthetic streams with known rewards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bandit_router.errors import ConfigurationError
from bandit_router.policies import ArmPrior
from bandit_router.simulations.outcomes import OutcomeTable
from bandit_router.simulations.replay import ReplayConfig, build_policy, run_replay
from bandit_router.simulations.synthetic import make_synthetic_problem
from bandit_router.simulations.tune import DEFAULT_GRIDS, grid_points, prior_holdout, tune
from tests.sim_tables import two_topic_table


def _problem(n: int = 300, seed: int = 0, prior: bool = False):
    p = make_synthetic_problem("linear", n=n, n_arms=3, dim=5, seed=seed)
    if prior:  # the truth, fitted: a good prior
        theta = np.linalg.lstsq(p.X, p.expected, rcond=None)[0].T
        p.priors = {a: ArmPrior(theta[k], 2.0) for k, a in enumerate(p.arms)}
    return p


def test_returns_the_grid_point_with_the_best_mean_reward():
    p = _problem()
    best, table = tune(p, "linucb", {"alpha": [0.0, 0.3, 3.0]}, seeds=[0, 1, 2])
    assert list(table["alpha"]) == [0.0, 0.3, 3.0]  # grid order
    # the table's means are the replays' means over the seeds
    for _, row in table.iterrows():
        runs = [
            run_replay(p, "linucb", ReplayConfig(policy_kwargs={"alpha": row.alpha}), s)
            for s in (0, 1, 2)
        ]
        assert row.mean_reward == pytest.approx(np.mean([r.summary["mean_reward"] for r in runs]))
    top = table.loc[table.mean_reward.idxmax()]
    assert best == {"alpha": top.alpha}
    assert table["best"].sum() == 1 and bool(table.loc[table.mean_reward.idxmax(), "best"])
    assert {"mean_reward_sd", "cost_fraction", "early_regret", "seeds"} <= set(table.columns)


def test_a_clearly_better_setting_wins():
    # two arms, arm1 always better: greedy (alpha 0) locks on arm0 (first tie; its 0.6 beats
    # the untried arm's starting estimate, the middle of the reward range), alpha 1 finds arm1
    n = 200
    from bandit_router.simulations.replay import Problem

    p = Problem.from_arrays(np.ones((n, 1)), np.tile([0.6, 0.95], (n, 1)), np.ones((n, 2)))
    best, table = tune(p, "linucb", {"alpha": [0.0, 1.0]}, seeds=[0, 1])
    assert best == {"alpha": 1.0}
    assert table.mean_reward.iloc[1] > table.mean_reward.iloc[0] + 0.25


def test_prior_scale_is_tuned_for_prior_policies():
    p = _problem(prior=True)
    best, table = tune(p, "pilot", {"alpha": [0.3], "prior_scale": [1, 16]}, seeds=[0, 1])
    assert set(best) == {"alpha", "prior_scale"} and len(table) == 2
    # the knob really changes the run
    assert table.mean_reward.iloc[0] != table.mean_reward.iloc[1]
    w1 = build_policy(p, "pilot", 0).score(p.X[0]).width
    w16 = build_policy(p, "pilot", 0, prior_scale=16).score(p.X[0]).width
    np.testing.assert_allclose(w16, w1 / 4)


def test_deterministic_for_the_same_seeds():
    p = _problem(seed=1)
    grid = {"epsilon": [0.05, 0.1, 0.2]}
    a = tune(p, "epsilon-greedy", grid, seeds=[3, 4])
    b = tune(p, "epsilon-greedy", grid, seeds=[3, 4])
    assert a[0] == b[0]
    pd.testing.assert_frame_equal(a[1], b[1])


def test_in_processes_same_answer():
    p = _problem(n=150, seed=2)
    grid = {"v": [0.1, 0.5]}
    a = tune(p, "lints", grid, seeds=[0, 1], workers=1)
    b = tune(p, "lints", grid, seeds=[0, 1], workers=2)
    assert a[0] == b[0]
    pd.testing.assert_frame_equal(a[1], b[1])


def test_budget_and_horizon_are_applied():
    p = _problem()
    _, table = tune(p, "linucb", {"alpha": [1.0]}, seeds=[0], budget_fraction=0.2, max_steps=100)
    assert table.cost_fraction.iloc[0] <= 0.2 + 1e-9
    ref = run_replay(p, "linucb", ReplayConfig(budget_fraction=0.2, max_steps=100), 0)
    assert table.mean_reward.iloc[0] == pytest.approx(ref.summary["mean_reward"])


@pytest.mark.parametrize("grid", [{}, {"alpha": []}, {"alpha": 0.3}, {"alpha": "0.3"}])
def test_rejects_an_empty_or_malformed_grid(grid):
    with pytest.raises(ConfigurationError, match="grid"):
        tune(_problem(n=20), "linucb", grid, seeds=[0])


def test_rejects_unknown_parameters_and_bad_values_before_running():
    p = _problem(n=20)
    with pytest.raises(ConfigurationError, match=r"takes no option.*'v'"):
        tune(p, "linucb", {"v": [0.1]}, seeds=[0])
    with pytest.raises(ConfigurationError, match="prior_scale applies to the prior policies"):
        tune(p, "linucb", {"prior_scale": [4]}, seeds=[0])
    with pytest.raises(ConfigurationError, match="alpha must be >= 0"):
        tune(p, "linucb", {"alpha": [0.1, -1.0]}, seeds=[0])
    with pytest.raises(ConfigurationError, match="needs a preference prior"):
        tune(p, "pilot", {"alpha": [0.1]}, seeds=[0])
    with pytest.raises(ConfigurationError, match="no hyper-parameters"):
        tune(p, "random", {"alpha": [0.1]}, seeds=[0])
    with pytest.raises(ConfigurationError, match="seed"):
        tune(p, "linucb", {"alpha": [0.1]}, seeds=[])


def test_grid_values_may_be_any_iterable():
    assert grid_points({"alpha": (a for a in (0.1, 1.0))}) == [{"alpha": 0.1}, {"alpha": 1.0}]


def test_default_grids_are_valid_and_small():
    p = _problem(n=20, prior=True)
    for policy, grid in DEFAULT_GRIDS.items():
        points = grid_points(grid)
        assert 1 <= len(points) <= 36  # wide enough that the optimum is inside (issue 12)
        for point in points:
            build_policy(p, policy, 0, **point)


def test_prior_holdout_recovers_the_trainers_held_out_prompts():
    from bandit_router.embeddings import make_embedder
    from bandit_router.warm_start import train_prior_from_outcomes

    rng = np.random.default_rng(0)
    n = 60
    topic = rng.integers(0, 2, n)
    df = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "prompt": [f"task {i} about {'code' if t else 'poems'}" for i, t in enumerate(topic)],
            "eval_name": ["t"] * n,
            "coder": topic.astype(float),
            "coder|total_cost": 0.01,
            "writer": 1.0 - topic,
            "writer|total_cost": 0.02,
        }
    )
    table = OutcomeTable.from_frame(df)
    art = train_prior_from_outcomes(df, make_embedder("hashing-32"), dim=4, progress=False)
    fitted, held = prior_holdout(table, art)
    assert fitted.n + held.n == n and held.n == art.metrics["n_test_prompts"]
    assert not set(fitted.sample_ids) & set(held.sample_ids)
    other = OutcomeTable.from_frame(df.assign(coder=1.0 - df.coder))
    with pytest.raises(ConfigurationError, match="not the table this prior was trained on"):
        prior_holdout(other, art)


# ---- bandit-router replay --tune-on ---------------------------------------------------------


@pytest.fixture
def outcome_csv(tmp_path):
    return two_topic_table(tmp_path, n=120, seed=1)


def _cli(*args):
    from typer.testing import CliRunner

    from bandit_router.cli.app import app

    return CliRunner().invoke(app, ["replay", *map(str, args)])


def test_cli_tune_on_split_tunes_then_replays_the_rest(outcome_csv):
    path, _ = outcome_csv
    res = _cli(
        path,
        "-p",
        "linucb,random",
        "--embedder",
        "hashing-16",
        "--tune-on",
        "split:0.25",
        "--tune-seeds",
        "2",
        "--no-save",
        "--workers",
        "1",
    )
    assert res.exit_code == 0, res.output
    assert "tuning on 30 rows of a seeded 0.25 share" in res.output
    assert "linucb: tuned {'alpha':" in res.output
    assert "random: no tuning grid" in res.output
    res = _cli(
        path,
        "-p",
        "linucb",
        "--embedder",
        "hashing-16",
        "--tune-on",
        "split:0.25",
        "--tune-seeds",
        "2",
        "--no-save",
        "--workers",
        "1",
        "--json",
    )
    assert res.exit_code == 0, res.output
    lines = [line[line.index("{") :] for line in res.output.splitlines() if "{" in line]
    runs = [json.loads(line) for line in lines]  # (a progress bar may precede the object)
    assert [r["queries"] for r in runs] == [90]  # the tuning share is not replayed


def test_cli_tune_on_another_table_drops_replayed_prompts(outcome_csv, tmp_path):
    path, df = outcome_csv
    other = df.iloc[:50].copy()  # 20 of them repeat replayed prompts...
    other.loc[20:, "prompt"] = [f"unrelated prompt {i}" for i in range(20, 50)]
    tpath = tmp_path / "tuning.csv"
    other.to_csv(tpath, index=False)
    res = _cli(
        path,
        "-p",
        "lints",
        "--embedder",
        "hashing-16",
        "--tune-on",
        tpath,
        "--tune-seeds",
        "2",
        "--no-save",
        "--workers",
        "1",
    )
    assert res.exit_code == 0, res.output
    assert "tuning on 30 rows" in res.output and "20 rows sharing a prompt" in res.output


def test_cli_tune_on_errors(outcome_csv):
    path, _ = outcome_csv
    for spec, msg in (("split:2", "split:F needs F in"), ("holdout", "needs --train")):
        res = _cli(
            path,
            "-p",
            "linucb",
            "--embedder",
            "hashing-16",
            "--tune-on",
            spec,
            "--no-save",
            "--workers",
            "1",
        )
        assert res.exit_code != 0
        assert isinstance(res.exception, ConfigurationError)
        assert msg in str(res.exception) and str(res.exception).startswith("--tune-on")


def test_cli_tune_on_holdout_uses_the_rows_the_prior_did_not_fit(outcome_csv, tmp_path):
    path, df = outcome_csv
    train = df.assign(prompt=[f"{p} (training copy)" for p in df.prompt])
    tpath = tmp_path / "train.csv"
    train.to_csv(tpath, index=False)
    res = _cli(
        path,
        "-p",
        "pilot",
        "--embedder",
        "hashing-16",
        "--train",
        tpath,
        "--tune-on",
        "holdout",
        "--tune-seeds",
        "2",
        "--no-save",
        "--workers",
        "1",
    )
    assert res.exit_code == 0, res.output
    assert "tuning on 24 rows of" in res.output and "held out by the prior" in res.output
    assert "pilot: tuned {'alpha':" in res.output and "'prior_scale':" in res.output


def test_cli_tune_on_split_keeps_the_users_so_budgets_stay_per_user(outcome_csv):
    """``--users hash:4 --budget USD`` gives every user USD; after ``--tune-on split:F``
    took its rows away, the rest must still be replayed with four users, not one."""
    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.simulations.replay import resolve_users

    path, _ = outcome_csv
    res = _cli(
        path,
        "-p",
        "linucb",
        "--embedder",
        "hashing-16",
        "--users",
        "hash:4",
        "--budget",
        "0.01",
        "--tune-on",
        "split:0.25",
        "--tune-seeds",
        "1",
        "--no-save",
        "--workers",
        "1",
        "--json",
    )
    assert res.exit_code == 0, res.output
    (rec,) = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    rest = load_outcomes(path).split(0.25, seed=1)[1]  # what the replay keeps (seed 0 + 1)
    users = len(set(resolve_users(rest, "hash:4")))
    assert rec["queries"] == rest.n and users > 1
    assert rec["budget"] == pytest.approx(0.01 * users)
