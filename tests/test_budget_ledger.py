"""The in-memory ledger: reservations, settlement, expiry, periods, rolling windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bandit_router.budget import Budget, BudgetPeriod, InMemoryLedger, Ledger, ManualClock
from bandit_router.errors import BudgetError, BudgetExhaustedError, ConfigurationError

DAY = 86_400.0


def ledger_with(budget: Budget, start: float = 0.0, **kw) -> tuple[InMemoryLedger, ManualClock]:
    clock = ManualClock(start)
    ledger = InMemoryLedger(clock=clock, **kw)
    ledger.set_budget("u", budget)
    return ledger, clock


def test_in_memory_ledger_implements_the_protocol():
    assert isinstance(InMemoryLedger(), Ledger)


def test_reserve_then_settle_moves_the_hold_to_the_spend():
    ledger, _ = ledger_with(Budget(1.0))
    ledger.reserve("u", "d1", 0.3)
    s = ledger.state("u")
    assert (s.spent, s.reserved, s.remaining, s.n_decisions) == (0.0, 0.3, 0.7, 1)
    st = ledger.settle("d1", 0.4)
    assert st.error == pytest.approx(0.1) and not st.late
    s = ledger.state("u")
    assert s.spent == pytest.approx(0.4) and s.reserved == 0.0
    assert s.overrun == pytest.approx(0.1)
    assert ledger.lifetime_spent("u") == pytest.approx(0.4)


def test_settle_and_reserve_are_idempotent_per_decision():
    ledger, _ = ledger_with(Budget(1.0))
    r1 = ledger.reserve("u", "d1", 0.3)
    assert ledger.reserve("u", "d1", 0.3) is r1
    with pytest.raises(BudgetError, match="fresh decision id"):
        ledger.reserve("u", "d1", 0.2)
    s1 = ledger.settle("d1", 0.25)
    assert ledger.settle("d1", 0.25) is s1
    assert ledger.state("u").spent == pytest.approx(0.25)
    with pytest.raises(BudgetError, match="once per decision"):
        ledger.settle("d1", 0.3)
    with pytest.raises(BudgetError, match="already settled"):
        ledger.reserve("u", "d1", 0.3)
    with pytest.raises(BudgetError, match="unknown decision"):
        ledger.settle("nope", 0.1)


def test_reserve_refuses_more_than_is_left():
    ledger, _ = ledger_with(Budget(1.0))
    ledger.reserve("u", "d1", 0.75)
    with pytest.raises(BudgetExhaustedError, match="left"):
        ledger.reserve("u", "d2", 0.3)
    ledger.reserve("u", "d2", 0.25)  # exactly what is left
    assert ledger.state("u").remaining == 0.0


def test_release_gives_the_hold_back():
    ledger, _ = ledger_with(Budget(1.0))
    ledger.reserve("u", "d1", 0.5)
    ledger.release("d1")
    assert ledger.state("u").remaining == 1.0
    with pytest.raises(BudgetError):
        ledger.release("d1")


def test_bad_amounts_and_users_are_typed_errors():
    ledger, _ = ledger_with(Budget(1.0))
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(BudgetError):
            ledger.reserve("u", "x", bad)
    with pytest.raises(BudgetError, match="set_budget"):
        ledger.state("stranger")
    with pytest.raises(BudgetError):
        Budget(-1.0)
    with pytest.raises(BudgetError, match="rolling"):
        BudgetPeriod("rolling")
    with pytest.raises(BudgetError, match="use one of"):
        BudgetPeriod("weekly")
    with pytest.raises(BudgetError):
        Budget(1.0, expected_queries=0)
    with pytest.raises(ConfigurationError):
        InMemoryLedger(on_expiry="forget")


def test_default_budget_serves_unknown_users():
    ledger = InMemoryLedger(clock=ManualClock(0.0), default_budget=Budget(2.0))
    assert ledger.state("anyone").remaining == 2.0


@pytest.mark.parametrize("mode", ["charge", "release"])
def test_unsettled_reservations_expire(mode):
    ledger, clock = ledger_with(Budget(1.0), reservation_ttl=60.0, on_expiry=mode)
    ledger.reserve("u", "d1", 0.4)
    clock.advance(59.0)
    assert ledger.expire() == 0
    clock.advance(1.0)
    assert ledger.expire() == 1
    s = ledger.state("u")
    assert s.reserved == 0.0
    assert s.spent == pytest.approx(0.4 if mode == "charge" else 0.0)
    late = ledger.settle("d1", 0.1)  # feedback after expiry still corrects the spend
    assert late.late
    assert ledger.state("u").spent == pytest.approx(0.1)


def test_expiry_is_applied_lazily_on_state():
    ledger, clock = ledger_with(Budget(1.0), reservation_ttl=10.0)
    ledger.reserve("u", "d1", 0.4)
    clock.advance(11.0)
    s = ledger.state("u")
    assert (s.reserved, s.spent) == (0.0, pytest.approx(0.4))


def test_daily_period_resets_at_midnight_utc():
    t0 = 3 * DAY + 3600.0
    ledger, clock = ledger_with(Budget(1.0, "daily"), start=t0)
    ledger.reserve("u", "d1", 0.6)
    ledger.settle("d1", 0.6)
    s = ledger.state("u")
    assert s.remaining == pytest.approx(0.4)
    assert s.resets_at == 4 * DAY and s.period_start == 3 * DAY
    assert s.elapsed == pytest.approx(1 / 24)
    clock.set(4 * DAY)
    s = ledger.state("u")
    assert s.remaining == 1.0 and s.n_decisions == 0 and s.previous_decisions == 1
    assert s.resets_at == 5 * DAY


def test_settlement_of_last_period_does_not_touch_the_new_one():
    ledger, clock = ledger_with(Budget(1.0, "daily"), start=DAY - 10.0, reservation_ttl=3600)
    ledger.reserve("u", "old", 0.5)
    clock.advance(20.0)  # next day
    assert ledger.state("u").remaining == 1.0
    ledger.settle("old", 0.7)
    assert ledger.state("u").remaining == 1.0
    assert ledger.lifetime_spent("u") == pytest.approx(0.7)


def test_monthly_period_follows_the_calendar():
    feb = datetime(2026, 2, 14, 12, tzinfo=UTC).timestamp()
    ledger, clock = ledger_with(Budget(10.0, "monthly"), start=feb)
    ledger.reserve("u", "d1", 4.0)
    s = ledger.state("u")
    assert s.period_start == datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    assert s.resets_at == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    clock.set(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    assert ledger.state("u").remaining == 10.0
    dec = datetime(2026, 12, 31, tzinfo=UTC).timestamp()
    assert BudgetPeriod("monthly").bounds(dec)[1] == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def test_rolling_window_frees_old_spend():
    ledger, clock = ledger_with(Budget(1.0, "rolling:100"))
    ledger.reserve("u", "a", 0.5)
    ledger.settle("a", 0.5)
    clock.advance(60.0)
    ledger.reserve("u", "b", 0.4)
    ledger.settle("b", 0.4)
    s = ledger.state("u")
    assert s.remaining == pytest.approx(0.1)
    assert s.resets_at == pytest.approx(100.0) and s.n_decisions == 2
    clock.advance(40.0)  # t = 100: the first charge leaves the window
    s = ledger.state("u")
    assert s.remaining == pytest.approx(0.6) and s.n_decisions == 1
    clock.advance(60.0)
    assert ledger.state("u").remaining == pytest.approx(1.0)


def test_total_budget_never_resets():
    ledger, clock = ledger_with(Budget(1.0))
    ledger.reserve("u", "a", 1.0)
    ledger.settle("a", 1.0)
    clock.advance(400 * DAY)
    s = ledger.state("u")
    assert s.remaining == 0.0 and s.resets_at is None


def test_set_budget_keeps_the_spend():
    ledger, _ = ledger_with(Budget(1.0))
    ledger.reserve("u", "a", 0.5)
    ledger.settle("a", 0.5)
    ledger.set_budget("u", Budget(2.0))
    assert ledger.state("u").remaining == pytest.approx(1.5)


@pytest.mark.parametrize("new", ["daily", "rolling:3600", "total", "monthly"])
def test_changing_the_period_keeps_spend_and_holds(new):
    ledger, _ = ledger_with(Budget(1.0, "daily"), start=DAY + 100.0)
    ledger.reserve("u", "a", 0.3)
    ledger.settle("a", 0.3)
    ledger.reserve("u", "b", 0.2)
    ledger.set_budget("u", Budget(2.0, new))
    s = ledger.state("u")
    assert (s.spent, s.reserved) == (pytest.approx(0.3), pytest.approx(0.2))
    ledger.settle("b", 0.1)
    s = ledger.state("u")
    assert (s.spent, s.reserved) == (pytest.approx(0.4), 0.0)
