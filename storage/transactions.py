"""Write transactions of the router's store, and the helpers the repositories share.

Every write of the decision log, the ledger, the users and the catalogue is one
transaction opened by :func:`write_session`: on SQLite it starts with ``BEGIN IMMEDIATE``
(the database's write lock is taken at once, so a read-check-write sequence inside it sees
no concurrent writer); on PostgreSQL the repositories lock the rows they check with
``SELECT ... FOR UPDATE`` (ledger accounts, in user-name order, so two transactions never
wait on each other in a cycle) and serialise feedback ids with an advisory lock.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bandit_router.errors import BanditRouterError, InvalidInputError
from bandit_router.storage.config import display_url
from bandit_router.storage.engine import SQLITE_BEGIN_MODE
from bandit_router.storage.errors import StorageError

#: Advisory lock key held while a feedback row is inserted ("bandit-f" in ASCII): feedback
#: ids then increase in commit order, so ``feedback_since(last)`` never skips a row that
#: commits late.
PG_FEEDBACK_LOCK = 0x62616E6469742D66

#: Advisory lock key held while a model or a user row is created or replaced ("bandit-d"):
#: processes starting together each add the configured catalogue and users, and without it
#: two of them insert the same name at once (a unique violation on PostgreSQL).
PG_DIRECTORY_LOCK = 0x62616E6469742D64

#: One lock per SQLite engine: the threads of one process queue for the write lock here
#: instead of in SQLite's busy handler, which sleeps up to 100 ms between retries.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    with _REGISTRY_LOCK:
        lock = _SQLITE_WRITERS.get(engine)
        if lock is None:
            lock = _SQLITE_WRITERS[engine] = threading.Lock()
        return lock


class Sessions:
    """Read and write sessions on one engine (``write`` takes the SQLite write lock)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"}), expire_on_commit=False
        )
        self._writer = None if self.postgres else _writer_lock(engine)

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any error."""
        if self._writer is None:
            with self._write_transaction() as session:
                yield session
        else:
            with self._writer, self._write_transaction() as session:
                yield session

    @contextmanager
    def _write_transaction(self) -> Iterator[Session]:
        with self._write() as session:
            try:
                with session.begin():
                    yield session
            except BanditRouterError:
                raise
            except SQLAlchemyError as exc:
                raise _storage_error(self.engine, exc) from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            try:
                with session.begin():
                    yield session
            except BanditRouterError:
                raise
            except SQLAlchemyError as exc:
                raise _storage_error(self.engine, exc) from exc


def _storage_error(engine: Engine, exc: SQLAlchemyError) -> StorageError:
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    hint = (
        " The database is busy or unreachable; retry, and check --db / BANDIT_ROUTER_DATABASE_URL."
        if isinstance(exc, OperationalError)
        else ""
    )
    return StorageError(
        f"the database {display_url(engine.url)} refused a write: "
        f"{type(orig).__name__}: {first}.{hint}"
    )


def context_bytes(context: Any, what: str = "the context") -> bytes:
    """A context vector ``(d,)`` as little-endian float64 bytes; refuses NaN and infinity.

    >>> np.frombuffer(context_bytes([1.0, 2.0]), "<f8").tolist()
    [1.0, 2.0]
    """
    x = np.asarray(context, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InvalidInputError(f"{what} must be a non-empty vector (d,), got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInputError(
            f"{what} has NaN or infinite values; check the embedder's output for this prompt."
        )
    return x.astype("<f8").tobytes()


def context_array(blob: bytes) -> np.ndarray:
    """The float64 ``(d,)`` array stored by :func:`context_bytes` (a writable copy)."""
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


def finite(value: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float within [low, high], else an ``InvalidInputError``."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(f) or (low is not None and f < low) or (high is not None and f > high):
        bounds = (
            f" in [{low}, {high}]"
            if high is not None
            else (f" >= {low}" if low is not None else "")
        )
        raise InvalidInputError(f"{what} must be a finite number{bounds}, got {value!r}.")
    return f


def name(value: Any, what: str) -> str:
    """A non-empty name of at most 200 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty name, got {value!r}.")
    if len(value) > 200:
        raise InvalidInputError(f"{what} is longer than 200 characters: {value[:40]!r}...")
    return value


def none_if_inf(t: float) -> float | None:
    return None if t is None or math.isinf(t) else float(t)


def inf_if_none(t: float | None) -> float:
    return -math.inf if t is None else float(t)
