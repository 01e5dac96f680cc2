"""Exact recovery through the ``Router``: a learner process (route -> feedback, a snapshot
every 20 feedback) is killed with SIGKILL at random points and restarted; in the end the
state rebuilt from the latest snapshot plus the feedback logged after it equals, to 1e-9,
the state of a router that never crashed and saw the same events. SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from storage import open_router_stores
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import ROOT, child_env, make_router, reference_router

N_EVENTS = 80
KILLS = 2


def _run_with_kills(url: str, seed: int) -> int:
    """Start the learner, SIGKILL it ``KILLS`` times at random moments, then let it finish;
    returns how many kills hit a live learner."""
    rng = np.random.default_rng(seed)
    script = str(ROOT / "tests" / "test_store_support.py")
    hits = 0
    with child_env() as env:
        for attempt in range(KILLS + 1):
            child = subprocess.Popen(
                [sys.executable, script, url, str(N_EVENTS)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
            )  # fmt: skip
            try:
                assert child.stdout.readline().strip() == "ready", child.stderr.read()
                if attempt < KILLS:
                    time.sleep(rng.uniform(0.05, 0.8))
                    if child.poll() is None:
                        child.send_signal(signal.SIGKILL)
                        hits += 1
                    child.wait(timeout=60)
                    continue
                out, err = child.communicate(timeout=240)
                assert child.returncode == 0 and "done" in out, err
                return hits
            finally:
                if child.poll() is None:  # pragma: no cover - a failed assertion above
                    child.kill()
                    child.wait()
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
