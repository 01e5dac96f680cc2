"""ORM models of the store, one module per concept. Import them all here so that
``Base.metadata`` knows every table (Alembic's autogenerate compares against it)."""

from __future__ import annotations

from bandit_router.storage.models.base import Base, Money
from bandit_router.storage.models.catalogue import MODEL_STATUSES, CatalogueModel
from bandit_router.storage.models.decisions import DecisionRow, FeedbackRow
from bandit_router.storage.models.ledger import (
    ENTRY_KINDS,
    RESERVATION_STATES,
    LedgerAccount,
    LedgerEntry,
    LedgerReservation,
)
from bandit_router.storage.models.run import RUN_KINDS, RUN_STATUSES, Run, RunStep
from bandit_router.storage.models.snapshots import PolicySnapshot
from bandit_router.storage.models.users import ApiKey, User

__all__ = [
    "ENTRY_KINDS",
    "MODEL_STATUSES",
    "RESERVATION_STATES",
    "RUN_KINDS",
    "RUN_STATUSES",
    "ApiKey",
    "Base",
    "CatalogueModel",
    "DecisionRow",
    "FeedbackRow",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerReservation",
    "Money",
    "PolicySnapshot",
    "Run",
    "RunStep",
    "User",
]
