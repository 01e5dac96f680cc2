"""The ``models`` table: the router's catalogue of callable models, their prices and status."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bandit_router.storage.models.base import Base, Money, utcnow

#: A model is routed to while ``active``; a ``retired`` one is kept for its history.
MODEL_STATUSES = ("active", "retired")


class CatalogueModel(Base):
    """One model a router can call, with its list prices (USD)."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    input_price_per_mtok: Mapped[float] = mapped_column(Money)
    output_price_per_mtok: Mapped[float] = mapped_column(Money)
    price_per_call: Mapped[float] = mapped_column(Money, default=0.0)
    expected_output_tokens: Mapped[float] = mapped_column(Double, default=256.0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: the order models were first added in (``list`` keeps it, as the catalogue's order)
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
