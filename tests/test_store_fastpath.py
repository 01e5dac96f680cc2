"""The plain-SQL fast path of the decision log and the ledger (``storage/fast.py``) writes
and answers exactly what the ORM path does: random sequences of budgets, routes (decision +
reservation), feedback (feedback + settlement), reads, expiries and clock jumps across
periods, run on a store with the fast path and on one without it, give the same answers,
the same errors and the same rows in every table of the decision log and the ledger. The
sequences reach the fallbacks (an account to create or turn over, a reservation to
expire, a rolling budget, a retired model, a settled or expired reservation)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bandit_router.budget.clock import ManualClock
from bandit_router.budget.periods import Budget
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import BanditRouterError
from bandit_router.storage import open_router_stores
from bandit_router.stores import DecisionRecord, FeedbackRecord, ModelRecord
from tests.test_storage_support import postgres_url, temporary_postgres_database

START = 1_706_000_000.0  # late January 2024: monthly periods turn over within the runs
PERIODS = ("total", "daily", "monthly", "rolling:3600")
USERS = ("ann", "bob", "carl")  # carl gets no budget unless a step gives one
MONEY = st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0])
TABLES = {
    "decisions": "id",
    "feedback": "id",
    "ledger_accounts": '"user"',
    "ledger_reservations": "decision_id",
    "ledger_entries": "id",
}

ROUTE = st.tuples(
    st.just("route"), st.sampled_from(USERS[:2] * 3 + USERS[2:]), st.integers(0, 9), MONEY,
    st.sampled_from(["m", "m", "m", "m", "m", "old"]), st.sampled_from([True] * 5 + [False]),
)  # fmt: skip
FEEDBACK = st.tuples(
    st.just("feedback"), st.integers(0, 2), st.sampled_from([None, 0.0, 1.0, 1.0]), MONEY,
    st.sampled_from([None, None, None, "ann", "bob"]), st.sampled_from([False] * 5 + [True]),
)  # fmt: skip
steps = st.lists(
    st.one_of(
        ROUTE,
        FEEDBACK,
        ROUTE,
        FEEDBACK,
        st.tuples(st.just("budget"), st.sampled_from(USERS), MONEY, st.sampled_from(PERIODS)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 30.0, 4000.0, 86_400.0 * 9])),
        st.tuples(st.just("state"), st.sampled_from(USERS)),
        st.tuples(st.just("get"), st.integers(0, 3)),
        st.tuples(st.just("since"), st.integers(0, 3)),
        st.tuples(st.just("expire")),
    ),
    min_size=10,
    max_size=30,
)
ops = st.builds(
    lambda ttl, first, rest: (ttl, [*first, *rest]),
    st.sampled_from([None, 3600.0]),  # reservations that never expire / after an hour
    st.tuples(
        st.tuples(st.just("budget"), st.just("ann"), st.just(1.0), st.sampled_from(PERIODS)),
        st.tuples(st.just("budget"), st.just("bob"), st.just(0.5), st.sampled_from(PERIODS[:3])),
    ),
    steps,
)


def _open(url: str, clock: ManualClock, ttl: float | None, *, fast: bool):
    stores = open_router_stores(url, clock=clock, reservation_ttl=ttl)
    if not fast:
        stores.decisions.raw = stores.ledger.raw = None
    stores.models.put(ModelRecord(ModelSpec("m", 0.1, 0.4), "active"))
    stores.models.put(ModelRecord(ModelSpec("old", 0.1, 0.4), "retired"))
    return stores


def _plain(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if dataclasses.is_dataclass(x):
        return {k: _plain(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _step(stores, clock: ManualClock, op, routed: list[str]) -> object:
    """Apply ``op``; ``routed``: the decisions recorded so far (feedback picks one of the
    latest of them, or ``d<k>`` when there is none)."""
    kind = op[0]
    try:
        if kind == "budget":
            return stores.ledger.set_budget(op[1], Budget(op[2] * 2, op[3]))
        if kind == "route":
            _, user, k, cost, model, reserved = op
            d = DecisionRecord(
                f"d{k}", user, clock(), model, np.array([1.0, -0.5, k]),
                {"m": {"mean": 0.5, "width": 0.1, "value": 0.6}}, 0.5, cost,
                policy="linucb", policy_version=k, expires_at=clock() + 7200.0,
                reserved=reserved,
            )  # fmt: skip
            stores.decisions.record(d)
            routed.append(d.decision_id)
            return None
        if kind == "feedback":
            _, k, reward, cost, user, default = op
            did = routed[-1 - k % len(routed)] if routed else f"d{k}"
            f = FeedbackRecord(
                did, reward, cost, clock(), "m", np.zeros(3), user, is_default=default
            )
            out = stores.decisions.add_feedback(f)
            return _plain(out.record), out.duplicate
        if kind == "advance":
            return clock.advance(op[1])
        if kind == "state":
            return _plain(stores.ledger.state(op[1]))
        if kind == "get":
            got = stores.decisions.get(f"d{op[1]}")
            f = stores.decisions.feedback_for(f"d{op[1]}")
            return _plain(got), _plain(f)
        if kind == "since":
            return _plain(stores.decisions.feedback_since(op[1]))
        return stores.ledger.expire()
    except BanditRouterError as exc:
        return type(exc).__name__, str(exc)


def _rows(stores) -> dict[str, list]:
    out = {}
    with stores.engine.connect() as conn:
        for table, key in TABLES.items():
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}")).all()
            out[table] = [tuple(r) for r in rows]
    return out


def _compare(url_fast: str, url_orm: str, ttl: float | None, sequence: list) -> None:
    clocks = ManualClock(START), ManualClock(START)
    fast = _open(url_fast, clocks[0], ttl, fast=True)
    orm = _open(url_orm, clocks[1], ttl, fast=False)
    try:
        assert fast.decisions.raw is not None and orm.decisions.raw is None
        routed: tuple[list[str], list[str]] = ([], [])
        for op in sequence:
            assert _step(fast, clocks[0], op, routed[0]) == _step(orm, clocks[1], op, routed[1]), op
        assert _rows(fast) == _rows(orm)
    finally:
        fast.close()
        orm.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_fast_path_writes_what_the_orm_path_writes_on_sqlite(tmp_path_factory, case):
    ttl, sequence = case
    folder = tmp_path_factory.mktemp("fast")
    _compare(f"sqlite:///{folder / 'fast.db'}", f"sqlite:///{folder / 'orm.db'}", ttl, sequence)


SCENARIO = [
    ("budget", "ann", 1.0, "monthly"),
    ("budget", "bob", 0.5, "rolling:3600"),
    ("route", "ann", 0, 0.25, "m", True),
    ("route", "ann", 1, 0.5, "m", True),
    ("route", "ann", 2, 1.5, "m", True),  # exhausted
    ("route", "bob", 3, 0.1, "m", True),  # rolling: the ORM path
    ("route", "carl", 4, 0.1, "m", True),  # no budget
    ("route", "carl", 4, 0.1, "m", False),
    ("route", "ann", 5, 0.1, "old", True),  # retired
    ("feedback", 0, 1.0, 0.3, None, False),
    ("feedback", 0, 1.0, 0.3, None, False),  # duplicate
    ("feedback", 0, 0.0, 0.3, None, False),  # conflict
    ("feedback", 3, 0.0, 0.05, "bob", False),
    ("feedback", 4, None, 0.0, "ann", False),  # another user's: unknown
    ("state", "ann"),
    ("advance", 86_400.0 * 9),  # expiry of d1 (ttl 3600) and the month turns over
    ("feedback", 1, 1.0, 0.4, None, False),  # late
    ("route", "ann", 2, 0.25, "m", True),
    ("feedback", 2, 0.5, 0.2, "ann", False),
    ("state", "ann"),
    ("since", 0),
]


@pytest.mark.postgres
def test_fast_path_writes_what_the_orm_path_writes_on_postgres():
    with (
        temporary_postgres_database(postgres_url()) as a,
        temporary_postgres_database(postgres_url()) as b,
    ):
        _compare(a, b, 3600.0, SCENARIO)
        # and the same on SQLite, as a check that the scenario itself is sound
    _compare("sqlite://", "sqlite://", 3600.0, SCENARIO)
