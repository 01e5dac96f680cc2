"""The quick-start demo runs end to end and its table says what it should."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bandit_router.cli.app import app
from bandit_router.errors import ConfigurationError
from bandit_router.simulations.demo_run import run_demo


def test_demo_runs_every_policy_with_and_without_budget():
    text = run_demo(
        queries=120,
        policies=["pilot", "linucb", "random"],
        embedder="hashing-64",
        train=120,
        budget_fraction=0.3,
        progress=False,
    )
    lines = text.splitlines()
    rows = {
        line.split()[0]: line
        for line in lines
        if line.split() and line.split()[0] in ("pilot", "linucb", "random")
    }
    assert set(rows) == {"pilot", "linucb", "random"}
    for row in rows.values():
        no_budget, budget = row.split("|")[1:3]
        cost_share = float(budget.split()[2].rstrip("%")) / 100
        assert cost_share <= 0.30 + 1e-9  # the budget is never overspent
        assert 0.0 <= float(no_budget.split()[0]) <= 1.0


def test_demo_cli_saves_its_runs_and_explains_errors(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "demo.db")
    args = ["demo", "-n", "60", "--train", "60", "--embedder", "hashing-32"]
    ok = runner.invoke(app, [*args, "--policies", "linucb,random", "--db", db])
    assert ok.exit_code == 0, ok.output
    assert "linucb" in ok.output and "budget 30%" in ok.output
    assert "saved as runs 1-4" in ok.output
    listed = runner.invoke(app, ["runs", "list", "--db", db, "--json"])
    assert listed.exit_code == 0
    assert listed.output.count('"policy"') == 4
    with pytest.raises(ConfigurationError, match="budget-fraction"):
        run_demo(queries=20, train=60, embedder="hashing-32", budget_fraction=1.5, progress=False)
