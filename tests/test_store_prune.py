"""Retention: ``prune`` deletes old history but the router's state still rebuilds exactly,
pending decisions still take feedback, open reservations and the books are untouched; and
the ``bandit-router db`` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bandit_router.budget.clock import ManualClock
from bandit_router.budget.periods import Budget
from bandit_router.cli.app import app
from bandit_router.router import Router
from bandit_router.storage import SchemaVersionError, open_router_stores, open_store
from bandit_router.storage.maintenance import parse_duration, prune, status
from bandit_router.storage.migrate import downgrade
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import ARMS, CONFIG, event

DAY = 86_400.0
T0 = 1_750_000_000.0


def _router(stores, clock):
    ids = iter(f"p{i:05d}" for i in range(10_000))
    cfg = {**CONFIG, "snapshot_every": 10}
    router = Router.from_config(cfg, stores, clock=clock, ids=lambda: next(ids))
    return router


def _traffic(router, clock, events, *, answer=True):
    """Route ``events`` (and answer them); returns their decision ids."""
    out = []
    for i in events:
        e, rewards = event(i)
        r = router.route("ann", embedding=e, input_tokens=200)
        if answer:
            router.feedback(r.decision_id, float(rewards[ARMS.index(r.model)]), cost=0.0002)
        out.append(r.decision_id)
        clock.advance(60)
    return out


def _scenario(url):
    clock = ManualClock(T0)
    stores = open_router_stores(url, clock=clock)
    router = _router(stores, clock)
    router.set_user("ann", Budget(50.0, "rolling:3888000"))  # a 45-day rolling window
    _traffic(router, clock, range(25))  # day 0: snapshots after feedback 10 and 20
    pending = _traffic(router, clock, range(25, 28), answer=False)  # never answered yet
    clock.advance(40 * DAY)
    _traffic(router, clock, range(28, 31))  # day 40: 3 more, no new snapshot
    return clock, stores, router, pending


def _books(stores):
    s = stores.ledger.state("ann")
    return s.spent, s.reserved, s.n_decisions


def _check_prune(url):
    clock, stores, router, pending = _scenario(url)
    before = _books(stores)
    # the latest snapshot (day 0) folds feedback 1..20; 21..25 (day 0) and 26..28 follow it
    assert stores.snapshots.latest().last_feedback_id == 20
    dry = prune(stores.engine, 30 * DAY, now=clock(), dry_run=True)
    counts = prune(stores.engine, 30 * DAY, now=clock())
    assert counts == dry  # the dry run counts exactly what goes
    # old decisions folded into the kept snapshot go; old feedback after it and the 3
    # pending decisions stay
    assert counts["decisions"] == 20 and counts["feedback"] == 20
    assert counts["policy_snapshots"] == 1  # the first snapshot; the latest stays
    info = status(stores.engine)["counts"]
    assert info["decisions"] == 5 + 3 + 3 and info["feedback"] == 8
    assert info["policy_snapshots"] == 1
    assert _books(stores) == pytest.approx(before)  # rolling spend and holds untouched
    # the state rebuilds exactly from what is left
    restored = _router(open_router_stores(url, clock=clock), clock)
    np.testing.assert_allclose(restored.policy.theta, router.policy.theta, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        restored.policy.state.A_inv, router.policy.state.A_inv, rtol=0, atol=1e-9
    )
    # a pending decision still takes its feedback and settles its reservation
    held = stores.ledger.state("ann").reserved
    res = restored.feedback(pending[0], 1.0, cost=0.0001)
    assert not res.duplicate
    assert stores.ledger.state("ann").reserved < held
    restored.stores.close()
    stores.close()


def test_prune_keeps_what_the_state_and_the_books_need_on_sqlite(tmp_path):
    _check_prune(str(tmp_path / "prune.db"))


@pytest.mark.postgres
def test_prune_keeps_what_the_state_and_the_books_need_on_postgres():
    with temporary_postgres_database(postgres_url()) as url:
        _check_prune(url)


def test_prune_without_a_snapshot_keeps_all_feedback(tmp_path):
    url = str(tmp_path / "nosnap.db")
    clock, stores, *_ = _scenario(url)
    with stores.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM policy_snapshots")
    counts = prune(stores.engine, 30 * DAY, now=clock())
    assert counts["feedback"] == 0 and counts["decisions"] == 0
    stores.close()


def test_parse_duration_refuses_nonsense():
    assert parse_duration("2w") == 14 * DAY
    with pytest.raises(ValueError, match="30d"):
        parse_duration("thirty days")


runner = CliRunner()


def test_db_upgrade_status_and_prune_commands(tmp_path):
    db = str(tmp_path / "cli.db")
    with open_store(db) as s:
        downgrade(s.engine, "0001")  # an older database
    st = runner.invoke(app, ["db", "status", "--json", "--db", db])
    assert st.exit_code == 0, st.output
    info = json.loads(st.output)
    assert info["current"] == ["0001"] and not info["up_to_date"]
    assert info["counts"]["decisions"] is None and info["counts"]["runs"] == 0
    up = runner.invoke(app, ["db", "upgrade", "--db", db])
    assert up.exit_code == 0 and "from 0001 to 0002" in up.output, up.output
    again = runner.invoke(app, ["db", "upgrade", "--db", db])
    assert "nothing to do" in again.output
    st = json.loads(runner.invoke(app, ["db", "status", "--json", "--db", db]).output)
    assert st["up_to_date"] and st["counts"]["decisions"] == 0
    pr = runner.invoke(app, ["db", "prune", "--older-than", "30d", "--json", "--db", db])
    assert pr.exit_code == 0, pr.output
    assert json.loads(pr.output)["deleted"]["decisions"] == 0


def test_db_commands_refuse_a_database_from_the_future(tmp_path):
    db = str(tmp_path / "future.db")
    with open_store(db) as s, s.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_future'")
    for args in (["db", "status"], ["db", "upgrade"], ["db", "prune", "--older-than", "1d"]):
        out = runner.invoke(app, [*args, "--db", db])
        assert isinstance(out.exception, SchemaVersionError), (args, out.output)
        assert "0099_future" in str(out.exception) and "upgrade bandit-router" in str(out.exception)


def test_router_prune_on_a_database_snapshots_first_then_prunes(tmp_path):
    """``Router.prune`` on SQL stores: a snapshot folds all feedback in, so every old
    answered decision goes (not just those before the last periodic snapshot), and the
    state still rebuilds."""
    url = str(tmp_path / "router-prune.db")
    clock, stores, router, pending = _scenario(url)
    before = _books(stores)
    counts = router.prune(older_than=30 * DAY)
    assert counts["decisions"] == 25 and counts["feedback"] == 25  # day 0, all answered
    assert _books(stores) == pytest.approx(before)
    assert stores.snapshots.latest().last_feedback_id == router.last_feedback_id == 28
    restored = _router(open_router_stores(url, clock=clock), clock)
    np.testing.assert_allclose(restored.policy.theta, router.policy.theta, rtol=0, atol=1e-9)
    assert not restored.feedback(pending[0], 1.0, cost=0.0001).duplicate
    restored.stores.close()
    stores.close()
