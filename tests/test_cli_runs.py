"""``bandit-router runs ...`` and ``bandit-router regret ...`` through typer's CliRunner."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from bandit_router.cli.app import app, main
from bandit_router.storage import UnknownRunError, open_store
from bandit_router.storage.config import ENV_VAR
from tests.test_storage_support import make_steps

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A database with three finished runs (two with a budget) and one without steps."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_store(url) as s:
        for i, (policy, frac) in enumerate([("linucb", 0.25), ("pilot", 0.25), ("random", None)]):
            rid = s.runs.create(
                "replay",
                policy,
                "/data/llmrouter/outcomes_test.csv",
                seed=i,
                budget=1.5 if frac else None,
                budget_fraction=frac,
            )
            steps = make_steps(120, seed=i, budgeted=frac is not None)
            s.runs.add_steps(rid, steps)
            s.runs.finish(
                rid,
                {
                    "queries": 120,
                    "mean_reward": float(steps["reward"].mean()),
                    "cost_fraction": 0.2 + i / 10,
                    "cumulative_regret": float(steps["cumulative_regret"].iloc[-1]),
                },
            )
        s.runs.create("simulate", "lints", "synthetic-linear", seed=7)
    return url


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def test_runs_list_table(db):
    result = invoke("runs", "list", "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    for col in ["id", "created", "kind", "policy", "dataset", "seed", "budget", "queries"]:
        assert col in lines[0]
    assert "mean reward" in lines[0] and "cost frac" in lines[0] and "regret" in lines[0]
    body = lines[2:]
    assert [line.split()[0] for line in body] == ["4", "3", "2", "1"]  # newest first
    assert "linucb" in body[3] and "25%" in body[3] and "20.0%" in body[3]
    assert "running" in body[0]


def test_runs_list_limit_kind_and_json(db):
    result = invoke("runs", "list", "--db", db, "--kind", "replay", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == [3, 2]
    assert {"id", "policy", "queries", "mean_reward", "cost_fraction", "cumulative_regret"} <= set(
        rows[0]
    )
    assert rows[1]["budget_fraction"] == 0.25
    bad = invoke("runs", "list", "--db", db, "--kind", "training")
    assert bad.exit_code == 2 and "simulate" in bad.output


def test_runs_list_reads_the_environment_variable(db, monkeypatch):
    monkeypatch.setenv(ENV_VAR, db)
    result = invoke("runs", "list", "--json")
    assert [r["id"] for r in json.loads(result.output)] == [4, 3, 2, 1]


def test_runs_list_on_an_empty_database(tmp_path):
    result = invoke("runs", "list", "--db", str(tmp_path / "empty.db"))
    assert result.exit_code == 0
    assert "no runs" in result.output and "bandit-router replay" in result.output
    assert json.loads(invoke("runs", "list", "--db", str(tmp_path / "e.db"), "--json").output) == []


def test_runs_show_and_delete(db):
    shown = json.loads(invoke("runs", "show", "2", "--db", db).output)
    assert shown["policy"] == "pilot" and shown["n_steps"] == 120
    result = invoke("runs", "delete", "2", "--db", db, "--yes")
    assert result.exit_code == 0 and "deleted 1" in result.output
    assert [r["id"] for r in json.loads(invoke("runs", "list", "--db", db, "--json").output)] == [
        4,
        3,
        1,
    ]
    aborted = runner.invoke(app, ["runs", "delete", "1", "--db", db], input="n\n")
    assert aborted.exit_code == 1
    with open_store(db) as s:
        assert s.runs.get(1).policy == "linucb"


def test_regret_show_overlays_curves_and_prints_a_summary(db):
    result = invoke("regret", "show", "1", "2", "3", "--db", db, "--width", "90", "--height", "20")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Cumulative regret" in out
    for label in ["#1 linucb s0 b0.25", "#2 pilot s1 b0.25", "#3 random s2"]:
        assert label in out
    assert "\x1b[" not in out  # no colour codes when not writing to a terminal
    table = out[out.index("id  policy") :].splitlines()
    assert len(table) == 2 + 3
    assert "budgeted regret" in table[0]


def test_regret_show_budgeted_leaves_out_runs_without_a_budget(db):
    result = invoke("regret", "show", "1", "3", "--budgeted", "--db", db, "--width", "80")
    assert result.exit_code == 0, result.output
    assert "Budgeted regret" in result.output and "#1 linucb" in result.output
    assert "#3 random" not in result.output.split("Budgeted regret")[1].split("id  policy")[0]
    only_unbudgeted = invoke("regret", "show", "3", "--budgeted", "--db", db)
    assert only_unbudgeted.exit_code != 0
    assert "no budgeted regret" in str(only_unbudgeted.exception)


def test_regret_export_png_and_csv(db, tmp_path):
    png, csv = tmp_path / "curves.png", tmp_path / "curves.csv"
    result = invoke("regret", "export", "1", "3", "--db", db, "--png", str(png), "--csv", str(csv))
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 500
    frame = pd.read_csv(csv)
    assert len(frame) == 240
    assert frame["run_id"].tolist() == [1] * 120 + [3] * 120  # the order given, long format
    for col in ["label", "policy", "seed", "step", "cumulative_regret", "budgeted_regret", "model"]:
        assert col in frame.columns
    assert frame.loc[frame.run_id == 3, "budgeted_regret"].isna().all()
    assert frame.loc[frame.run_id == 1, "step"].tolist() == list(range(1, 121))


def test_regret_export_budgeted_png_only(db, tmp_path):
    png = tmp_path / "b.png"
    result = invoke("regret", "export", "1", "2", "--budgeted", "--png", str(png), "--db", db)
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 1000


def test_regret_export_needs_a_target(db, tmp_path):
    result = invoke("regret", "export", "1", "--db", db)
    assert result.exit_code != 0 and "--png" in str(result.exception)
    missing_dir = invoke("regret", "export", "1", "--db", db, "--csv", str(tmp_path / "no/x.csv"))
    assert "does not exist" in str(missing_dir.exception)


def test_unknown_ids_and_empty_database_are_clear_errors(db, tmp_path):
    result = invoke("regret", "show", "1", "42", "--db", db)
    assert isinstance(result.exception, UnknownRunError)
    assert "42" in str(result.exception) and "bandit-router runs list" in str(result.exception)
    empty = invoke("regret", "export", "1", "--db", str(tmp_path / "none.db"), "--csv", "x.csv")
    assert "no runs yet" in str(empty.exception)
    no_steps = invoke("regret", "show", "4", "--db", db)
    assert "no steps" in str(no_steps.exception)


def test_main_turns_user_errors_into_one_line_and_exit_code_2(db, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bandit-router", "regret", "show", "99", "--db", db])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: no run id 99")
