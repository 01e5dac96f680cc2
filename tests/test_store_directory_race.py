"""Processes starting together add the same models and users at once.

Every router process puts the configured catalogue (and its users) into the store when it
starts; on PostgreSQL two transactions that both found no row used to insert the same name
and one failed with a unique violation (seen as a worker crash in the scale-out test). Many
threads, each with its own transaction, now put the same new names at the same moment.
"""

from __future__ import annotations

import threading

import pytest

from bandit_router.budget.periods import Budget
from bandit_router.catalogue import ModelSpec
from bandit_router.storage import open_router_stores
from bandit_router.stores import ModelRecord, UserRecord
from tests.test_storage_support import postgres_url, temporary_postgres_database

THREADS, ROUNDS = 8, 12


def _race(put) -> list[BaseException]:
    errors: list[BaseException] = []
    for r in range(ROUNDS):
        barrier = threading.Barrier(THREADS)

        def run(r: int = r, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                put(r)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return errors


@pytest.mark.postgres
def test_concurrent_puts_of_the_same_model_and_user_all_succeed_on_postgres():
    with temporary_postgres_database(postgres_url()) as url:
        stores = open_router_stores(url)
        try:
            errors = _race(lambda r: stores.models.put(ModelRecord(ModelSpec(f"m{r}", 1.0, 2.0))))
            errors += _race(lambda r: stores.users.put(UserRecord(f"u{r}")))
            errors += _race(lambda r: stores.users.put(UserRecord(f"b{r}", Budget(1.0))))
            assert errors == []
            assert [m.spec.name for m in stores.models.list()] == [f"m{r}" for r in range(ROUNDS)]
            names = {u.name for u in stores.users.list()}
            assert {f"u{r}" for r in range(ROUNDS)} | {f"b{r}" for r in range(ROUNDS)} <= names
        finally:
            getattr(stores, "close", lambda: None)()
