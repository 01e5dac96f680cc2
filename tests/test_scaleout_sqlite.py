"""Scale-out pieces that need no PostgreSQL: overlapping reads of the log apply each
feedback once (hypothesis), a catalogue change waits for its snapshot, a failing round
marks the sync unhealthy and the next one recovers, and two routers on one SQLite file
converge."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.catalogue import ModelSpec
from bandit_router.storage import open_router_stores
from bandit_router.stores import FeedbackRecord, ModelRecord
from bandit_router.stores_memory import memory_stores
from bandit_router.sync import StoreSync
from tests.test_store_support import ARMS, learner_step, make_router


def _log(n: int, seed: int) -> list[FeedbackRecord]:
    rng = np.random.default_rng(seed)
    return [
        FeedbackRecord(
            f"d{i}",
            float(rng.uniform()),
            0.0,
            0.0,
            ARMS[int(rng.integers(3))],
            np.append(rng.normal(size=6), 1.0),
            feedback_id=i + 1,
        )
        for i in range(n)
    ]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=8),
)
def test_overlapping_reads_of_the_log_apply_each_feedback_once(n, seed, cuts):
    """Rounds read the log from a watermark that may be behind the router's (a feedback
    call caught up meanwhile): whatever windows they read, the state is the one-pass one."""
    log = _log(n, seed)
    one, _ = make_router(memory_stores())
    one.apply_feedback(log)
    many, _ = make_router(memory_stores())
    for a, b in cuts:
        lo, hi = sorted((min(a, n), min(b, n)))
        # a read from watermark w returns the contiguous records after w
        if lo <= many.last_feedback_id:
            many.apply_feedback(log[lo:hi])
    many.apply_feedback(log[many.last_feedback_id :])
    assert many.last_feedback_id == one.last_feedback_id == n
    assert many.policy.n_updates == one.policy.n_updates
    np.testing.assert_array_equal(many.policy.theta, one.policy.theta)


def test_a_new_model_waits_for_its_snapshot(tmp_path):
    with open_router_stores(str(tmp_path / "r.db")) as stores:
        b, _ = make_router(stores)
        before = list(b.models)
        # another process stored the model but has not written its snapshot yet
        stores.models.put(ModelRecord(ModelSpec("late", 0.1, 0.2)))
        assert b.refresh_catalogue() is False and b.models == before


def test_a_failing_round_marks_the_sync_unhealthy_and_the_next_recovers(tmp_path):
    with open_router_stores(str(tmp_path / "r.db")) as stores:
        a, current = make_router(stores)
        b, _ = make_router(stores)
        sync = StoreSync(b, interval=60.0)
        real = stores.decisions.feedback_since

        def down(*args, **kwargs):
            raise ConnectionError("server closed the connection unexpectedly")

        for i in range(3):
            learner_step(a, current, i)
        stores.decisions.feedback_since = down
        assert sync.sync_once() == 0
        assert not sync.healthy and "server closed" in sync.last_error
        assert b.last_feedback_id == 0  # kept its state, applied nothing half-way
        stores.decisions.feedback_since = real
        assert sync.sync_once() == 3 and sync.healthy and sync.last_error is None
        np.testing.assert_allclose(b.policy.theta, a.policy.theta, rtol=0, atol=1e-12)


def test_two_routers_on_one_sqlite_file_converge(tmp_path):
    url = str(tmp_path / "r.db")
    sa, sb = open_router_stores(url), open_router_stores(url)
    try:
        a, ca = make_router(sa)
        b, cb = make_router(sb)
        with StoreSync(b, interval=0.05):
            for i in range(0, 20, 2):
                learner_step(a, ca, i)
                learner_step(b, cb, i + 1)
        StoreSync(a, interval=60.0).sync_once()
        StoreSync(b, interval=60.0).sync_once()
        assert a.last_feedback_id == b.last_feedback_id == 20
        np.testing.assert_allclose(a.policy.theta, b.policy.theta, rtol=0, atol=1e-9)
    finally:
        sa.close()
        sb.close()
