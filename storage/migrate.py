"""Alembic migrations, applied programmatically when a store is opened.

:func:`upgrade` brings any database to the newest revision shipped in
``storage/migrations/versions``: a fresh database gets every table, an older one the
missing revisions, one at the head is left alone (a read of ``alembic_version`` only). A
database stamped with a revision this code does not know (written by a newer bandit-router)
raises :class:`~storage.errors.SchemaVersionError` instead of being touched.

Concurrent openers are serialised: on SQLite the upgrade runs inside ``BEGIN IMMEDIATE``
(SQLite has transactional DDL, so the whole upgrade commits or nothing does), on PostgreSQL
under a transaction-scoped advisory lock. The second process then finds the head and
does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bandit_router.storage.config import display_url
from bandit_router.storage.engine import SQLITE_BEGIN_MODE
from bandit_router.storage.errors import SchemaVersionError, StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating ("bandit-r" in ASCII).
_PG_LOCK_KEY = 0x62616E6469742D72


def alembic_config(
    connection: Connection | None = None, migrations_dir: Path | str = MIGRATIONS_DIR
) -> Config:
    """An Alembic ``Config`` for the shipped migrations (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revisions(migrations_dir: Path | str = MIGRATIONS_DIR) -> tuple[str, ...]:
    """The newest revision(s) this code ships."""
    return tuple(ScriptDirectory.from_config(alembic_config(None, migrations_dir)).get_heads())


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revision(s) the database is stamped with (empty for a fresh database)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _check_known(current: tuple[str, ...], engine: Engine, migrations_dir: Path | str) -> None:
    script = ScriptDirectory.from_config(alembic_config(None, migrations_dir))
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise SchemaVersionError(
            f"the database {display_url(engine.url)} is at schema revision "
            f"{', '.join(unknown)}, newer than this bandit-router knows (head: "
            f"{', '.join(head_revisions(migrations_dir))}); upgrade bandit-router "
            "(pip install -U bandit-router) or point --db / BANDIT_ROUTER_DATABASE_URL at "
            "another database."
        )


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One connection and one transaction, holding the migration lock.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front. Foreign keys are switched off
    for the migration (batch mode rebuilds a table by dropping it, which would cascade to
    the child rows otherwise; the pragma is a no-op inside a transaction, hence before
    BEGIN) and checked with ``PRAGMA foreign_key_check`` before commit.
    PostgreSQL: a transaction-scoped advisory lock.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"})
            raw = conn.connection.dbapi_connection
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StorageError(
                            f"the migration of {display_url(engine.url)} would leave "
                            f"{len(broken)} row(s) pointing at missing parents (first: "
                            f"{tuple(broken[0])}); nothing was changed."
                        )
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(
    engine: Engine, revision: str = "head", *, migrations_dir: Path | str = MIGRATIONS_DIR
) -> tuple[str, ...]:
    """Migrate the database behind ``engine`` to ``revision``; returns the revisions it ends at."""
    heads = head_revisions(migrations_dir)
    try:
        with engine.connect() as conn:
            current = current_revisions(conn)
            conn.rollback()
    except SQLAlchemyError as exc:
        raise StorageError(
            f"cannot open the database {display_url(engine.url)}: {_first_line(exc)}; check "
            "--db / BANDIT_ROUTER_DATABASE_URL and that the server is running."
        ) from exc
    try:
        _check_known(current, engine, migrations_dir)
        if revision == "head" and set(current) == set(heads):
            return current
        with _migration_transaction(engine) as conn:
            current = current_revisions(conn)  # again, under the lock
            _check_known(current, engine, migrations_dir)
            if not (revision == "head" and set(current) == set(heads)):
                command.upgrade(alembic_config(conn, migrations_dir), revision)
            current = current_revisions(conn)
    except SQLAlchemyError as exc:
        raise StorageError(
            f"cannot migrate the database {display_url(engine.url)} to schema {revision}: "
            f"{_first_line(exc)}"
        ) from exc
    return current


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"


def downgrade(
    engine: Engine, revision: str, *, migrations_dir: Path | str = MIGRATIONS_DIR
) -> None:
    """Migrate down to ``revision`` ("base" drops every table). For tests and repairs."""
    with _migration_transaction(engine) as conn:
        command.downgrade(alembic_config(conn, migrations_dir), revision)
