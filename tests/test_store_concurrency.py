"""Budgets are exact under concurrency: 4 processes x 32 threads recording decisions against
one small budget admit exactly as many as fit, never more, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import text

from bandit_router.budget.periods import Budget
from bandit_router.storage import open_router_stores
from bandit_router.stores import UserRecord
from tests.test_storage_support import postgres_url, temporary_postgres_database
from tests.test_store_support import reserve_worker

PROCESSES, THREADS, ATTEMPTS = 4, 32, 1
COST = 0.01
BUDGET = 0.5  # fits 50 of the 128 attempts


def _warm() -> None:
    import bandit_router.storage  # noqa: F401  (imported once per worker, before the clock starts)


@pytest.fixture(scope="module")
def pool():
    """One pool of 4 spawned processes for both databases (spawning and importing is most
    of the cost), and a barrier they all pass together: every job then runs in a process
    of its own, at the same time as the others."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(PROCESSES, initializer=_warm) as p:
        yield p, manager


def _hammer(pool, url: str) -> int:
    pool, manager = pool
    with open_router_stores(url) as stores:
        stores.users.put(UserRecord("shared", Budget(BUDGET)))
    start = manager.Barrier(PROCESSES)
    results = [
        pool.apply_async(reserve_worker, (url, w, THREADS, ATTEMPTS, COST, start))
        for w in range(PROCESSES)
    ]
    return sum(r.get(timeout=240) for r in results)


def _check_books(url: str, admitted: int) -> None:
    fit = round(BUDGET / COST)
    assert admitted == fit, f"{admitted} decisions admitted, {fit} fit the budget"
    with open_router_stores(url) as stores:
        state = stores.ledger.state("shared")
        assert state.reserved == pytest.approx(BUDGET, abs=1e-9)
        assert state.n_decisions == fit
        with stores.engine.connect() as conn:
            n_decisions = conn.execute(text("SELECT count(*) FROM decisions")).scalar_one()
            held = conn.execute(
                text("SELECT sum(amount) FROM ledger_reservations WHERE state = 'open'")
            ).scalar_one()
        assert n_decisions == fit  # a refused decision left no row behind
        assert float(held) <= BUDGET + 1e-9


def test_budget_is_exact_under_concurrency_on_sqlite(pool, tmp_path):
    url = str(tmp_path / "race.db")
    _check_books(url, _hammer(pool, url))


@pytest.mark.postgres
def test_budget_is_exact_under_concurrency_on_postgres(pool):
    with temporary_postgres_database(postgres_url()) as url:
        _check_books(url, _hammer(pool, url))
