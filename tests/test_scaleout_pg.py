"""Scale-out on PostgreSQL: several router processes, one learned state.

- 2 and 4 processes receive feedback for different decisions; after a sync each holds the
  state of one process that saw all of it (max abs difference <= 1e-9).
- kill -9 of one worker mid-traffic: no feedback lost, none applied twice, on the
  survivors and on a restarted worker.
- feedback ids become visible in id order (a watermark never skips a late commit).
- catalogue and price changes made by one process reach another through its sync.
- only one process writes the periodic snapshots (advisory lock).

Workers are forked (they inherit the imported modules); each opens its own connections.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from bandit_router.catalogue import ModelSpec
from bandit_router.storage import open_router_stores
from bandit_router.stores_memory import memory_stores
from bandit_router.sync import StoreSync
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import learner_step, make_router

pytestmark = pytest.mark.postgres

N_EVENTS = 48


def _state(router) -> dict:
    return {
        "theta": np.array(router.policy.theta, copy=True),
        "A_inv": np.array(router.policy.state.A_inv, copy=True),
        "last": router.last_feedback_id,
        "n_updates": router.policy.n_updates,
    }


def worker_main(url: str, w: int, n_workers: int, n_events: int, conn) -> None:
    """Route + feedback events ``w, w + n_workers, ...``; then wait until this process has
    folded in all ``n_events`` feedback (its own and the others') and report its state."""
    stores = open_router_stores(url)
    router, current = make_router(stores)
    sync = StoreSync(router, interval=0.2).start()
    conn.send("ready")
    for i in range(w, n_events, n_workers):
        learner_step(router, current, i)
    deadline = time.monotonic() + 180  # a guard against a hang, not a speed limit
    while router.policy.n_updates < n_events and time.monotonic() < deadline:
        time.sleep(0.02)
    sync.sync_once()
    conn.send(_state(router) | {"notifications": sync.notifications})
    sync.stop()
    stores.close()


def _reference(url: str) -> dict:
    """One process that saw all the feedback: a fresh router applying the whole log."""
    router, _ = make_router(memory_stores())
    with open_router_stores(url) as stores:
        log = stores.decisions.feedback_since(0)
    router.apply_feedback(log)
    return _state(router) | {"log": log}


def _start(ctx, url, w, n_workers, n_events):
    parent, child_end = ctx.Pipe()
    p = ctx.Process(target=worker_main, args=(url, w, n_workers, n_events, child_end))
    p.start()
    assert parent.poll(60) and parent.recv() == "ready", "a worker did not start"
    return p, parent


def _collect(procs) -> list[dict]:
    """Every worker's reported state, once it has finished cleanly."""
    states = []
    for p, pipe in procs:
        assert pipe.poll(180), "a worker did not finish"  # a guard, not a speed limit
        states.append(pipe.recv())
        p.join(30)
        assert p.exitcode == 0
    return states


def _assert_same(state: dict, ref: dict) -> None:
    assert state["n_updates"] == ref["n_updates"] == N_EVENTS  # none lost, none twice
    assert state["last"] == ref["last"]
    assert np.max(np.abs(state["theta"] - ref["theta"])) <= 1e-9
    assert np.max(np.abs(state["A_inv"] - ref["A_inv"])) <= 1e-9


@pytest.mark.parametrize("n_workers", [2, 4])
def test_processes_converge_to_one_learner(n_workers):
    ctx = mp.get_context("fork")
    with temporary_postgres_database(postgres_url()) as url:
        open_router_stores(url).close()  # migrate once, before the workers race
        procs = [_start(ctx, url, w, n_workers, N_EVENTS) for w in range(n_workers)]
        states = _collect(procs)
        ref = _reference(url)
        assert sorted(f.decision_id for f in ref["log"]) == [f"e{i:06d}" for i in range(N_EVENTS)]
        assert len({f.model for f in ref["log"]}) > 1  # the scenario is not trivial
        for s in states:
            _assert_same(s, ref)
        # the others' feedback arrived by NOTIFY, not only by polling
        assert sum(s["notifications"] for s in states) > 0


def test_kill_9_of_one_worker_loses_nothing_and_applies_nothing_twice():
    ctx = mp.get_context("fork")
    with temporary_postgres_database(postgres_url()) as url:
        open_router_stores(url).close()
        procs = [_start(ctx, url, w, 3, N_EVENTS) for w in range(3)]
        victim, _ = procs[0]
        # kill mid-traffic: as soon as the victim has fed back its first event (its events
        # are 0, 3, 6, ...; a fixed delay could outlast all of them on a fast machine)
        with open_router_stores(url) as watch:
            deadline = time.monotonic() + 180  # a guard against a hang, not a speed limit
            while watch.decisions.feedback_for("e000000") is None and time.monotonic() < deadline:
                time.sleep(0.002)
        assert victim.is_alive(), "the victim finished before the kill; the test proves nothing"
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(30)
        assert victim.exitcode == -signal.SIGKILL
        # a restarted worker takes over the victim's events (finishing a decision the kill
        # left without feedback) and restores from the latest snapshot + the log
        procs[0] = _start(ctx, url, 0, 3, N_EVENTS)
        states = _collect(procs)
        ref = _reference(url)
        ids = [f.decision_id for f in ref["log"]]
        assert sorted(ids) == [f"e{i:06d}" for i in range(N_EVENTS)]  # each exactly once
        for s in states:
            _assert_same(s, ref)


def test_feedback_ids_become_visible_in_id_order():
    """A feedback transaction that got id n and has not committed holds back id n + 1: a
    reader never sees n + 1 without n (its watermark would skip n forever)."""
    from tests.test_store_support import decision, feedback_of

    with temporary_postgres_database(postgres_url()) as url:
        with open_router_stores(url) as stores:
            for i in range(3):
                stores.decisions.record(decision(i, reserved=False))
            slow_done = threading.Event()
            release = threading.Event()
            first_id = {}

            def slow() -> None:  # another process's feedback, slow to commit
                engine = create_engine(url)
                with engine.begin() as conn:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK})
                    d = decision(0, reserved=False)
                    first_id["id"] = conn.execute(
                        text(
                            "INSERT INTO feedback (decision_id, \"user\", model, context, "
                            "reward, cost, created_at, is_default) VALUES "
                            "(:d, :u, :m, :c, 1.0, 0.0, 0.0, false) RETURNING id"
                        ),
                        {"d": d.decision_id, "u": d.user, "m": d.model,
                         "c": d.context.astype("<f8").tobytes()},
                    ).scalar_one()  # fmt: skip
                    slow_done.set()
                    release.wait(30)
                engine.dispose()

            from bandit_router.storage.transactions import PG_FEEDBACK_LOCK as LOCK

            t = threading.Thread(target=slow)
            t.start()
            assert slow_done.wait(30)
            fast = threading.Thread(
                target=stores.decisions.add_feedback, args=(feedback_of(decision(1)),)
            )
            fast.start()
            with stores.engine.connect() as conn:  # the fast one waits for the slow one
                for _ in range(3000):
                    waiting = conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND wait_event = 'advisory'"
                        )
                    ).scalar_one()
                    conn.rollback()
                    if waiting:
                        break
                    time.sleep(0.01)
            assert waiting == 1
            assert stores.decisions.feedback_since(0) == []  # nothing visible: no gap
            release.set()
            t.join(30)
            fast.join(30)
            ids = [f.feedback_id for f in stores.decisions.feedback_since(0)]
            assert ids == [first_id["id"], first_id["id"] + 1]


