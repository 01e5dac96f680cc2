"""What only the SQL stores do: refuse bad input and write nothing, API keys kept as salted
hashes, checksummed snapshots that fall back to the previous one, durable reopen."""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pytest
from sqlalchemy import select, text

from bandit_router.budget.clock import ManualClock
from bandit_router.budget.periods import Budget
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import (
    BudgetError,
    InvalidInputError,
    StateError,
)
from bandit_router.storage import open_router_stores
from bandit_router.storage.models import ApiKey
from bandit_router.storage.snapshots import CorruptSnapshotWarning
from bandit_router.stores import ModelRecord, UserRecord
from tests.test_store_support import decision, feedback_of

COUNTED = ("decisions", "feedback", "ledger_reservations", "ledger_entries")


@pytest.fixture
def stores(tmp_path):
    s = open_router_stores(tmp_path / "sql.db", clock=ManualClock(1000.0))
    s.users.put(UserRecord("alice", Budget(1.0)))
    yield s
    s.close()


def _rows(stores) -> dict[str, int]:
    with stores.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in COUNTED}


def _replace(d, **changes):
    from dataclasses import replace

    return replace(d, **changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"context": np.array([1.0, math.nan, 0.0])}, "NaN"),
        ({"context": np.array([1.0, math.inf])}, "NaN or infinite"),
        ({"context": np.zeros((2, 2))}, "vector"),
        ({"estimated_cost": -0.01}, "estimated cost"),
        ({"estimated_cost": math.nan}, "estimated cost"),
        ({"propensity": 1.5}, "propensity"),
        ({"user": ""}, "user"),
        ({"model": ""}, "model"),
        ({"decision_id": "x" * 65}, "decision id"),
    ],
)
def test_a_bad_decision_writes_nothing(stores, change, message):
    before = _rows(stores)
    with pytest.raises(InvalidInputError, match=message):
        stores.decisions.record(_replace(decision(1), **change))
    assert _rows(stores) == before
    assert stores.ledger.state("alice").reserved == 0.0


def test_an_unknown_user_writes_nothing(stores):
    before = _rows(stores)
    with pytest.raises(BudgetError, match="no budget"):
        stores.decisions.record(decision(1, user="mallory"))
    assert _rows(stores) == before


def test_an_unknown_or_retired_model_writes_nothing(stores):
    stores.models.put(ModelRecord(ModelSpec("m1", 0.1, 0.4)))
    stores.models.put(ModelRecord(ModelSpec("old", 0.1, 0.4), "retired"))
    stores.decisions.record(decision(1, model="m1"))
    before = _rows(stores)
    for model, why in (("ghost", "not in the catalogue"), ("old", "retired")):
        with pytest.raises(InvalidInputError, match=why):
            stores.decisions.record(decision(2, model=model))
    assert _rows(stores) == before


def test_a_duplicate_decision_id_writes_nothing(stores):
    stores.decisions.record(decision(1, cost=0.1))
    before = _rows(stores)
    with pytest.raises(InvalidInputError, match="already recorded"):
        stores.decisions.record(decision(1, cost=0.2))
    assert _rows(stores) == before
    assert stores.ledger.state("alice").reserved == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("reward", "cost", "message"),
    [(math.nan, 0.1, "reward"), (1.0, -0.5, "cost"), (1.0, math.inf, "cost")],
)
def test_bad_feedback_writes_nothing(stores, reward, cost, message):
    d = decision(1, cost=0.1)
    stores.decisions.record(d)
    before = _rows(stores)
    with pytest.raises(InvalidInputError, match=message):
        stores.decisions.add_feedback(feedback_of(d, reward, cost=cost))
    assert _rows(stores) == before and stores.decisions.feedback_for(d.decision_id) is None
    assert stores.ledger.state("alice").reserved == pytest.approx(0.1)


def test_feedback_of_another_user_is_unknown(stores):
    from bandit_router.errors import UnknownDecisionError

    d = decision(1)
    stores.decisions.record(d)
    with pytest.raises(UnknownDecisionError, match="mallory"):
        stores.decisions.add_feedback(_replace(feedback_of(d), user="mallory"))


def test_everything_survives_a_reopen(tmp_path):
    path = tmp_path / "durable.db"
    with open_router_stores(path) as s:
        s.users.put(UserRecord("bob", Budget(2.0, "monthly", expected_queries=10)))
        d = decision(1, user="bob", cost=0.5)
        s.decisions.record(d)
        s.decisions.add_feedback(feedback_of(d, 0.25, cost=0.4))
        s.snapshots.save(b"blob", 1, {"policy": "linucb"})
    with open_router_stores(path) as s:
        assert s.users.get("bob").budget == Budget(2.0, "monthly", expected_queries=10)
        assert s.ledger.state("bob").spent == pytest.approx(0.4)
        assert s.decisions.feedback_since(0)[0].reward == 0.25
        assert s.snapshots.latest().blob == b"blob"


