"""Budgets and their periods: an amount in USD over total, daily, monthly or rolling time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from bandit_router.errors import BudgetError

PERIOD_KINDS = ("total", "daily", "monthly", "rolling")


@dataclass(frozen=True)
class BudgetPeriod:
    """How a budget renews. Calendar periods (``daily``, ``monthly``) are in UTC;
    ``rolling`` counts what was spent in the last ``window_seconds``.

    >>> p = BudgetPeriod("daily")
    >>> p.bounds(86_400 * 3 + 5)
    (259200.0, 345600.0)
    >>> BudgetPeriod.parse("rolling:3600").window_seconds
    3600.0
    """

    kind: str = "total"
    window_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in PERIOD_KINDS:
            raise BudgetError(
                f"unknown budget period {self.kind!r}; use one of {', '.join(PERIOD_KINDS)}."
            )
        if self.kind == "rolling":
            w = self.window_seconds
            if w is None or not (w > 0 and math.isfinite(w)):
                raise BudgetError(
                    "a rolling budget needs window_seconds > 0, e.g. BudgetPeriod('rolling', 3600)."
                )
            object.__setattr__(self, "window_seconds", float(w))
        elif self.window_seconds is not None:
            raise BudgetError(f"window_seconds applies to rolling budgets only, not {self.kind!r}.")

    @classmethod
    def parse(cls, text: str | BudgetPeriod) -> BudgetPeriod:
        """``total``, ``daily``, ``monthly`` or ``rolling:<seconds>``."""
        if isinstance(text, BudgetPeriod):
            return text
        kind, _, arg = str(text).partition(":")
        if kind == "rolling":
            try:
                return cls("rolling", float(arg))
            except ValueError:
                raise BudgetError(
                    f"write a rolling period as rolling:<seconds>, got {text!r}."
                ) from None
        return cls(kind)

    def bounds(self, now: float) -> tuple[float, float | None]:
        """(start, end) of the period containing ``now``; ``end`` is None for ``total``.

        For ``rolling`` the window is ``(now - window, now]`` and ``end`` is ``now``.
        """
        if self.kind == "total":
            return (-math.inf, None)
        if self.kind == "rolling":
            return (now - self.window_seconds, now)
        if self.kind == "daily":
            start = math.floor(now / 86_400.0) * 86_400.0
            return (start, start + 86_400.0)
        d = datetime.fromtimestamp(now, tz=UTC)
        start = datetime(d.year, d.month, 1, tzinfo=UTC)
        end = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
        return (start.timestamp(), end.timestamp())

    def __str__(self) -> str:
        return f"rolling:{self.window_seconds:g}" if self.kind == "rolling" else self.kind


@dataclass(frozen=True)
class Budget:
    """``amount_usd`` per ``period``, optionally with the number of queries expected in it
    (a known horizon lets the allocator pace in bins, as PILOT does).

    >>> Budget(5.0, "daily", expected_queries=1000)
    Budget(amount_usd=5.0, period=BudgetPeriod(kind='daily', window_seconds=None), expected_queries=1000)
    """

    amount_usd: float
    period: BudgetPeriod | str = "total"
    expected_queries: int | None = None

    def __post_init__(self) -> None:
        a = float(self.amount_usd)
        if not (a >= 0 and math.isfinite(a)):
            raise BudgetError(f"a budget is a finite amount of USD >= 0, got {self.amount_usd}.")
        object.__setattr__(self, "amount_usd", a)
        object.__setattr__(self, "period", BudgetPeriod.parse(self.period))
        q = self.expected_queries
        if q is not None:
            if int(q) != q or int(q) < 1:
                raise BudgetError(f"expected_queries must be a positive integer, got {q}.")
            object.__setattr__(self, "expected_queries", int(q))
