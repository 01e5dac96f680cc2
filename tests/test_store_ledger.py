"""``SqlLedger`` keeps the books exactly as ``InMemoryLedger`` does: random sequences of
budgets, reservations, settlements, releases, expiries and clock jumps (across days, months
and rolling windows) give the same answers, the same errors and the same account states."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandit_router.budget.clock import ManualClock
from bandit_router.budget.ledger import InMemoryLedger
from bandit_router.budget.periods import Budget
from bandit_router.errors import BudgetError, BudgetExhaustedError
from bandit_router.storage import open_router_stores
from bandit_router.storage.ledger import SqlLedger
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import truncate_router_tables

USERS = ("ann", "bob")
PERIODS = ("total", "daily", "monthly", "rolling:3600", "rolling:90000")
MONEY = st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 1.5])
START = 1_706_000_000.0  # late January 2024: monthly periods turn over within the runs

budgets = st.tuples(
    st.tuples(
        st.just("budget"), st.just("ann"), st.sampled_from([0.5, 1.0]), st.sampled_from(PERIODS)
    ),
    st.tuples(
        st.just("budget"), st.just("bob"), st.sampled_from([0.5, 1.0]), st.sampled_from(PERIODS)
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("budget"), st.sampled_from(USERS), MONEY, st.sampled_from(PERIODS)),
        st.tuples(st.just("reserve"), st.sampled_from(USERS), st.integers(0, 4), MONEY),
        st.tuples(st.just("settle"), st.integers(0, 4), MONEY),
        st.tuples(st.just("release"), st.integers(0, 4)),
        st.tuples(st.just("expire")),
        st.tuples(
            st.just("advance"),
            st.sampled_from([0.0, 30.0, 1000.0, 2000.0, 3600.0, 4000.0, 90_000.0, 86_400.0 * 9]),
        ),
        st.tuples(st.just("state"), st.sampled_from(USERS)),
    ),
    min_size=1,
    max_size=30,
)
#: every user gets a budget first (most operations are refused otherwise), then random steps
ops = st.builds(lambda first, rest: [*first, *rest], budgets, steps)


def _apply(ledger, op):
    kind = op[0]
    try:
        if kind == "budget":
            return ledger.set_budget(op[1], Budget(op[2] * 2, op[3]))
        if kind == "reserve":
            r = ledger.reserve(op[1], f"d{op[2]}", op[3])
            return ("reservation", r.decision_id, r.user, r.amount, r.created_at, r.period_start)
        if kind == "settle":
            s = ledger.settle(f"d{op[1]}", op[2])
            return ("settlement", s.decision_id, s.user, s.estimated, s.actual, s.late)
        if kind == "release":
            return ledger.release(f"d{op[1]}")
        if kind == "expire":
            return ("expired", ledger.expire())
        if kind == "state":
            s = ledger.state(op[1])
            return (
                "state",
                s.budget,
                s.spent,
                s.reserved,
                s.period_start,
                s.period_end,
                s.resets_at,
                s.n_decisions,
                s.previous_decisions,
                s.overrun,
                s.remaining,
            )
    except BudgetExhaustedError:
        return "exhausted"
    except BudgetError:
        return "refused"
    raise AssertionError(op)


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def _run(sql_ledger_factory, sequence, on_expiry):
    clock = ManualClock(START)
    memory = InMemoryLedger(clock=clock, reservation_ttl=1800, on_expiry=on_expiry)
    sql = sql_ledger_factory(clock, on_expiry)
    for step, op in enumerate(sequence):
        if op[0] == "advance":
            clock.advance(op[1])
            continue
        want, got = _apply(memory, op), _apply(sql, op)
        assert _same(want, got), f"step {step} {op}: in memory {want}, SQL {got}"
    for user in USERS:  # the final books agree too
        want, got = _apply(memory, ("state", user)), _apply(sql, ("state", user))
        assert _same(want, got), f"final {user}: in memory {want}, SQL {got}"
        if want not in ("refused",):
            assert math.isclose(memory.lifetime_spent(user), sql.lifetime_spent(user), abs_tol=1e-9)


_SQLITE = {}


def _sqlite_ledger(clock, on_expiry):
    """A ledger on one shared in-memory database, emptied for every sequence (migrating a
    fresh database per example would be most of the test's time)."""
    if "engine" not in _SQLITE:
        _SQLITE["engine"] = open_router_stores("sqlite://").engine
    engine = _SQLITE["engine"]
    truncate_router_tables(engine)
    return SqlLedger(engine, clock=clock, reservation_ttl=1800, on_expiry=on_expiry)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=ops, on_expiry=st.sampled_from(["charge", "release"]))
def test_sql_ledger_matches_the_in_memory_ledger_on_sqlite(sequence, on_expiry):
    _run(_sqlite_ledger, sequence, on_expiry)


def test_a_known_sequence_across_a_day_boundary_and_expiry():
    """A readable example of what the property test checks: expiry charges the estimate,
    a late settlement corrects it, and the next day starts from zero."""
    seq = [
        ("budget", "ann", 0.5, "daily"),
        ("reserve", "ann", 0, 0.3),
        ("reserve", "ann", 1, 0.5),  # 1.0 budget: 0.3 + 0.5 fits
        ("reserve", "ann", 2, 0.3),  # does not fit
        ("advance", 2000.0),
        ("state", "ann"),  # both reservations expired and were charged
        ("settle", 0, 0.1),  # late: corrects 0.3 -> 0.1
        ("state", "ann"),
        ("advance", 86_400.0),
        ("state", "ann"),
    ]
    _run(_sqlite_ledger, seq, "charge")
    clock = ManualClock(START)
    ledger = _sqlite_ledger(clock, "charge")
    results = []
    for op in seq:
        if op[0] == "advance":
            clock.advance(op[1])
        else:
            results.append(_apply(ledger, op))
    assert results[3] == "exhausted"
    assert results[4][2] == pytest.approx(0.8) and results[4][3] == 0.0  # spent, reserved
    assert results[5][-1] is True  # the settlement was late
    assert results[6][2] == pytest.approx(0.6)
    assert results[7][2] == 0.0 and results[7][8] == 2  # new day; 2 decisions the day before


@pytest.fixture(scope="module")
def pg_url():
    with temporary_postgres_database(postgres_url()) as url:
        yield url


@pytest.mark.postgres
def test_sql_ledger_matches_the_in_memory_ledger_on_postgres(pg_url):
    stores = open_router_stores(pg_url)
    engine = stores.engine

    def factory(clock, on_expiry):
        truncate_router_tables(engine)
        return SqlLedger(engine, clock=clock, reservation_ttl=1800, on_expiry=on_expiry)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(sequence=ops, on_expiry=st.sampled_from(["charge", "release"]))
    def check(sequence, on_expiry):
        _run(factory, sequence, on_expiry)

    try:
        check()
    finally:
        engine.dispose()


def test_a_refused_call_does_not_turn_a_period_over_early():
    """Found by the property test: a reservation refused because its decision was already
    settled must not look at the account (InMemoryLedger does not), or the next day's
    ``previous_decisions`` counts an empty day instead of the last one with decisions."""
    seq = [
        ("budget", "bob", 0.5, "daily"),
        ("reserve", "bob", 0, 0.1),
        ("settle", 0, 0.1),
        ("advance", 90_000.0),
        ("reserve", "bob", 0, 0.1),  # refused: d0 is settled
        ("advance", 90_000.0),
        ("state", "bob"),
    ]
    _run(_sqlite_ledger, seq, "charge")
