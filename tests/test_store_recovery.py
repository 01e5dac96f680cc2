"""Exact recovery through the ``Router``: a learner process (route -> feedback, a snapshot
every 20 feedback) is killed with SIGKILL at random points and restarted; in the end the
state rebuilt from the latest snapshot plus the feedback logged after it equals, to 1e-9,
the state of a router that never crashed and saw the same events. SQLite and PostgreSQL.

The learners are forked (they inherit the imported modules, so a restart costs no import
time); each opens its own database connections after the fork.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from bandit_router.storage import open_router_stores
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import learner_main, make_router, reference_router

N_EVENTS = 80
KILLS = 3


def _run_with_kills(url: str, seed: int) -> int:
    """Start the learner, SIGKILL it ``KILLS`` times at random moments, then let it finish;
    returns how many kills hit a learner that was still working."""
    rng = np.random.default_rng(seed)
    ctx = mp.get_context("fork")
    hits = 0
    progress = -1  # the last event a learner reported done
    for attempt in range(KILLS + 1):
        parent, child_end = ctx.Pipe()
        child = ctx.Process(target=learner_main, args=(url, N_EVENTS, child_end))
        child.start()
        try:
            assert parent.poll(120) and parent.recv() == "ready", "the learner did not start"
            if attempt < KILLS:
                # a random moment of its work (however fast it is): just after a random
                # event, plus up to a few milliseconds into the next one
                # (among the events not done yet: a restarted learner skips those quickly)
                target = int(rng.integers(min(progress + 1, N_EVENTS - 2), N_EVENTS - 1))
                done = -1
                while done < target and parent.poll(60):
                    try:
                        done = parent.recv()
                    except EOFError:
                        break
                progress = max(progress, done)
                time.sleep(rng.uniform(0.0, 0.003))
                if child.is_alive():
                    os.kill(child.pid, signal.SIGKILL)
                    hits += 1
                child.join(60)
                assert child.exitcode in (-signal.SIGKILL, 0)
                continue
            child.join(240)
            assert child.exitcode == 0, f"the last learner failed (exit code {child.exitcode})"
            return hits
        finally:
            if child.is_alive():  # pragma: no cover - a failed assertion above
                child.kill()
                child.join()
            parent.close()
    raise AssertionError("unreachable")


def _check_recovery(url: str) -> None:
    hits = _run_with_kills(url, seed=len(url))
    assert hits >= 1, "no kill landed while the learner was working; the test proved nothing"
    reference = reference_router(N_EVENTS)
    with open_router_stores(url) as stores:
        # what a restart holds: the latest snapshot plus the feedback logged after it
        snap = stores.snapshots.latest()
        assert snap is not None and snap.last_feedback_id > 0
        feedback = stores.decisions.feedback_since(0)
        assert [f.decision_id for f in feedback] == [f"e{i:06d}" for i in range(N_EVENTS)]
        restored, _ = make_router(stores)
        assert restored.last_feedback_id == feedback[-1].feedback_id
        assert restored.policy.n_updates == reference.policy.n_updates == N_EVENTS
        np.testing.assert_allclose(restored.policy.theta, reference.policy.theta, rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            restored.policy.state.A_inv, reference.policy.state.A_inv, rtol=0, atol=1e-9
        )
        # the crashed learner made the same choices as the one that never crashed
        ref_models = [reference.stores.decisions.get(f"e{i:06d}").model for i in range(N_EVENTS)]
        assert [stores.decisions.get(f"e{i:06d}").model for i in range(N_EVENTS)] == ref_models
        assert len(set(ref_models)) > 1  # the scenario is not trivial


def test_kill_9_and_restart_rebuild_the_exact_state_on_sqlite(tmp_path):
    _check_recovery(str(tmp_path / "learner.db"))


@pytest.mark.postgres
def test_kill_9_and_restart_rebuild_the_exact_state_on_postgres():
    with temporary_postgres_database(postgres_url()) as url:
        _check_recovery(url)
