"""``bandit-router route / feedback / users / models`` on a durable SQLite store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bandit_router.cli.app import app
from bandit_router.config_file import load_config
from bandit_router.errors import BanditRouterError
from bandit_router.storage import open_router_stores

runner = CliRunner()

CONFIG = """
embedder: hashing-32
prior: null
policy: {name: linucb, seed: 0}
budget: {default: 1.0, period: daily}
feedback: {wait_seconds: 3600}
router: {snapshot_every: 2}
models:
  - {name: small, input_price_per_mtok: 0.1, output_price_per_mtok: 0.4}
  - {name: large, input_price_per_mtok: 5, output_price_per_mtok: 15}
database: {url: DB}
"""


@pytest.fixture
def setup(tmp_path, monkeypatch):
    db = tmp_path / "router.db"
    cfg = tmp_path / "router.yaml"
    cfg.write_text(CONFIG.replace("DB", str(db)))
    monkeypatch.setenv("BANDIT_ROUTER_CONFIG", str(cfg))
    monkeypatch.delenv("BANDIT_ROUTER_DATABASE_URL", raising=False)
    return cfg, db


def run(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    if isinstance(result.exception, BanditRouterError):  # main() turns these into exit 2
        assert code == 2, result.exception
        return str(result.exception)
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def restored(cfg):
    from bandit_router.cli.serve import build_router

    c = load_config(cfg)
    stores = open_router_stores(c.database_url)
    return build_router(c, stores, progress=False), stores


def test_route_then_feedback_learns_and_survives_the_process(setup):
    cfg, _ = setup
    run("users", "add", "alice", "--budget", "0.5", "--period", "daily")
    out = json.loads(run("route", "Write a haiku about autumn", "--user", "alice", "--json"))
    assert {"decision_id", "model", "estimated_cost", "propensity", "budget_remaining"} <= set(out)
    assert out["model"] in ("small", "large") and 0 < out["propensity"] <= 1
    assert out["budget_remaining"] == pytest.approx(0.5 - out["estimated_cost"])
    fb = json.loads(
        run("feedback", out["decision_id"], "--reward", "1", "--cost", "0.0004", "--json")
    )
    assert fb["feedback_id"] == 1 and fb["applied"] and not fb["duplicate"]
    again = json.loads(
        run("feedback", out["decision_id"], "--reward", "1", "--cost", "0.0004", "--json")
    )
    assert again["duplicate"] and again["feedback_id"] == 1
    assert "accepted once" in run("feedback", out["decision_id"], "--reward", "0", code=2)
    assert "no decision" in run("feedback", "nope", "--reward", "1", code=2)
    assert "outside the configured range" in run(
        "feedback", out["decision_id"], "--reward", "3", code=2
    )
    router, stores = restored(cfg)
    try:
        assert router.policy.n_updates == 1 and router.last_feedback_id == 1
        s = stores.ledger.state("alice")
        assert s.spent == pytest.approx(0.0004) and s.reserved == pytest.approx(0.0)
    finally:
        stores.close()
    users = [json.loads(line) for line in run("users", "list", "--json").splitlines()]
    assert users[0]["user"] == "alice" and users[0]["spent"] == pytest.approx(0.0004)


def test_the_state_after_many_cli_calls_is_the_log_replayed(setup):
    cfg, _ = setup
    ids = []
    for i in range(5):
        out = json.loads(run("route", f"question {i}", "--user", "bob", "--json"))
        ids.append(out["decision_id"])
        run("feedback", out["decision_id"], "--reward", str((i % 2) * 1.0))
    router, stores = restored(cfg)
    try:
        assert stores.snapshots.latest().last_feedback_id == 4  # snapshot_every: 2
        assert router.policy.n_updates == 5
        log = stores.decisions.feedback_since(0)
        assert [f.decision_id for f in log] == ids
    finally:
        stores.close()


def test_refusals_exit_1_and_say_why(setup):
    run("users", "add", "carol", "--budget", "0.000000001")
    out = run("route", "anything at all", "--user", "carol", code=1)
    assert "budget exhausted" in out and "resets at" in out and "unaffordable" in out
    out = json.loads(
        run(
            "route",
            "x",
            "--user",
            "dave",
            "--allowed",
            "small",
            "--max-cost",
            "0",
            "--json",
            code=1,
        )
    )
    assert out["model"] is None and out["reason"] == "no_candidate"
    assert "over max_cost" in out["excluded"]["small"] and "not allowed" in out["excluded"]["large"]
    assert "unknown model" in run("route", "x", "--user", "dave", "--allowed", "gpt-9", code=2)


def test_models_add_retire_price_change_what_route_sees(setup):
    cfg, _ = setup
    assert "added tiny" in run(
        "models", "add", "tiny", "--input-price", "0.05", "--output-price", "0.2"
    )
    run("models", "price", "large", "--input-price", "50")
    run("models", "retire", "small")
    listed = {
        json.loads(line)["model"]: json.loads(line)
        for line in run("models", "list", "--json").splitlines()
    }
    assert listed["small"]["status"] == "retired" and listed["large"]["input_price_per_mtok"] == 50
    out = json.loads(
        run("route", "hello", "--user", "erin", "--allowed", "small", "--json", code=1)
    )
    assert out["excluded"]["small"] == "retired"
    out = json.loads(run("route", "hello", "--user", "erin", "--allowed", "tiny", "--json"))
    assert out["model"] == "tiny"
    router, stores = restored(cfg)
    try:
        assert sorted(router.models) == ["large", "tiny"]
    finally:
        stores.close()
    assert "already active" in run(
        "models", "add", "tiny", "--input-price", "1", "--output-price", "1", code=2
    )
    assert "no active model" in run("models", "retire", "nope", code=2)


def test_users_budget_changes_and_errors_in_user_words(setup):
    run("users", "add", "frank")
    assert "exists" in run("users", "add", "frank", code=2)
    assert "$5.00 daily" in run("users", "budget", "frank", "--budget", "5", "--period", "daily")
    assert "no budget" in run("users", "budget", "frank", "--unlimited")
    assert "add them first" in run("users", "budget", "nobody", "--budget", "1", code=2)
    assert "unknown budget period" in run(
        "users", "budget", "frank", "--budget", "1", "--period", "weekly", code=2
    )


@pytest.mark.parametrize(
    "command",
    [
        ["route"],
        ["feedback"],
        ["users", "add"],
        ["users", "list"],
        ["users", "budget"],
        ["models", "add"],
        ["models", "retire"],
        ["models", "price"],
        ["models", "list"],
    ],
)
def test_every_new_command_has_help_with_an_example(command):
    out = runner.invoke(app, [*command, "--help"]).output
    assert "Example" in out and "bandit-router" in out
