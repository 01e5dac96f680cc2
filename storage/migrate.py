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

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from storage.config import display_url
from storage.engine import SQLITE_BEGIN_MODE
from storage.errors import SchemaVersionError, StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating ("bandit-r" in ASCII).
_PG_LOCK_KEY = 0x62616E6469742D72


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for the shipped migrations (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revisions() -> tuple[str, ...]:
    """The newest revision(s) this code ships."""
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revision(s) the database is stamped with (empty for a fresh database)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _check_known(current: tuple[str, ...], engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise SchemaVersionError(
            f"the database {display_url(engine.url)} is at schema revision "
            f"{', '.join(unknown)}, newer than this bandit-router knows (head: "
            f"{', '.join(head_revisions())}); upgrade bandit-router "
            "(pip install -U bandit-router) or point --db / BANDIT_ROUTER_DATABASE_URL at "
            "another database."
        )


def upgrade(engine: Engine, revision: str = "head") -> tuple[str, ...]:
    """Migrate the database behind ``engine`` to ``revision``; returns the revisions it ends at."""
    heads = head_revisions()
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
        _check_known(current, engine)
        if revision == "head" and set(current) == set(heads):
            return current
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                current = current_revisions(conn)  # again, under the lock
                _check_known(current, engine)
                if not (revision == "head" and set(current) == set(heads)):
                    command.upgrade(alembic_config(conn), revision)
                current = current_revisions(conn)
    except SchemaVersionError:
        raise
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


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` ("base" drops every table). For tests and repairs."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"})
        with conn.begin():
            command.downgrade(alembic_config(conn), revision)