def test_catalogue_and_prices_reach_the_other_process():
    with temporary_postgres_database(postgres_url()) as url:
        sa, sb = open_router_stores(url), open_router_stores(url)
        try:
            a, current = make_router(sa)
            b, _ = make_router(sb)
            sync = StoreSync(b, interval=60.0, listen=False)
            for i in range(6):  # some learning first, so the new arm's pooled mean matters
                learner_step(a, current, i)
            a.set_price("cheap", input_price_per_mtok=9.0)
            a.add_model(ModelSpec("extra", 0.05, 0.1))
            assert "extra" not in b.models
            sync.sync_once()
            assert b.models == a.models
            assert b._specs["cheap"].input_price_per_mtok == 9.0
            np.testing.assert_allclose(
                b.cost_model.estimate(input_tokens=100.0), a.cost_model.estimate(input_tokens=100.0)
            )
            np.testing.assert_allclose(b.policy.theta, a.policy.theta, rtol=0, atol=1e-12)
            a.retire_model("extra")
            sync.sync_once()
            assert b.models == a.models and "extra" not in b.models
        finally:
            sa.close()
            sb.close()


def test_one_snapshot_writer_at_a_time():
    with temporary_postgres_database(postgres_url()) as url:
        sa, sb = open_router_stores(url), open_router_stores(url)
        try:
            a, _ = make_router(sa)
            b, _ = make_router(sb)
            ya, yb = StoreSync(a, interval=0.05).start(), StoreSync(b, interval=0.05).start()
            for _ in range(3000):
                if ya.is_snapshot_writer() or yb.is_snapshot_writer():
                    break
                time.sleep(0.02)
            time.sleep(0.2)
            assert [ya.is_snapshot_writer(), yb.is_snapshot_writer()].count(True) == 1
            writer, other = (ya, yb) if ya.is_snapshot_writer() else (yb, ya)
            writer.stop()  # the writer goes away: the other takes over
            for _ in range(3000):
                if other.is_snapshot_writer():
                    break
                time.sleep(0.02)
            assert other.is_snapshot_writer()
            other.stop()
        finally:
            sa.close()
            sb.close()


