"""The store against a real PostgreSQL server (``BANDIT_ROUTER_TEST_POSTGRES_URL``).

Every session gets a database of its own, dropped at the end. Skips locally without the
variable; fails on CI (``.ci/run`` starts a server and sets it).
"""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bandit_router.storage import (
    InvalidRunDataError,
    SchemaVersionError,
    UnknownRunError,
    open_store,
)
from bandit_router.storage.migrate import current_revisions, downgrade, head_revisions
from bandit_router.storage.models import Base
from tests.test_storage_support import make_steps, postgres_url, temporary_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url():
    with temporary_postgres_database(postgres_url()) as url:
        yield url


@pytest.fixture
def store(pg_url):
    s = open_store(pg_url)
    yield s
    with s.engine.begin() as conn:  # each test starts from empty tables
        conn.execute(text("TRUNCATE run_steps, runs RESTART IDENTITY CASCADE"))
    s.close()


def test_migrated_to_head_and_matching_the_models(store):
    with store.engine.connect() as conn:
        assert current_revisions(conn) == head_revisions()
        assert {"runs", "run_steps"} <= set(inspect(conn).get_table_names())
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        money = {c["name"]: c["type"] for c in inspect(conn).get_columns("run_steps")}
        assert type(money["cost"]).__name__ == "NUMERIC"


def test_round_trip_on_postgres(store):
    rid = store.runs.create(
        "replay",
        "pilot-ts",
        "routellm/gsm8k.csv",
        seed=2**40,
        budget=0.5,
        budget_fraction=0.1,
        params={"delay": np.float64("nan"), "seeds": np.arange(3)},  # NaN is not JSON on PG
    )
    steps = make_steps(3000, budgeted=True)
    assert store.runs.add_steps(rid, steps) == 3000
    store.runs.finish(rid, {"mean_reward": np.float32(0.5), "inf": float("inf")})
    rec = store.runs.get(rid)
    assert rec.seed == 2**40 and rec.budget == pytest.approx(0.5)
    assert rec.params == {"delay": None, "seeds": [0, 1, 2]}
    assert rec.summary == {"mean_reward": 0.5, "inf": None}
    assert rec.n_steps == 3000 and rec.status == "done"
    back = store.runs.steps(rid)
    np.testing.assert_allclose(back["cumulative_regret"], steps["cumulative_regret"])
    np.testing.assert_allclose(back["spend"], steps["spend"], atol=1e-12, rtol=0)
    assert back["model"].tolist() == steps["model"].tolist()
    assert [r.id for r in store.runs.list(kind="replay")] == [rid]


def test_failed_add_steps_rolls_back_on_postgres(store):
    rid = store.runs.create("simulate", "linucb", "synthetic", seed=0)
    bad = make_steps(1000)
    bad.loc[900, "step"] = 1
    with pytest.raises(InvalidRunDataError):
        store.runs.add_steps(rid, bad)
    assert store.runs.get(rid).n_steps == 0
    with pytest.raises(UnknownRunError, match="bandit-router runs list"):
        store.runs.steps([rid, rid + 1])


def test_delete_cascades_on_postgres(store):
    rid = store.runs.create("simulate", "linucb", "synthetic", seed=0)
    store.runs.add_steps(rid, make_steps(10))
    store.runs.delete(rid)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run_steps")).scalar() == 0


def test_downgrade_upgrade_and_future_revision_on_postgres():
    with temporary_postgres_database(postgres_url()) as url:
        s = open_store(url)
        downgrade(s.engine, "base")
        assert "runs" not in inspect(s.engine).get_table_names()
        s.close()
        s = open_store(url)  # back to head
        with s.engine.begin() as conn:
            assert current_revisions(conn) == head_revisions()
            conn.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
        s.close()
        with pytest.raises(SchemaVersionError, match="zzzz"):
            open_store(url)


def test_concurrent_openers_of_a_fresh_postgres_database():
    """The advisory lock serialises migrations of processes that start together."""
    import threading

    with temporary_postgres_database(postgres_url()) as url:
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with open_store(url) as s:
                    s.runs.add_steps(s.runs.create("replay", "p", "t", seed=0), make_steps(20))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with open_store(url) as s:
            assert s.runs.count() == 4


def test_cli_reads_runs_from_postgres(store, pg_url, tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from bandit_router.cli.app import app

    rid = store.runs.create("replay", "linucb", "t", seed=0, budget_fraction=0.5)
    store.runs.add_steps(rid, make_steps(30, budgeted=True))
    store.runs.finish(rid, {"queries": 30, "mean_reward": 0.5})
    runner = CliRunner()
    listed = runner.invoke(app, ["runs", "list", "--json", "--db", pg_url])
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in json.loads(listed.output)] == [rid]
    csv = tmp_path / "pg.csv"
    exported = runner.invoke(
        app, ["regret", "export", str(rid), "--budgeted", "--csv", str(csv), "--db", pg_url]
    )
    assert exported.exit_code == 0, exported.output
    assert len(pd.read_csv(csv)) == 30
    shown = runner.invoke(app, ["regret", "show", str(rid), "--db", pg_url, "--width", "60"])
    assert shown.exit_code == 0 and f"#{rid} linucb" in shown.output
