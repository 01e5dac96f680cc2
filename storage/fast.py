"""The hot path of the router's store in plain DBAPI calls (no ORM, no SQLAlchemy
statement compilation).

A route writes one decision and its reservation, a feedback one feedback row and its
settlement: through the ORM that was about ten statements and two milliseconds of Python
per call. ``RawSql`` runs the same statements as SQL text on a pooled DBAPI connection of
the same engine (so the engine's SQLite pragmas, WAL and PostgreSQL pre-ping apply), with
the same transactions: ``write()`` takes the process's SQLite writer lock and ``BEGIN
IMMEDIATE``; on PostgreSQL the repositories lock rows with ``FOR UPDATE`` as the ORM path
does. The repositories use it only for the common case (an account inside its current
calendar period, nothing to expire); anything else raises ``Fallback`` inside the
transaction, which rolls back, and the repository runs its general ORM path instead.

SQL is written once with ``:name`` parameters (SQLite's style) and translated to
``%(name)s`` for psycopg; DBAPI errors become ``StorageError`` as in the ORM path.

>>> from bandit_router.storage import open_store
>>> raw = RawSql(open_store("sqlite://").engine)
>>> with raw.write() as cur:
...     _ = cur.execute(raw.sql("SELECT :a + 1"), {"a": 41})
...     cur.fetchone()[0]
42
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bandit_router.errors import BanditRouterError
from bandit_router.storage.config import display_url
from bandit_router.storage.errors import StorageError


class Fallback(Exception):
    """Raised inside a fast-path transaction when the general path must do the work."""


#: DBAPI connections a SQLite store keeps for its fast path (the pool has 5 + 10 overflow)
_KEEP = 3

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class RawSql:
    """DBAPI transactions on ``engine``'s pool (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        from bandit_router.storage.transactions import _writer_lock

        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._writer = None if self.postgres else _writer_lock(engine)
        self._dbapi_error: type[BaseException] = engine.dialect.loaded_dbapi.Error
        self._operational = engine.dialect.loaded_dbapi.OperationalError
        #: the driver's IntegrityError (a duplicate key)
        self.integrity_error: type[BaseException] = engine.dialect.loaded_dbapi.IntegrityError
        self._cache: dict[str, str] = {}
        # SQLite file: up to ``_KEEP`` DBAPI connections stay checked out of the pool and are
        # reused (a pool checkout and check-in cost about as much as a short statement);
        # PostgreSQL keeps the pool's pre-ping on every checkout
        self._idle: list[Any] | None = None
        if not self.postgres and engine.url.database not in (None, "", ":memory:"):
            self._idle = []
        self._idle_lock = threading.Lock()

    def sql(self, text: str) -> str:
        """``text`` in the driver's parameter style (cached)."""
        out = self._cache.get(text)
        if out is None:
            out = _PARAM.sub(r"%(\1)s", text.replace("%", "%%")) if self.postgres else text
            self._cache[text] = out
        return out

    def _connect(self) -> Any:
        if self._idle:
            with self._idle_lock:
                if self._idle:
                    return self._idle.pop()
        try:
            return self.engine.raw_connection()
        except (SQLAlchemyError, self._dbapi_error) as exc:  # the pool raises the driver's
            raise self._error(exc, "reach") from exc

    def _error(self, exc: BaseException, what: str) -> StorageError:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [""])[0]
        hint = (
            " The database is busy or unreachable; retry, and check --db / "
            "BANDIT_ROUTER_DATABASE_URL."
            if isinstance(orig, self._operational) or "Operational" in type(exc).__name__
            else ""
        )
        return StorageError(
            f"the database {display_url(self.engine.url)} refused to {what}: "
            f"{type(orig).__name__}: {first}.{hint}"
        )

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A cursor in one write transaction: committed on success, rolled back on any
        error (``Fallback`` included, which is re-raised for the caller)."""
        if self._writer is None:
            yield from self._transaction("write", "BEGIN")
        else:
            with self._writer:
                yield from self._transaction("write", "BEGIN IMMEDIATE")

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A cursor in one read transaction (a consistent view of several statements)."""
        yield from self._transaction("read", "BEGIN")

    def _transaction(self, what: str, begin: str) -> Iterator[Any]:
        conn = self._connect()
        ok = broken = False
        try:
            cur = conn.cursor()
            try:
                if not self.postgres:  # psycopg opens the transaction itself
                    cur.execute(begin)
                yield cur
                conn.commit()
                ok = True
            finally:
                if not ok:
                    try:
                        conn.rollback()
                    except self._dbapi_error:  # a broken connection: the pool drops it
                        broken = True
                        conn.invalidate()
                if not broken:
                    cur.close()
        except (BanditRouterError, Fallback):
            raise
        except self._dbapi_error as exc:
            if isinstance(exc, self._operational) and not broken:
                broken = True
                conn.invalidate()
            raise self._error(exc, what) from exc
        finally:
            self._release(conn, broken)

    def _release(self, conn: Any, broken: bool) -> None:
        if self._idle is not None and not broken:
            with self._idle_lock:
                if len(self._idle) < _KEEP:
                    self._idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        """Return the kept connections to the pool (before the engine is disposed)."""
        if self._idle is not None:
            with self._idle_lock:
                idle, self._idle[:] = list(self._idle), []
            for conn in idle:
                conn.close()


__all__ = ["Fallback", "RawSql"]
