"""ORM models of the store, one module per concept. Import them all here so that
``Base.metadata`` knows every table (Alembic's autogenerate compares against it)."""

from __future__ import annotations

from storage.models.base import Base, Money
from storage.models.run import RUN_KINDS, RUN_STATUSES, Run, RunStep

__all__ = ["RUN_KINDS", "RUN_STATUSES", "Base", "Money", "Run", "RunStep"]
