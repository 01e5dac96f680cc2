"""SQLAlchemy engines for the store.

SQLite gets WAL journaling, foreign keys, a busy timeout and real transactions (the
``sqlite3`` driver's legacy mode would autocommit DDL and skip BEGIN before SELECT; the
recipe from SQLAlchemy's SQLite documentation turns that off, so migrations and bulk writes
are atomic). An in-memory SQLite database uses one shared connection, so every session of a
store sees the same data.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from bandit_router.storage.config import display_url, is_memory_sqlite, is_sqlite
from bandit_router.storage.errors import DatabaseURLError, StorageError

#: Execution option read by the SQLite ``begin`` hook: "" (deferred), "IMMEDIATE" or "EXCLUSIVE".
SQLITE_BEGIN_MODE = "bandit_router_sqlite_begin"
SQLITE_BUSY_TIMEOUT_S = 60.0


def make_engine(url: URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``, with the SQLite settings above when it is SQLite."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        if is_memory_sqlite(url):
            connect_args["check_same_thread"] = False
            kwargs["poolclass"] = StaticPool
        else:
            folder = Path(url.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the folder {folder} for the database {display_url(url)}: "
                    f"{exc.strerror or exc}; give another --db or set BANDIT_ROUTER_DATABASE_URL."
                ) from None
        kwargs["connect_args"] = connect_args
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ImportError, ModuleNotFoundError) as exc:
        raise DatabaseURLError(
            f"the driver for {display_url(url)} is not installed ({exc}); for PostgreSQL "
            "install the extra: pip install 'bandit-router[postgres]'."
        ) from None
    except Exception as exc:  # ArgumentError, unknown dialect
        raise DatabaseURLError(f"cannot use the database URL {display_url(url)}: {exc}") from None
    if is_sqlite(url):
        _configure_sqlite(engine, memory=is_memory_sqlite(url))
    return engine


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (BEGIN is emitted by the hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if not memory:
                _set_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_MODE, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _set_wal(cursor: Any) -> None:
    """Switch a file database to WAL, waiting out other openers.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is
    locked" at once instead of calling its busy handler when another process is opening or
    migrating the same fresh file; retry until the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
