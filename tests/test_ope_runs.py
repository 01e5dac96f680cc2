"""Off-policy evaluation one logging run at a time, with support and ESS diagnostics."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bandit_router.cli.app import app
from bandit_router.policies import make_policy
from bandit_router.simulations.ope import (
    LogFormatError,
    LoggedData,
    MixedLogError,
    diagnostics,
    evaluate_candidate,
    log_from_frame,
    select_runs,
)
from tests.sim_tables import two_topic_table

runner = CliRunner()


def plain(output: str) -> str:
    """CLI output without the error box, whitespace collapsed."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def cli_error(argv: list[str], monkeypatch, capsys) -> str:
    """Run the console script on ``argv``; it must exit with code 2 and print one
    ``error:`` line (no traceback). Returns that line."""
    import sys

    from bandit_router.cli.app import main

    monkeypatch.setattr(sys, "argv", ["bandit-router", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A two-policy, two-seed simulate --log and its per-run simulated mean rewards."""
    tmp = tmp_path_factory.mktemp("sim")
    log = tmp / "log.jsonl"
    res = runner.invoke(
        app,
        [
            "simulate",
            "-p",
            "random,linucb",
            "-n",
            "600",
            "--arms",
            "3",
            "--dim",
            "4",
            "--seeds",
            "2",
            "--workers",
            "1",
            "--no-save",
            "--json",
            "--log",
            str(log),
        ],
    )
    assert res.exit_code == 0, res.output
    means = {f"{r['policy']}/s{r['seed']}": r["mean_reward"] for r in json_lines(res.stdout)}
    return log, means


def test_simulate_log_names_the_run_of_every_decision(simulated):
    log, means = simulated
    df = pd.read_json(log, lines=True)
    assert {"run", "policy", "seed"} <= set(df.columns)
    assert sorted(df["run"].unique()) == sorted(means)
    assert (df.groupby("run").size() == 600).all()


def test_evaluate_refuses_a_mixed_log_and_says_how_to_pick_a_run(simulated, monkeypatch, capsys):
    log, _ = simulated
    text = cli_error(["evaluate", str(log), "-p", "random", "--no-save"], monkeypatch, capsys)
    assert "mixes 4 logging runs" in text and "--run random/s0" in text and "--run all" in text


def test_evaluate_on_one_exploring_run_covers_the_simulated_value(simulated):
    log, means = simulated
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(log),
            "-p",
            "random",
            "--run",
            "random/s0,random/s1",
            "--bootstrap",
            "300",
            "--no-save",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    recs = json_lines(res.stdout)
    assert [r["run"] for r in recs] == ["random/s0", "random/s1"]
    for r in recs:
        assert r["supported"] and r["unsupported_mass"] == 0.0 and r["warnings"] == []
        assert r["effective_sample_size"] == pytest.approx(600)
        ips = r["estimates"]["ips"]  # random on its own log: every weight is 1
        assert ips["value"] == pytest.approx(r["logged_value"])
        for e in r["estimates"].values():  # the simulated mean is the expected reward
            assert e["lo"] < e["value"] < e["hi"]
            assert abs(e["value"] - means[r["run"]]) < 4 * e["se"], (r["run"], e)


def test_evaluate_on_a_deterministic_run_warns_that_the_estimate_is_unsupported(simulated):
    log, _ = simulated
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(log),
            "-p",
            "random",
            "--run",
            "linucb/s0",
            "--bootstrap",
            "100",
            "--no-save",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    (rec,) = json_lines(res.stdout)
    assert rec["deterministic_share"] == 1.0
    assert rec["unsupported_mass"] == pytest.approx(2 / 3)  # random: 2 of 3 models unseen
    assert not rec["supported"]
    assert "unsupported" in rec["warnings"][0]
    text = runner.invoke(
        app,
        [
            "evaluate",
            str(log),
            "-p",
            "random",
            "--run",
            "linucb/s0",
            "--bootstrap",
            "100",
            "--no-save",
        ],
    ).output
    assert "warning: random: 66.7% of its probability" in plain(text)


def test_select_runs_by_name_all_and_unknown():
    df = pd.DataFrame({"policy": ["a", "a", "b"], "seed": [0, 1, 0], "x": [1, 2, 3]})
    assert list(select_runs(df, ["all"])) == ["a/s0", "a/s1", "b/s0"]
    assert select_runs(df, ["b/s0"])["b/s0"]["x"].tolist() == [3]
    with pytest.raises(MixedLogError, match="mixes 3 logging runs"):
        select_runs(df)
    with pytest.raises(LogFormatError, match="no run c/s0; its runs are: a/s0, a/s1, b/s0"):
        select_runs(df, ["c/s0"])
    assert list(select_runs(df.drop(columns=["policy", "seed"]))) == ["log"]


def test_unsupported_mass_counts_models_the_logger_never_takes():
    X = np.ones((4, 1))
    # rows 0-1 deterministic (propensity 1); model "c" is never chosen anywhere
    d = LoggedData(
        X, np.array([0, 1, 0, 1]), np.ones(4), np.array([1.0, 1.0, 0.5, 0.5]), list("abc")
    )
    uniform = np.full((4, 3), 1 / 3)
    out = diagnostics(uniform, d)
    assert out["unsupported_mass"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 3) / 4)
    assert out["deterministic_share"] == 0.5
    own = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0]])
    assert diagnostics(own, d)["unsupported_mass"] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.05, 1.0), min_size=2, max_size=30),
    st.integers(0, 2**31 - 1),
)
def test_effective_sample_size_is_the_kish_formula(props, seed):
    rng = np.random.default_rng(seed)
    n = len(props)
    acts = rng.integers(0, 2, n)
    d = LoggedData(np.ones((n, 1)), acts, rng.random(n), np.array(props), ["a", "b"])
    pi = rng.dirichlet([1.0, 1.0], n)
    w = pi[np.arange(n), acts] / np.array(props)
    ess = diagnostics(pi, d)["effective_sample_size"]
    assert ess == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert 1.0 - 1e-9 <= ess <= n + 1e-9


def test_rewards_outside_the_scale_are_refused_with_the_column_and_range(
    tmp_path, monkeypatch, capsys
):
    df = pd.DataFrame(
        {
            "context": ["[1]", "[1]"],
            "model": ["a", "b"],
            "reward": [1.0, 5.0],
            "propensity": [0.5, 0.5],
        }
    )
    with pytest.raises(LogFormatError, match=r"column 'reward' must lie in \[0, 1\].*row 1: 5"):
        log_from_frame(df, source="x.csv")
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    err = cli_error(["evaluate", str(path), "-p", "random", "--no-save"], monkeypatch, capsys)
    assert "column 'reward' must lie in [0, 1]" in err


def test_candidate_result_carries_support_and_warnings():
    rng = np.random.default_rng(0)
    n = 300
    d = LoggedData(np.ones((n, 1)), np.zeros(n, int), rng.random(n), np.ones(n), ["a", "b"])
    out = evaluate_candidate(make_policy("random", ["a", "b"], 1, seed=0), d, bootstrap=60)
    assert out["unsupported_mass"] == pytest.approx(0.5) and out["supported"] is False
    assert any("deterministic" in w for w in out["warnings"])


def test_replay_log_names_the_run_too(tmp_path):
    table = two_topic_table(tmp_path, n=40, seed=0)[0]
    log = tmp_path / "log.csv"
    res = runner.invoke(
        app,
        [
            "replay",
            str(table),
            "-p",
            "random",
            "--embedder",
            "hashing-8",
            "--seeds",
            "2",
            "--budget-fraction",
            "0.5",
            "--workers",
            "1",
            "--no-save",
            "--log",
            str(log),
        ],
    )
    assert res.exit_code == 0, res.output
    df = pd.read_csv(log)
    assert sorted(df["run"].unique()) == ["random/s0/b0.5", "random/s1/b0.5"]


def test_the_evaluate_table_lines_up_under_its_header(simulated):
    log, _ = simulated
    res = runner.invoke(
        app,
        ["evaluate", str(log), "-p", "random,fixed:arm0", "--run", "random/s0",
         "--bootstrap", "60", "--no-save"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("policy"))
    end = lines[header].index("value") + len("value")  # right-aligned under "value"
    rows = [line for line in lines[header + 1 :] if line.strip()]
    assert len(rows) == 6
    for row in rows:
        assert row[end - 1].isdigit() and row[end] == " ", (lines[header], row)
