"""The store: one engine, its migrations applied, and a repository per concept."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from bandit_router.storage.config import display_url, resolve_database_url
from bandit_router.storage.engine import make_engine
from bandit_router.storage.errors import StorageError
from bandit_router.storage.migrate import upgrade
from bandit_router.storage.runs import RunRepository


class Store:
    """An open database: ``store.runs`` for simulation runs (later: decisions, budgets...).

    Open one per process (engines must not cross ``fork``); close it, or use it as a
    context manager, when done.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url: URL = engine.url
        self.runs = RunRepository(engine)

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()


def open_store(url: str | os.PathLike[str] | URL | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate to the newest schema) the database at ``url``.

    ``url``: an SQLAlchemy URL, a path to an SQLite file, or ``":memory:"``; None reads
    ``$BANDIT_ROUTER_DATABASE_URL`` and falls back to the SQLite file in the user's data
    directory. Raises :class:`~storage.errors.SchemaVersionError` if the database was
    migrated by a newer bandit-router, :class:`~storage.errors.StorageError` if it cannot
    be reached.
    """
    resolved = resolve_database_url(url)
    engine = make_engine(resolved)
    try:
        if migrate:
            upgrade(engine)
    except StorageError:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:  # pragma: no cover - upgrade wraps these
        engine.dispose()
        raise StorageError(f"cannot open the database {display_url(resolved)}: {exc}") from exc
    return Store(engine)
