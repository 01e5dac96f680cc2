"""Tables of the budget ledger.

``ledger_accounts``: one row per user, the running totals of the current period (the row
every reservation of that user locks, so a reservation is checked against totals nobody
else is changing). ``ledger_reservations``: the hold of each decision and its fate.
``ledger_entries``: the append-only journal of charges (a rolling budget sums the entries
inside its window). Times are Unix seconds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bandit_router.storage.models.base import Base, Money
from bandit_router.storage.models.decisions import BigId

#: What happened to a reservation.
RESERVATION_STATES = ("open", "settled", "expired", "released")
#: Kinds of journal entries: a hold, a charge (settlement, expiry, late correction), a release.
ENTRY_KINDS = ("reserve", "settle", "expire", "correct", "release", "carry")


class LedgerAccount(Base):
    """A user's account in the current period (the fields of the in-memory ``_Account``)."""

    __tablename__ = "ledger_accounts"

    user: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: the budget the ledger applies (a copy of the user's, or the ledger's default budget)
    budget_usd: Mapped[float] = mapped_column(Money)
    period_kind: Mapped[str] = mapped_column(String(16))
    window_seconds: Mapped[float | None] = mapped_column(Double)
    expected_queries: Mapped[int | None] = mapped_column(Integer)
    #: period the totals belong to; -inf (stored as null) for total and rolling budgets
    period_start: Mapped[float | None] = mapped_column(Double)
    period_end: Mapped[float | None] = mapped_column(Double)
    spent: Mapped[float] = mapped_column(Money, default=0.0)
    reserved: Mapped[float] = mapped_column(Money, default=0.0)
    overrun: Mapped[float] = mapped_column(Money, default=0.0)
    n_decisions: Mapped[int] = mapped_column(BigInteger, default=0)
    previous_decisions: Mapped[int | None] = mapped_column(BigInteger)
    lifetime_spent: Mapped[float] = mapped_column(Money, default=0.0)
    #: rolling budgets count only journal entries with a larger id (set when the budget
    #: switches to a rolling window: what was spent before is carried in one entry)
    since_entry: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerReservation(Base):
    """The estimated cost held for one decision, and what became of it."""

    __tablename__ = "ledger_reservations"
    __table_args__ = (Index("ix_ledger_reservations_state_created", "state", "created_at"),)

    decision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(200), index=True)
    amount: Mapped[float] = mapped_column(Money)
    created_at: Mapped[float] = mapped_column(Double)
    period_start: Mapped[float | None] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(16), default="open")
    #: the settled cost and whether it came after expiry
    actual: Mapped[float | None] = mapped_column(Money)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[float | None] = mapped_column(Double)


class LedgerEntry(Base):
    """One journal line: ``amount`` USD of ``kind`` for a decision at ``created_at``."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_user_created", "user", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    decision_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Money)
    period_start: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)
    #: whether the entry counts toward a rolling window's spend (charges and carries)
    charge: Mapped[bool] = mapped_column(Boolean, default=False)
