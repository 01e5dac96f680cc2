"""``bandit-router replay / simulate / evaluate`` through typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bandit_router.cli.app import app
from bandit_router.errors import ConfigurationError
from tests.sim_tables import two_topic_table

runner = CliRunner()

REQUIRED = {
    "policy",
    "queries",
    "mean_reward",
    "total_cost",
    "budget",
    "cost_fraction",
    "cumulative_regret",
    "oracle_mean_reward",
    "model_share",
    "run_id",
}


@pytest.fixture
def table(tmp_path):
    return two_topic_table(tmp_path, n=80, seed=0)[0]


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_replay_json_one_object_per_run_saved_in_the_store(table, tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    res = runner.invoke(
        app,
        [
            "replay",
            str(table),
            "-p",
            "linucb,random",
            "--budget-fraction",
            "0.3,1",
            "--seeds",
            "2",
            "--embedder",
            "hashing-16",
            "--workers",
            "1",
            "--json",
            "--db",
            db,
        ],
    )
    assert res.exit_code == 0, res.output
    recs = json_lines(res.stdout)
    assert len(recs) == 2 * 2 * 2
    for r in recs:
        assert REQUIRED <= set(r)
        assert r["queries"] == 80
        assert r["cost_fraction"] <= r["budget_fraction"] + 1e-9
    from bandit_router.storage import open_store

    store = open_store(db)
    ids = [r["run_id"] for r in recs]
    assert sorted(rec.id for rec in store.runs.list(limit=None)) == sorted(ids)
    steps = store.runs.steps(ids[0])
    assert len(steps) == 80
    store.close()


def test_replay_budget_options_exclude_each_other(table):
    res = runner.invoke(
        app, ["replay", str(table), "--budget", "1", "--budget-fraction", "0.5", "--no-save"]
    )
    assert isinstance(res.exception, ConfigurationError)


def test_replay_pilot_without_prior_explains(table):
    res = runner.invoke(
        app, ["replay", str(table), "-p", "pilot", "--embedder", "hashing-16", "--no-save"]
    )
    assert isinstance(res.exception, ConfigurationError)
    assert "--prior" in str(res.exception)


def test_replay_with_prior_from_a_held_out_split(table):
    res = runner.invoke(
        app,
        [
            "replay",
            str(table),
            "-p",
            "pilot,linucb",
            "--train-split",
            "0.5",
            "--embedder",
            "hashing-16",
            "--workers",
            "1",
            "--no-save",
            "--set",
            "alpha=0.5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "prior trained on 40 held-out rows" in res.stdout
    assert "pilot" in res.stdout


def test_simulate_log_then_evaluate(tmp_path):
    log = tmp_path / "log.jsonl"
    res = runner.invoke(
        app,
        [
            "simulate",
            "-n",
            "300",
            "-p",
            "epsilon-greedy",
            "--seeds",
            "1",
            "--workers",
            "1",
            "--no-save",
            "--log",
            str(log),
        ],
    )
    assert res.exit_code == 0, res.output
    frame = pd.read_json(log, lines=True)
    assert {"context", "model", "reward", "propensity"} <= set(frame.columns)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    res = runner.invoke(
        app,
        ["evaluate", str(log), "-p", "linucb,random", "--bootstrap", "100", "--json", "--db", db],
    )
    assert res.exit_code == 0, res.output
    recs = json_lines(res.stdout)
    assert [r["policy"] for r in recs] == ["linucb", "random"]
    for r in recs:
        assert set(r["estimates"]) == {"ips", "snips", "dr"}
        e = r["estimates"]["dr"]
        assert e["lo"] <= e["value"] <= e["hi"]
        assert r["run_id"] is not None


def test_simulate_table_output(tmp_path):
    res = runner.invoke(
        app,
        [
            "simulate",
            "-n",
            "200",
            "-p",
            "linucb,random",
            "--drift",
            "--delay",
            "fixed:3",
            "--budget-fraction",
            "0.5",
            "--workers",
            "1",
            "--no-save",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "linucb" in res.stdout and "0.5x" in res.stdout


def test_prior_file_round_trip_and_training_table(table, tmp_path):
    prior = tmp_path / "prior.npz"
    args = ["--embedder", "hashing-16", "--workers", "1", "--no-save", "--json"]
    res = runner.invoke(
        app,
        [
            "replay",
            str(table),
            "-p",
            "pilot",
            "--train",
            str(table),
            "--save-prior",
            str(prior),
            *args,
        ],
    )
    assert res.exit_code == 0, res.output
    assert prior.exists()
    trained = json_lines(res.stdout)[0]
    res = runner.invoke(app, ["replay", str(table), "-p", "pilot", "--prior", str(prior), *args])
    assert res.exit_code == 0, res.output
    loaded = json_lines(res.stdout)[0]
    assert loaded["cumulative_regret"] == pytest.approx(trained["cumulative_regret"])


def test_budget_sweep_prints_aiq(table):
    res = runner.invoke(
        app,
        [
            "replay",
            str(table),
            "-p",
            "linucb",
            "--budget-fraction",
            "0.2,0.6,1",
            "--embedder",
            "hashing-16",
            "--workers",
            "1",
            "--no-save",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "AIQ over the budget sweep" in res.stdout


def test_evaluate_a_log_with_prompts(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    topic = rng.integers(0, 2, n)
    model = rng.choice(["small", "large"], n)
    log = pd.DataFrame(
        {
            "prompt": [
                ("sum the series " if t else "a sonnet on ") + str(i) for i, t in enumerate(topic)
            ],
            "model": model,
            "reward": ((model == "large") | (topic == 0)).astype(float),
            "propensity": 0.5,
        }
    )
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(path),
            "-p",
            "fixed:large",
            "--embedder",
            "hashing-16",
            "--bootstrap",
            "100",
            "--json",
            "--no-save",
        ],
    )
    assert res.exit_code == 0, res.output
    est = json_lines(res.stdout)[0]["estimates"]
    assert est["snips"]["value"] == pytest.approx(1.0)  # "large" is always right
