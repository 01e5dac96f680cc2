"""Helpers of the router-store tests (this module holds no tests): backends, records, and the
worker functions that child processes run (they must be importable by name for ``spawn``)."""

from __future__ import annotations

import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

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
    from bandit_router.storage import open_router_stores

    stores = open_router_stores(where, clock=clock, **ledger)
    truncate_router_tables(stores.engine)
    return stores


def close(stores: Stores) -> None:
    fn = getattr(stores, "close", None)
    if fn is not None:
        fn()


# ---- child processes --------------------------------------------------------------------


def reserve_worker(
    url: str, worker: int, threads: int, attempts: int, cost: float, start=None
) -> int:
    """Record ``threads x attempts`` decisions of user "shared" from threads; returns how
    many were admitted (the rest must be refused with ``BudgetExhaustedError``). ``start``:
    a barrier shared by the worker processes (all of them run at once)."""
    import threading

    from bandit_router.storage import open_router_stores

    stores = open_router_stores(url)
    if start is not None:
        start.wait(120)
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
TRUE_W = np.random.default_rng(42).normal(size=(len(ARMS), DIM + 1)) / math.sqrt(DIM)
CONFIG = {
    "models": [
        {"name": a, "input_price_per_mtok": 0.1 * (k + 1), "output_price_per_mtok": 0.4 * (k + 1)}
        for k, a in enumerate(ARMS)
    ],
    "policy": "linucb",
    "policy_options": {"alpha": 0.7, "refactor_every": 40},
    "embedder": f"hashing-{DIM}",
    "feedback_wait_seconds": None,
    "snapshot_every": 20,
    "seed": 0,
}


def event(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A precomputed embedding ``(D,)`` of event ``i`` and the reward of every arm ``(K,)``."""
    rng = np.random.default_rng([7, i])
    e = rng.normal(size=DIM)
    x = np.append(e / np.linalg.norm(e), 1.0)
    rewards = np.clip(0.5 + TRUE_W @ x / 2 + 0.1 * rng.normal(size=len(ARMS)), 0.0, 1.0)
    return e, rewards


def make_router(stores: Stores, clock=time.time):
    """The router of the scenario on ``stores``: restored from its snapshot + feedback."""
    from bandit_router.router import Router

    current = {"id": ""}
    router = Router.from_config(CONFIG, stores, clock=clock, ids=lambda: current["id"])
    router.set_user("learner", Budget(1e6))
    return router, current


def learner_step(router, current: dict, i: int) -> bool:
    """Route event ``i`` (reusing its decision if a crash left one without feedback) and
    send its reward; False if it was already done."""
    did = f"e{i:06d}"
    stores = router.stores
    if stores.decisions.feedback_for(did) is not None:
        return False
    e, rewards = event(i)
    d = stores.decisions.get(did)
    if d is None:
        current["id"] = did
        model = router.route("learner", embedding=e, input_tokens=100).model
    else:
        model = d.model
    router.feedback(did, float(rewards[ARMS.index(model)]), cost=0.0001)
    return True


def learner_main(url: str, n_events: int, ready=None) -> None:
    """A learner process: restore the router, then work through events 0..n-1 (the router
    snapshots every 20 feedback). Says "ready" once restored (on ``ready``, a pipe end, or
    stdout); the parent kills it at a random moment after that."""
    from bandit_router.storage import open_router_stores

    stores = open_router_stores(url)
    router, current = make_router(stores)
    if ready is not None:
        ready.send("ready")
    else:
        print("ready", flush=True)
    for i in range(n_events):
        learner_step(router, current, i)
        if ready is not None:
            ready.send(i)
    stores.close()


def reference_router(n_events: int):
    """A router that never crashed, after the same events (in memory)."""
    from bandit_router.stores_memory import memory_stores

    router, current = make_router(memory_stores())
    for i in range(n_events):
        learner_step(router, current, i)
    return router


if __name__ == "__main__":  # the learner child: python tests/test_store_support.py URL N
    learner_main(sys.argv[1], int(sys.argv[2]))
