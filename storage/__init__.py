"""Storage of bandit-router: SQLAlchemy 2 models and repositories, Alembic migrations.

``open_store(url=None)`` opens the database (explicit URL > ``$BANDIT_ROUTER_DATABASE_URL``
> an SQLite file in the user's data directory), migrates it to the newest schema and
returns a :class:`Store` whose ``runs`` repository stores simulation runs and their
per-step curves.

``open_router_stores(url=None)`` opens the same database as the durable
``bandit_router.stores.Stores`` of a ``Router``: the decision log and feedback
(``SqlDecisionLog``), the budget ledger (``SqlLedger``), policy snapshots
(``SqlSnapshotStore``), users and API keys (``SqlUserDirectory``) and the model catalogue
(``SqlModelStore``).
"""

from __future__ import annotations

from bandit_router.storage.config import ENV_VAR, default_database_path, resolve_database_url
from bandit_router.storage.errors import (
    DatabaseURLError,
    InvalidRunDataError,
    SchemaVersionError,
    StorageError,
    UnknownRunError,
)
from bandit_router.storage.router_stores import SqlStores, open_router_stores, router_stores
from bandit_router.storage.runs import RunRecord, RunRepository
from bandit_router.storage.store import Store, open_store

__all__ = [
    "ENV_VAR",
    "DatabaseURLError",
    "InvalidRunDataError",
    "RunRecord",
    "RunRepository",
    "SchemaVersionError",
    "SqlStores",
    "StorageError",
    "Store",
    "UnknownRunError",
    "default_database_path",
    "open_router_stores",
    "open_store",
    "resolve_database_url",
    "router_stores",
]
