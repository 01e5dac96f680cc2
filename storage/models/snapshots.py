"""The ``policy_snapshots`` table: versioned, checksummed policy state blobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Double, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from bandit_router.storage.models.base import Base
from bandit_router.storage.models.decisions import BigId


class PolicySnapshot(Base):
    """A policy state blob, its SHA-256 and the id of the last feedback folded into it."""

    __tablename__ = "policy_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    last_feedback_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Double)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
