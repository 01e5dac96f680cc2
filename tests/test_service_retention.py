"""``service.retention_s``: the running app prunes the answered history older than that,
keeping what the state and the books need (``Router.prune`` on the durable store)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bandit_router.budget import Budget, ManualClock
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import ConfigurationError
from bandit_router.policies import make_policy
from bandit_router.router import Router
from bandit_router.service import MemoryKeyStore, ServiceSettings, create_app
from bandit_router.storage import open_router_stores
from bandit_router.storage.maintenance import status

MODELS = [ModelSpec("cheap", 0.1, 0.4), ModelSpec("good", 3.0, 12.0)]


def wait_for(condition, what: str, guard_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds (the guard only stops a broken test)."""
    end = time.monotonic() + guard_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_app_prunes_answered_history_older_than_the_retention(tmp_path):
    clock = ManualClock(1_750_000_000.0)
    stores = open_router_stores(tmp_path / "retention.db", clock=clock)
    router = Router(
        MODELS, None, None, make_policy("linucb", ["cheap", "good"], 3, seed=0),
        stores=stores, clock=clock, feedback_wait_seconds=None,
    )  # fmt: skip
    router.set_user("ann", Budget(10.0, "monthly"))
    X = np.random.default_rng(0).standard_normal((22, 3))
    for i in range(20):
        r = router.route_context("ann", X[i], input_tokens=100.0)
        router.feedback(r.decision_id, 0.5, cost=0.0001)
    pending = [router.route_context("ann", X[i], input_tokens=100.0) for i in (20, 21)]
    books = stores.ledger.state("ann")
    settings = ServiceSettings(retention_s=3600.0, prune_interval_s=0.05, expire_interval_s=None)
    app = create_app(router, settings, keys=MemoryKeyStore())
    rounds: list[dict[str, int]] = []
    prune = router.prune
    router.prune = lambda older_than: rounds.append(prune(older_than)) or rounds[-1]

    def counts():
        return status(stores.engine)["counts"]

    with TestClient(app):
        wait_for(lambda: len(rounds) >= 2, "two prune rounds")
        assert not any(any(r.values()) for r in rounds)  # nothing older than an hour yet
        assert counts()["decisions"] == 22 and counts()["feedback"] == 20
        clock.advance(2 * 3600.0)
        wait_for(lambda: counts()["feedback"] == 0, "the answered history to be pruned")
    assert counts()["decisions"] == 2  # the two waiting for feedback stay
    after = stores.ledger.state("ann")
    assert (after.spent, after.reserved, after.n_decisions) == pytest.approx(
        (books.spent, books.reserved, books.n_decisions)
    )
    assert stores.snapshots.latest().last_feedback_id == 20  # the state rebuilds from it
    assert not router.feedback(pending[0].decision_id, 1.0, cost=0.0001).duplicate
    stores.close()


@pytest.mark.parametrize(
    ("key", "value"), [("retention_s", 0), ("retention_s", -5.0), ("prune_interval_s", 0)]
)
def test_retention_settings_must_be_positive(key, value):
    with pytest.raises(ConfigurationError, match=f"service.{key}"):
        ServiceSettings(**{key: value})
