"""Tables of tenants: ``users`` (a budget each) and ``api_keys`` (salted hashes only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from bandit_router.storage.models.base import Base, Money, utcnow


class User(Base):
    """A user (tenant) and their budget; ``budget_usd`` null means never limited."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    budget_usd: Mapped[float | None] = mapped_column(Money)
    #: ``total``, ``daily``, ``monthly`` or ``rolling`` (null without a budget)
    period_kind: Mapped[str | None] = mapped_column(String(16))
    #: the window of a rolling budget, seconds
    window_seconds: Mapped[float | None] = mapped_column(Double)
    expected_queries: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key of a user: its public prefix (for lookup), a per-key salt and the scrypt
    hash of its secret. The plaintext is shown once, when the key is issued."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary)
    #: how ``key_hash`` was derived, e.g. ``scrypt:n=16384,r=8,p=1``
    kdf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
