"""Tables of the decision log: ``decisions`` (one routed query) and ``feedback`` (at most one
per decision; its autoincrement id is the ``feedback_id`` that orders the learned state).

Times of the log are Unix seconds (float64), as the core's records carry them, so that the
ledger's period arithmetic is the same in memory and in the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bandit_router.storage.models.base import Base, Money

#: An integer primary key that is a 64-bit sequence on PostgreSQL and the rowid on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class DecisionRow(Base):
    """One routed query: the context ``(d,)`` as little-endian float64 bytes, all scores."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_expires_at", "expires_at"),
        Index("ix_decisions_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[float] = mapped_column(Double)
    model: Mapped[str] = mapped_column(String(200))
    context: Mapped[bytes] = mapped_column(LargeBinary)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: probability of the chosen model under the whole decision; null: not computed
    propensity: Mapped[float | None] = mapped_column(Double)
    estimated_cost: Mapped[float] = mapped_column(Money)
    policy: Mapped[str] = mapped_column(String(200), default="")
    policy_version: Mapped[int] = mapped_column(BigInteger, default=0)
    embedder: Mapped[str] = mapped_column(String(200), default="")
    prior_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="admitted")
    expires_at: Mapped[float | None] = mapped_column(Double)
    #: False for a user without a budget: no ledger reservation was made, none is settled
    reserved: Mapped[bool] = mapped_column(Boolean, default=True)


class FeedbackRow(Base):
    """The feedback on one decision; it repeats the model and context of the decision so that
    this table alone replays the learned state."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), unique=True
    )
    user: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200))
    context: Mapped[bytes] = mapped_column(LargeBinary)
    #: null: no reward (the decision expired and no default reward is configured)
    reward: Mapped[float | None] = mapped_column(Double)
    cost: Mapped[float] = mapped_column(Money)
    created_at: Mapped[float] = mapped_column(Double, index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