BUDGET = 0.02


def budget_worker(url: str, w: int, threads: int, attempts: int, start, conn) -> None:
    """Route ``threads x attempts`` queries of user "shared" through a Router; report how
    many got a model and how many were refused as exhausted."""
    stores = open_router_stores(url)
    router, _ = make_router(stores)
    router.ids = lambda: f"w{w}-{time.monotonic_ns()}-{threading.get_ident()}"
    counts = {"ok": 0, "exhausted": 0, "other": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def run(t: int) -> None:
        rng = np.random.default_rng([w, t])
        for _ in range(attempts):
            try:
                r = router.route("shared", embedding=rng.normal(size=6), input_tokens=4000)
                key = "ok" if r.ok else ("exhausted" if r.reason == "exhausted" else "other")
            except Exception as exc:  # pragma: no cover - reported by the test
                errors.append(repr(exc))
                continue
            with lock:
                counts[key] += 1

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start.wait(60)
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    conn.send((counts, errors))
    stores.close()


def test_four_processes_of_sixteen_threads_never_reserve_more_than_the_budget():
    from bandit_router.budget.periods import Budget
    from bandit_router.stores import UserRecord

    ctx = mp.get_context("fork")
    with temporary_postgres_database(postgres_url()) as url:
        with open_router_stores(url) as stores:
            stores.users.put(UserRecord("shared", Budget(BUDGET)))
        start = ctx.Barrier(4)
        pipes, procs = [], []
        for w in range(4):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=budget_worker, args=(url, w, 16, 4, start, child))
            p.start()
            pipes.append(parent)
            procs.append(p)
        totals = {"ok": 0, "exhausted": 0, "other": 0}
        for parent, p in zip(pipes, procs, strict=True):
            assert parent.poll(120), "a worker did not finish"
            counts, errors = parent.recv()
            assert errors == []
            for k in totals:
                totals[k] += counts[k]
            p.join(30)
        assert totals["ok"] + totals["exhausted"] + totals["other"] == 4 * 16 * 4
        assert totals["ok"] > 0 and totals["exhausted"] > 0  # the budget did bind
        with open_router_stores(url) as stores:
            state = stores.ledger.state("shared")
            with stores.engine.connect() as conn:
                reserved, n = conn.execute(
                    text("SELECT coalesce(sum(estimated_cost), 0), count(*) FROM decisions")
                ).one()
        assert n == totals["ok"]  # every admitted route was recorded, no refused one
        assert float(reserved) <= BUDGET + 1e-12
        assert state.committed <= BUDGET + 1e-12
        assert state.committed == pytest.approx(float(reserved), abs=1e-12)


def test_pacing_state_is_read_from_the_shared_ledger():
    """Spent share and arrival count come from the ledger: a process that routed nothing
    paces exactly as the one that routed everything."""
    from bandit_router.budget.periods import Budget

    with temporary_postgres_database(postgres_url()) as url:
        sa, sb = open_router_stores(url), open_router_stores(url)
        try:
            a, current = make_router(sa)
            b, _ = make_router(sb)
            a.set_user("paced", Budget(0.05, "daily", expected_queries=40))
            for i in range(12):
                current["id"] = f"p{i}"
                assert a.route("paced", embedding=np.ones(6), input_tokens=2000).ok
            sa_state, sb_state = sa.ledger.state("paced"), sb.ledger.state("paced")
            assert sb_state.n_decisions == 12 and sb_state.reserved == sa_state.reserved > 0
            assert b.allocator.spent_share(sb_state) == a.allocator.spent_share(sa_state)
            assert b.budget_of("paced") == a.budget_of("paced")
        finally:
            sa.close()
            sb.close()


def test_a_budget_set_by_another_process_binds_after_a_sync():
    """A user first seen without a budget, then given one through another process: after
    the next sync this process reserves against it (it no longer routes them unbudgeted)."""
    from bandit_router.budget.periods import Budget

    with temporary_postgres_database(postgres_url()) as url:
        sa, sb = open_router_stores(url), open_router_stores(url)
        try:
            a, _ = make_router(sa)
            b, current = make_router(sb)
            current["id"] = "u0"
            assert b.route("late", embedding=np.ones(6), input_tokens=100).reason != "exhausted"
            a.set_user("late", Budget(1e-9))  # too small for any model
            StoreSync(b, interval=60.0, listen=False).sync_once()
            current["id"] = "u1"
            r = b.route("late", embedding=np.ones(6), input_tokens=100)
            assert not r.ok and r.reason == "exhausted"
        finally:
            sa.close()
            sb.close()
