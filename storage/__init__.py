"""Storage of bandit-router: SQLAlchemy 2 models and repositories, Alembic migrations.

``open_store(url=None)`` opens the database (explicit URL > ``$BANDIT_ROUTER_DATABASE_URL``
> an SQLite file in the user's data directory), migrates it to the newest schema and
returns a :class:`Store` whose ``runs`` repository stores simulation runs and their
per-step curves.
"""

from __future__ import annotations

from storage.config import ENV_VAR, default_database_path, resolve_database_url
from storage.errors import (
    DatabaseURLError,
    InvalidRunDataError,
    SchemaVersionError,
    StorageError,
    UnknownRunError,
)
from storage.runs import RunRecord, RunRepository
from storage.store import Store, open_store

__all__ = [
    "ENV_VAR",
    "DatabaseURLError",
    "InvalidRunDataError",
    "RunRecord",
    "RunRepository",
    "SchemaVersionError",
    "StorageError",
    "Store",
    "UnknownRunError",
    "default_database_path",
    "open_store",
    "resolve_database_url",
]
