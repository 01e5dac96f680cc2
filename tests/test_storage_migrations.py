"""Alembic migrations: applied on open, from empty and from older databases, never backwards."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bandit_router.storage import SchemaVersionError, open_store
from bandit_router.storage.config import resolve_database_url
from bandit_router.storage.engine import make_engine
from bandit_router.storage.migrate import (
    MIGRATIONS_DIR,
    current_revisions,
    downgrade,
    head_revisions,
    upgrade,
)
from bandit_router.storage.models import Base
from tests.test_storage_support import make_steps


def test_the_package_ships_its_migrations():
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "alembic.ini").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    assert len(head_revisions()) == 1, "the migration history must have a single head"


def test_fresh_database_is_migrated_to_head_on_open(tmp_path):
    path = tmp_path / "fresh.db"
    with open_store(path) as s:
        tables = set(inspect(s.engine).get_table_names())
        assert {"runs", "run_steps", "alembic_version"} <= tables
        with s.engine.connect() as conn:
            assert current_revisions(conn) == head_revisions()
        pk = inspect(s.engine).get_pk_constraint("run_steps")
        assert pk["constrained_columns"] == ["run_id", "step"]  # the (run_id, step) index


def test_migrations_match_the_models(tmp_path):
    """Autogenerate finds nothing to do: the shipped revisions build exactly the ORM schema."""
    with open_store(tmp_path / "cmp.db") as s, s.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_at_head_changes_nothing(tmp_path):
    path = tmp_path / "again.db"
    with open_store(path) as s:
        rid = s.runs.create("replay", "linucb", "t", seed=1)
        s.runs.add_steps(rid, make_steps(5))
    with open_store(path) as s:
        assert s.runs.get(rid).n_steps == 5


def test_an_old_database_is_brought_to_head(tmp_path):
    """A database left at an older revision (here: before the first) ends at head on open."""
    url = resolve_database_url(tmp_path / "old.db")
    engine = make_engine(url)
    upgrade(engine)
    downgrade(engine, "base")
    with engine.connect() as conn:
        assert current_revisions(conn) == ()
        assert "runs" not in inspect(conn).get_table_names()
    engine.dispose()
    with open_store(url) as s:
        assert s.runs.count() == 0
        with s.engine.connect() as conn:
            assert current_revisions(conn) == head_revisions()


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "future.db"
    with open_store(path) as s, s.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaVersionError, match=r"9999_from_the_future.*upgrade bandit-router"):
        open_store(path)


def test_concurrent_openers_of_a_fresh_file_both_succeed(tmp_path):
    """Many simulator processes may open the same new file at once; the lock serialises them."""
    path = tmp_path / "race.db"
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with open_store(path) as s:
                rid = s.runs.create("simulate", "p", "t", seed=0)
                s.runs.add_steps(rid, make_steps(50))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_store(path) as s:
        assert s.runs.count() == 4


def test_migrate_false_leaves_the_database_alone(tmp_path):
    with open_store(tmp_path / "raw.db", migrate=False) as s:
        assert inspect(s.engine).get_table_names() == []


_NEXT_REVISION = '''"""a later revision that rebuilds runs (SQLite batch mode)"""

import sqlalchemy as sa
from alembic import op

revision = "0002_test"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("runs", recreate="always") as batch:
        batch.add_column(sa.Column("extra", sa.String(20), nullable=True))


def downgrade():
    with op.batch_alter_table("runs", recreate="always") as batch:
        batch.drop_column("extra")
'''


@pytest.fixture
def newer_migrations(tmp_path):
    """A copy of the shipped migrations plus one later revision, as a future release has."""
    import shutil

    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "versions" / "0002_test.py").write_text(_NEXT_REVISION)
    return target


def test_a_later_revision_keeps_the_data_of_an_old_database(tmp_path, newer_migrations):
    """Upgrading a database with runs and steps through a table rebuild loses nothing
    (foreign keys are off during the rebuild, so the steps are not cascaded away)."""
    path = tmp_path / "data.db"
    with open_store(path) as s:
        rid = s.runs.create("replay", "pilot", "t", seed=0, budget=2.5)
        s.runs.add_steps(rid, make_steps(40))
        engine = s.engine
        assert upgrade(engine, migrations_dir=newer_migrations) == ("0002_test",)
        columns = {c["name"] for c in inspect(engine).get_columns("runs")}
        assert "extra" in columns
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM run_steps").scalar() == 40
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # The released code (head 0002) now meets a database from its future.
    with pytest.raises(SchemaVersionError, match="0002_test"):
        open_store(path)
    # And the newer code can go back down without losing the steps either.
    engine = make_engine(resolve_database_url(path))
    downgrade(engine, "0002", migrations_dir=newer_migrations)
    engine.dispose()
    with open_store(path) as s:
        assert s.runs.get(rid).n_steps == 40 and s.runs.get(rid).budget == 2.5
