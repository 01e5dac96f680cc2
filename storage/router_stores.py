"""``open_router_stores``: the durable ``Stores`` bundle a ``Router`` is built with.

>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> type(stores.decisions).__name__, type(stores.ledger).__name__
('SqlDecisionLog', 'SqlLedger')
>>> stores.close()
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from bandit_router.budget.clock import Clock, system_clock
from bandit_router.budget.periods import Budget
from bandit_router.storage.decisions import SqlDecisionLog
from bandit_router.storage.ledger import SqlLedger
from bandit_router.storage.models_catalogue import SqlModelStore
from bandit_router.storage.snapshots import SqlSnapshotStore
from bandit_router.storage.store import open_store
from bandit_router.storage.users import SqlUserDirectory
from bandit_router.stores import Stores

#: as ``bandit_router.stores_memory``: by default a reservation never expires inside the
#: ledger on its own; the decision's wait time (``Router.expire``) settles it instead
NEVER = 1e18


@dataclass
class SqlStores(Stores):
    """``Stores`` on one database engine; ``close()`` releases its connections."""

    engine: Engine | None = None

    def close(self) -> None:
        raw = getattr(self.ledger, "raw", None)
        if raw is not None:
            raw.close()
        if self.engine is not None:
            self.engine.dispose()

    def __enter__(self) -> SqlStores:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def router_stores(
    engine: Engine,
    *,
    clock: Clock = system_clock,
    reservation_ttl: float | None = None,
    on_expiry: str = "charge",
    default_budget: Budget | None = None,
) -> SqlStores:
    """The SQL stores on an engine whose database is already migrated."""
    ledger = SqlLedger(
        engine,
        clock=clock,
        reservation_ttl=NEVER if reservation_ttl is None else reservation_ttl,
        on_expiry=on_expiry,
        default_budget=default_budget,
    )
    return SqlStores(
        decisions=SqlDecisionLog(engine, ledger),
        ledger=ledger,
        snapshots=SqlSnapshotStore(engine, clock=clock),
        users=SqlUserDirectory(engine, ledger),
        models=SqlModelStore(engine),
        engine=engine,
    )


def open_router_stores(
    url: str | os.PathLike[str] | URL | None = None,
    *,
    clock: Clock = system_clock,
    reservation_ttl: float | None = None,
    on_expiry: str = "charge",
    default_budget: Budget | None = None,
    migrate: bool = True,
) -> SqlStores:
    """Open the database at ``url`` (as ``open_store``: argument, then
    ``$BANDIT_ROUTER_DATABASE_URL``, then the SQLite file in the user data directory),
    migrate it to the newest schema, and return the durable ``Stores``.

    ``clock``, ``reservation_ttl``, ``on_expiry`` and ``default_budget`` configure the
    ledger as they do ``InMemoryLedger``; ``reservation_ttl=None`` (the default, as in
    ``memory_stores``) lets the decision's wait time rule instead of a ledger expiry. One per
    process; ``close()`` when done.
    """
    store = open_store(url, migrate=migrate)
    return router_stores(
        store.engine,
        clock=clock,
        reservation_ttl=reservation_ttl,
        on_expiry=on_expiry,
        default_budget=default_budget,
    )
