"""The storage Protocols' contract, run against the in-memory stores and the SQL stores on a
SQLite file and on a real PostgreSQL server: the Router must not be able to tell them apart."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.budget.clock import ManualClock
from bandit_router.budget.periods import Budget
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import (
    BudgetError,
    BudgetExhaustedError,
    FeedbackConflictError,
    StateError,
    UnknownDecisionError,
)
from bandit_router.stores import (
    DecisionLog,
    ModelRecord,
    ModelStore,
    SnapshotStore,
    UserDirectory,
    UserRecord,
)
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import close, decision, feedback_of, make_stores


@pytest.fixture(scope="module")
def pg_url():
    with temporary_postgres_database(postgres_url()) as url:
        yield url


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory):
    """One SQLite file for the module (migrated once); every test empties its tables."""
    return str(tmp_path_factory.mktemp("contract") / "router.db")


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request):
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("pg_url")
    if request.param == "sqlite":
        return "sqlite", request.getfixturevalue("sqlite_file")
    return "memory", None


@pytest.fixture
def clock():
    return ManualClock(1_000_000.0)


@pytest.fixture
def stores(backend, clock):
    kind, where = backend
    s = make_stores(kind, where, clock)
    s.users.put(UserRecord("alice", Budget(1.0)))
    yield s
    close(s)


def test_implements_the_protocols(stores):
    assert isinstance(stores.decisions, DecisionLog)
    assert isinstance(stores.snapshots, SnapshotStore)
    assert isinstance(stores.users, UserDirectory)
    assert isinstance(stores.models, ModelStore)


def test_record_and_get_round_trip(stores):
    d = decision(1, cost=0.25, t=5.5, expires_at=99.0)
    stores.decisions.record(d)
    back = stores.decisions.get(d.decision_id)
    assert back is not None and stores.decisions.get("nope") is None
    np.testing.assert_array_equal(back.context, d.context)  # float64 bits, not rounded
    assert back.context.dtype == np.float64
    for f in (
        "decision_id",
        "user",
        "created_at",
        "model",
        "scores",
        "propensity",
        "policy",
        "policy_version",
        "embedder",
        "prior_id",
        "reason",
        "expires_at",
    ):
        assert getattr(back, f) == getattr(d, f), f
    assert back.estimated_cost == pytest.approx(0.25, abs=1e-12)
    assert stores.ledger.state("alice").reserved == pytest.approx(0.25, abs=1e-12)


def test_a_reservation_that_does_not_fit_stores_nothing(stores):
    stores.decisions.record(decision(1, cost=0.75))
    with pytest.raises(BudgetExhaustedError, match="left"):
        stores.decisions.record(decision(2, cost=0.5))
    assert stores.decisions.get("d000002") is None
    state = stores.ledger.state("alice")
    assert state.reserved == pytest.approx(0.75, abs=1e-12) and state.n_decisions == 1


def test_a_user_without_a_budget_is_refused_and_nothing_is_stored(stores):
    with pytest.raises(BudgetError):
        stores.decisions.record(decision(1, user="mallory"))
    assert stores.decisions.get("d000001") is None


def test_feedback_settles_and_is_idempotent(stores):
    d = decision(1, cost=0.25)
    stores.decisions.record(d)
    first = stores.decisions.add_feedback(feedback_of(d, 0.75, cost=0.2, t=3.0))
    assert not first.duplicate and first.record.feedback_id >= 1
    assert first.record.reward == 0.75 and first.record.model == d.model
    np.testing.assert_array_equal(first.record.context, d.context)
    again = stores.decisions.add_feedback(feedback_of(d, 0.75, cost=0.2, t=9.0))
    assert again.duplicate and again.record.feedback_id == first.record.feedback_id
    state = stores.ledger.state("alice")
    assert state.spent == pytest.approx(0.2, abs=1e-12) and state.reserved == pytest.approx(0.0)
    assert len(stores.decisions.feedback_since(0)) == 1
    got = stores.decisions.feedback_for(d.decision_id)
    assert got.feedback_id == first.record.feedback_id and got.cost == pytest.approx(0.2)


@pytest.mark.parametrize("change", [{"reward": 0.5}, {"cost": 0.3}, {"is_default": True}])
def test_different_second_feedback_is_a_conflict(stores, change):
    d = decision(1, cost=0.25)
    stores.decisions.record(d)
    stores.decisions.add_feedback(feedback_of(d, 0.75, cost=0.2))
    args = {"reward": 0.75, "cost": 0.2, **change}
    with pytest.raises(FeedbackConflictError, match="once per decision"):
        stores.decisions.add_feedback(feedback_of(d, **args))
    assert stores.ledger.state("alice").spent == pytest.approx(0.2, abs=1e-12)


def test_feedback_on_an_unknown_decision(stores):
    with pytest.raises(UnknownDecisionError):
        stores.decisions.add_feedback(feedback_of(decision("ghost")))
    assert stores.decisions.feedback_since(0) == []


def test_feedback_ids_increase_and_feedback_since_pages(stores):
    ds = [decision(i, cost=0.01) for i in range(6)]
    for d in ds:
        stores.decisions.record(d)
    order = [3, 0, 5, 1, 4, 2]
    ids = [
        stores.decisions.add_feedback(feedback_of(ds[i], i / 10)).record.feedback_id for i in order
    ]
    assert ids == sorted(ids) and len(set(ids)) == 6
    everything = stores.decisions.feedback_since(0)
    assert [f.decision_id for f in everything] == [ds[i].decision_id for i in order]
    assert [f.reward for f in everything] == [i / 10 for i in order]
    tail = stores.decisions.feedback_since(ids[2])
    assert [f.feedback_id for f in tail] == ids[3:]
    assert [f.feedback_id for f in stores.decisions.feedback_since(ids[0], limit=2)] == ids[1:3]
    assert stores.decisions.feedback_since(ids[-1]) == []


def test_expired_lists_decisions_waiting_past_their_time(stores):
    a = decision(1, t=1.0, expires_at=10.0)
    b = decision(2, t=2.0, expires_at=20.0)
    c = decision(3, t=3.0, expires_at=None)
    e = decision(4, t=0.5, expires_at=5.0)
    for d in (a, b, c, e):
        stores.decisions.record(d)
    stores.decisions.add_feedback(feedback_of(e))
    assert [d.decision_id for d in stores.decisions.expired(15.0)] == [a.decision_id]
    assert [d.decision_id for d in stores.decisions.expired(25.0)] == [a.decision_id, b.decision_id]
    assert len(stores.decisions.expired(25.0, limit=1)) == 1
    # the default feedback the router applies at expiry removes it from the list
    stores.decisions.add_feedback(feedback_of(a, None, t=30.0, is_default=True))
    assert [d.decision_id for d in stores.decisions.expired(25.0)] == [b.decision_id]
    assert stores.decisions.feedback_for(a.decision_id).reward is None


def test_expired_after_scans_only_the_recent_window(stores):
    for i, due in enumerate((5.0, 10.0, 20.0, 30.0), start=1):
        stores.decisions.record(decision(i, t=float(i), expires_at=due))
    recent = stores.decisions.expired(25.0, after=10.0)
    assert [d.expires_at for d in recent] == [10.0, 20.0]  # [after, now)
    assert [d.expires_at for d in stores.decisions.expired(25.0)] == [5.0, 10.0, 20.0]


def test_a_decision_without_reservation_holds_and_settles_nothing(stores):
    if "reserved" not in decision(1).__dataclass_fields__:
        pytest.fail("DecisionRecord.reserved is part of the contract")
    stores.users.put(UserRecord("free"))
    d = decision(1, user="free", cost=5.0, reserved=False)
    stores.decisions.record(d)
    out = stores.decisions.add_feedback(feedback_of(d, 1.0, cost=7.0))
    assert not out.duplicate and stores.decisions.get(d.decision_id).user == "free"


def test_snapshots_latest(stores):
    assert stores.snapshots.latest() is None
    a = stores.snapshots.save(b"one", 3, {"policy": "linucb"})
    b = stores.snapshots.save(b"two", 8, {"arms": ["a", "b"]})
    assert b.snapshot_id > a.snapshot_id
    latest = stores.snapshots.latest()
    assert (latest.blob, latest.last_feedback_id, latest.meta) == (b"two", 8, {"arms": ["a", "b"]})


def test_only_the_newest_snapshots_are_kept(stores):
    """Snapshotting every 100 feedback for months must not keep every policy state (0.4-21
    MB each): memory keeps the latest, SQL the newest three (a fallback past a corrupted
    blob)."""
    for n in range(1, 11):
        stores.snapshots.save(f"state-{n}".encode(), n, {"n": n})
    latest = stores.snapshots.latest()
    assert (latest.blob, latest.last_feedback_id, latest.meta) == (b"state-10", 10, {"n": 10})
    if hasattr(stores.snapshots, "count"):  # the SQL store
        assert stores.snapshots.count() == 3
        assert stores.snapshots.get(latest.snapshot_id - 2).blob == b"state-8"
        with pytest.raises(StateError, match="no policy snapshot"):
            stores.snapshots.get(latest.snapshot_id - 3)


def test_users_and_budgets(stores):
    stores.users.put(UserRecord("bob", Budget(2.0, "daily", expected_queries=100)))
    stores.users.put(UserRecord("carol"))
    assert [u.name for u in stores.users.list()] == ["alice", "bob", "carol"]
    bob = stores.users.get("bob")
    assert bob.budget == Budget(2.0, "daily", expected_queries=100)
    assert stores.users.get("carol").budget is None and stores.users.get("zed") is None
    assert stores.ledger.state("bob").remaining == pytest.approx(2.0)
    # a new budget keeps the spend so far
    d = decision(1, user="bob", cost=0.5)
    stores.decisions.record(d)
    stores.users.put(UserRecord("bob", Budget(3.0, "daily")))
    assert stores.ledger.state("bob").remaining == pytest.approx(2.5, abs=1e-12)


def test_putting_a_user_without_budget_removes_the_budget(stores):
    """``bandit-router users budget NAME --unlimited`` puts the user without a budget."""
    stores.users.put(UserRecord("bob", Budget(2.0, "daily")))
    stores.users.put(UserRecord("bob"))
    assert stores.users.get("bob") == UserRecord("bob", None)
    assert [u.budget for u in stores.users.list() if u.name == "bob"] == [None]


def test_models_catalogue(stores):
    stores.models.put(ModelRecord(ModelSpec("small", 0.1, 0.4, 0.0, 200)))
    stores.models.put(ModelRecord(ModelSpec("large", 5.0, 15.0, 0.001, 400)))
    stores.models.put(ModelRecord(ModelSpec("small", 0.2, 0.8, 0.0, 200), "retired"))
    assert [r.spec.name for r in stores.models.list()] == ["small", "large"]  # added order
    got = {r.spec.name: r for r in stores.models.list()}
    assert got["small"].status == "retired" and got["small"].spec.input_price_per_mtok == 0.2
    assert got["large"].spec == ModelSpec("large", 5.0, 15.0, 0.001, 400)
