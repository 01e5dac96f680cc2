"""Concurrent route/feedback from 8 threads give the state of a serial replay of the log."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bandit_router.budget import Budget
from bandit_router.config import RouterConfig, build_policy
from bandit_router.router import Router
from bandit_router.stores_memory import memory_stores

MODELS = [
    {"name": "small", "input_price_per_mtok": 0.1, "output_price_per_mtok": 0.4},
    {"name": "medium", "input_price_per_mtok": 1.0, "output_price_per_mtok": 4.0},
    {"name": "large", "input_price_per_mtok": 5.0, "output_price_per_mtok": 15.0},
]


@pytest.mark.parametrize("policy", ["linucb", "lints", "epsilon-greedy"])
def test_eight_threads_end_in_the_state_of_the_serial_feedback_log(policy):
    cfg = RouterConfig.from_dict(
        {"models": MODELS, "embedder": "hashing-24", "policy": policy, "seed": 3}
    )
    stores = memory_stores()
    router = Router.from_config(cfg, stores)
    for t in range(8):
        router.set_user(f"user{t}", Budget(100.0))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(t: int) -> None:
        rng = np.random.default_rng(t)
        try:
            start.wait()
            pending = []
            for i in range(40):
                r = router.route(f"user{t}", f"thread {t} query {i} topic {i % 5}")
                pending.append(r)
                if rng.random() < 0.7:  # feedback out of order, some late
                    d = pending.pop(int(rng.integers(len(pending))))
                    router.feedback(
                        d.decision_id, float(rng.random()), cost=float(rng.random()) * 1e-3
                    )
            for d in pending:
                router.feedback(d.decision_id, float(rng.random()))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    log = stores.decisions.feedback_since(0)
    assert [f.feedback_id for f in log] == list(range(1, 8 * 40 + 1))
    serial = build_policy(policy, router.models, router.policy.dim, seed=3)
    for f in log:
        serial.update(f.model, f.context, f.reward)
    for name in ("A", "b", "theta", "A_inv"):
        got = getattr(router.policy.state, name)
        want = getattr(serial.state, name)
        assert np.max(np.abs(got - want)) <= 1e-9, name
    assert router.policy.n_updates == serial.n_updates == 320
    for t in range(8):  # every reservation settled at its feedback's cost
        s = stores.ledger.state(f"user{t}")
        spent = sum(f.cost for f in log if f.user == f"user{t}")
        assert s.reserved == pytest.approx(0.0, abs=1e-12)
        assert s.spent == pytest.approx(spent) and s.n_decisions == 40
