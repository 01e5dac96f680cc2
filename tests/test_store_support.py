"""Helpers of the router-store tests (this module holds no tests): backends, records, and the
worker functions that child processes run (they must be importable by name for ``spawn``)."""

from __future__ import annotations

import math
import os
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bandit_router.budget.clock import ManualClock
from bandit_router.budget.periods import Budget
from bandit_router.errors import BudgetExhaustedError
from bandit_router.stores import DecisionRecord, FeedbackRecord, Stores

ROOT = Path(__file__).resolve().parents[1]
#: the router's tables, children first (for TRUNCATE / DELETE between tests)
ROUTER_TABLES = (
    "feedback",
    "decisions",
    "ledger_entries",
    "ledger_reservations",
    "ledger_accounts",
    "api_keys",
    "users",
    "models",
    "policy_snapshots",
)
BACKENDS = ("memory", "sqlite", "postgres")


def decision(
    i: int | str,
    user: str = "alice",
    cost: float = 0.01,
    *,
    model: str = "m1",
    t: float = 0.0,
    d: int = 3,
    expires_at: float | None = None,
    reserved: bool = True,
) -> DecisionRecord:
    """A plausible decision; its context is a function of ``i`` (exactly reproducible)."""
    did = i if isinstance(i, str) else f"d{i:06d}"
    x = np.random.default_rng(zlib.crc32(did.encode())).normal(size=d)
    scores = {model: {"mean": 0.5, "width": 0.1, "value": 0.6}}
    kwargs = {"reserved": reserved} if "reserved" in DecisionRecord.__dataclass_fields__ else {}
    return DecisionRecord(
        did,
        user,
        t,
        model,
        x,
        scores,
        0.9,
        cost,
        "linucb",
        3,
        "hash",
        None,
        "admitted",
        expires_at,
        **kwargs,
    )


def feedback_of(
    d: DecisionRecord,
    reward: float | None = 1.0,
    cost: float | None = None,
    t: float = 1.0,
    is_default: bool = False,
) -> FeedbackRecord:
    return FeedbackRecord(
        d.decision_id,
        reward,
        d.estimated_cost if cost is None else cost,
        t,
        d.model,
        d.context,
        d.user,
        is_default,
    )


def truncate_router_tables(engine) -> None:
    """Empty the router's tables (ids restart at 1 on PostgreSQL)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t}"' for t in ROUTER_TABLES)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in ROUTER_TABLES:
                conn.execute(text(f'DELETE FROM "{t}"'))


def make_stores(backend: str, where: str | None, clock, **ledger) -> Stores:
    """The stores of ``backend`` on a fresh (emptied) database at ``where``."""
    if backend == "memory":
        from bandit_router.stores_memory import memory_stores

        return memory_stores(clock=clock, **ledger)
    from storage import open_router_stores

    stores = open_router_stores(where, clock=clock, **ledger)
    if backend == "postgres":
        truncate_router_tables(stores.engine)
    return stores


def close(stores: Stores) -> None:
    fn = getattr(stores, "close", None)
    if fn is not None:
        fn()


# ---- child processes --------------------------------------------------------------------


def reserve_worker(url: str, worker: int, threads: int, attempts: int, cost: float) -> int:
    """Record ``threads x attempts`` decisions of user "shared" from threads; returns how
    many were admitted (the rest must be refused with ``BudgetExhaustedError``)."""
    import threading

    from storage import open_router_stores

    stores = open_router_stores(url)
    admitted = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(t: int) -> None:
        barrier.wait()
        for a in range(attempts):
            d = decision(f"w{worker}-t{t}-a{a}", "shared", cost, t=time.time())
            try:
                stores.decisions.record(d)
                admitted[t] += 1
            except BudgetExhaustedError:
                pass
            except BaseException as exc:  # pragma: no cover - reported by the test
                errors.append(exc)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    stores.close()
    if errors:
        raise errors[0]
    return sum(admitted)


# ---- the recovery scenario ------------------------------------------------------------------

ARMS = ("cheap", "mid", "strong")
DIM = 6
#: the true weights of each arm (the reward is a noisy linear function of the context)
TRUE_W = np.random.default_rng(42).normal(size=(len(ARMS), DIM)) / math.sqrt(DIM)


def event(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Context ``(d,)`` and the reward of every arm ``(K,)`` of event ``i``."""
    rng = np.random.default_rng([7, i])
    x = rng.normal(size=DIM)
    x /= np.linalg.norm(x)
    rewards = np.clip(0.5 + TRUE_W @ x + 0.1 * rng.normal(size=len(ARMS)), 0.0, 1.0)
    return x, rewards


def new_policy():
    from bandit_router.policies.linucb import LinUCB

    return LinUCB(list(ARMS), DIM, alpha=0.7, seed=0, refactor_every=40)


def learner_step(stores: Stores, policy, i: int, clock) -> int | None:
    """Route event ``i`` (reusing its decision if a crash left one without feedback), learn
    from its reward and log the feedback; returns the feedback id (None if already done)."""
    did = f"e{i:06d}"
    if stores.decisions.feedback_for(did) is not None:
        return None
    x, rewards = event(i)
    d = stores.decisions.get(did)
    if d is None:
        choice = policy.decide(x)
        d = DecisionRecord(
            did,
            "learner",
            clock(),
            choice.arm,
            x,
            choice.scores.as_dict(),
            float(choice.propensity),
            0.001,
            policy.name,
        )
        stores.decisions.record(d)
    k = ARMS.index(d.model)
    fb = FeedbackRecord(did, float(rewards[k]), 0.001, clock(), d.model, d.context, "learner")
    out = stores.decisions.add_feedback(fb)
    policy.update(d.model, d.context, float(rewards[k]))
    return out.record.feedback_id


def rebuild(stores: Stores):
    """The policy state from the latest snapshot plus the feedback logged after it."""
    from bandit_router.policies import from_state

    snap = stores.snapshots.latest()
    policy = new_policy() if snap is None else from_state(snap.blob)
    after = 0 if snap is None else snap.last_feedback_id
    for fb in stores.decisions.feedback_since(after):
        if fb.reward is not None:
            policy.update(fb.model, fb.context, fb.reward)
    return policy


def learner_main(url: str, n_events: int, snapshot_every: int) -> None:
    """A learner process: rebuild, then work through events 0..n-1, snapshotting every
    ``snapshot_every`` feedback. Prints "ready" once rebuilt (the parent kills it later)."""
    from storage import open_router_stores

    stores = open_router_stores(url)
    if stores.users.get("learner") is None:
        from bandit_router.stores import UserRecord

        stores.users.put(UserRecord("learner", Budget(1e6)))
    policy = rebuild(stores)
    print("ready", flush=True)
    for i in range(n_events):
        fid = learner_step(stores, policy, i, time.time)
        if fid is not None and fid % snapshot_every == 0:
            stores.snapshots.save(policy.get_state(), fid, {"policy": policy.name})
    print("done", flush=True)
    stores.close()


def reference_policy(n_events: int):
    """What a process that never crashed holds after the same events (in memory)."""
    from bandit_router.stores import UserRecord
    from bandit_router.stores_memory import memory_stores

    stores = memory_stores(clock=ManualClock(0.0))
    stores.users.put(UserRecord("learner", Budget(1e6)))
    policy = new_policy()
    for i in range(n_events):
        learner_step(stores, policy, i, stores.snapshots.clock)
    return policy, [stores.decisions.get(f"e{i:06d}").model for i in range(n_events)]


@contextmanager
def child_env() -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    yield env


if __name__ == "__main__":  # the learner child: python tests/test_store_support.py URL N EVERY
    learner_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