# ---- API keys ----------------------------------------------------------------------------


def test_api_keys_are_stored_as_salted_hashes_only(stores):
    k1 = stores.users.issue_key("alice")
    k2 = stores.users.issue_key("alice")
    assert k1 != k2 and k1.startswith("br_")
    assert stores.users.verify_key(k1).name == "alice"
    with stores.engine.connect() as conn:
        raw = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
    secret = k1.split("_")[2]
    dump = repr(raw).encode()
    assert secret.encode() not in dump and k1.encode() not in dump  # never the plaintext
    assert hashlib.sha256(secret.encode()).hexdigest().encode() not in dump  # nor a bare hash
    assert len({bytes(r["salt"]) for r in raw}) == 2  # a salt per key


def test_wrong_tampered_and_revoked_keys_are_refused(stores):
    key = stores.users.issue_key("alice")
    prefix = key.split("_")[1]
    assert stores.users.verify_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert stores.users.verify_key(f"br_{prefix}_") is None
    assert stores.users.verify_key("br_nothere_secret") is None
    assert stores.users.verify_key("not a key") is None
    stores.users.revoke_key(prefix)
    assert stores.users.verify_key(key) is None
    with pytest.raises(InvalidInputError, match="no active API key"):
        stores.users.revoke_key(prefix)
    [info] = stores.users.keys("alice")
    assert info.prefix == prefix and info.revoked_at is not None


def test_keys_need_an_existing_user(stores):
    with pytest.raises(InvalidInputError, match="users add"):
        stores.users.issue_key("nobody")
    with stores.engine.connect() as conn:
        assert conn.execute(select(ApiKey)).first() is None


# ---- snapshots ---------------------------------------------------------------------------


def test_a_corrupted_snapshot_is_reported_and_the_previous_one_used(stores):
    good = stores.snapshots.save(b"state-good", 5, {})
    bad = stores.snapshots.save(b"state-newer", 9, {})
    with stores.engine.begin() as conn:  # a damaged disk flips bytes of the newest blob
        conn.execute(
            text("UPDATE policy_snapshots SET blob = :b WHERE id = :i"),
            {"b": b"state-nEwer", "i": bad.snapshot_id},
        )
    with pytest.warns(CorruptSnapshotWarning, match=f"#{bad.snapshot_id} is corrupted"):
        latest = stores.snapshots.latest()
    assert (latest.snapshot_id, latest.blob, latest.last_feedback_id) == (
        good.snapshot_id, b"state-good", 5,
    )  # fmt: skip
    with pytest.raises(StateError, match="corrupted"):
        stores.snapshots.get(bad.snapshot_id)
    assert stores.snapshots.get(good.snapshot_id).blob == b"state-good"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a newer good snapshot: no warning any more
        stores.snapshots.save(b"state-3", 12, {})
        assert stores.snapshots.latest().last_feedback_id == 12


def test_snapshot_input_is_checked(stores):
    with pytest.raises(InvalidInputError):
        stores.snapshots.save(b"", 1, {})
    with pytest.raises(InvalidInputError):
        stores.snapshots.save(b"x", -1, {})


def test_past_the_kept_snapshots_a_corrupted_newest_falls_back_to_the_one_before(tmp_path):
    stores = open_router_stores(tmp_path / "keep.db", clock=ManualClock(1000.0))
    try:
        for n in range(1, 6):
            last = stores.snapshots.save(f"state-{n}".encode(), n, {})
        assert stores.snapshots.count() == 3
        with stores.engine.begin() as conn:
            conn.execute(
                text("UPDATE policy_snapshots SET blob = :b WHERE id = :i"),
                {"b": b"state-X", "i": last.snapshot_id},
            )
        with pytest.warns(CorruptSnapshotWarning):
            assert stores.snapshots.latest().blob == b"state-4"
    finally:
        stores.close()


def test_a_snapshot_store_that_keeps_every_snapshot_and_bad_keep_values(tmp_path):
    from bandit_router.storage.snapshots import SqlSnapshotStore

    stores = open_router_stores(tmp_path / "all.db", clock=ManualClock(1000.0))
    try:
        every = SqlSnapshotStore(stores.engine, keep=None)
        for n in range(1, 6):
            every.save(f"state-{n}".encode(), n, {})
        assert every.count() == 5
        for bad in (0, -2, 1.5, True):
            with pytest.raises(InvalidInputError, match="keep must be a number of snapshots"):
                SqlSnapshotStore(stores.engine, keep=bad)
    finally:
        stores.close()
