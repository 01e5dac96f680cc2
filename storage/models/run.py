"""Tables of simulation runs: ``runs`` (one row per run) and ``run_steps`` (its curve)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Double, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bandit_router.storage.models.base import Base, Money, utcnow

#: What produced a run.
RUN_KINDS = ("replay", "simulate", "evaluate")
#: Life cycle of a run: created as "running", finished as "done" or "failed".
RUN_STATUSES = ("running", "done", "failed")


class Run(Base):
    """One run of one policy with one seed (and budget) over one dataset."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(String(32), index=True)
    policy: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(String(500))
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(128))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    budget: Mapped[float | None] = mapped_column(Money)
    budget_fraction: Mapped[float | None] = mapped_column(Double)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")
    notes: Mapped[str | None] = mapped_column(Text)

    steps: Mapped[list[RunStep]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class RunStep(Base):
    """One query of a run: what the policy got, what the oracle would have got, the regret."""

    __tablename__ = "run_steps"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward: Mapped[float] = mapped_column(Double)
    cost: Mapped[float] = mapped_column(Money)
    oracle_reward: Mapped[float] = mapped_column(Double)
    spend: Mapped[float] = mapped_column(Money)
    cumulative_regret: Mapped[float] = mapped_column(Double)
    budgeted_regret: Mapped[float | None] = mapped_column(Double)
    #: The model called; null when none was (the budget was exhausted).
    model: Mapped[str | None] = mapped_column(String(200))

    run: Mapped[Run] = relationship(back_populates="steps")
