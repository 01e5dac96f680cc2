"""Helpers shared by the storage and `runs`/`regret` CLI tests (this module holds no tests)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ON_CI

POSTGRES_ENV = "BANDIT_ROUTER_TEST_POSTGRES_URL"


def make_steps(n: int = 50, seed: int = 0, budgeted: bool = False, start: int = 1) -> pd.DataFrame:
    """A plausible per-step frame as the simulator writes it."""
    rng = np.random.default_rng(seed)
    reward = rng.random(n)
    oracle = np.maximum(reward, rng.random(n))
    cost = rng.random(n) * 1e-3
    df = pd.DataFrame(
        {
            "step": np.arange(start, start + n),
            "reward": reward,
            "cost": cost,
            "oracle_reward": oracle,
            "spend": np.cumsum(cost),
            "cumulative_regret": np.cumsum(oracle - reward),
            "model": rng.choice(["gpt-4", "mixtral", "llama"], n),
        }
    )
    if budgeted:
        df["budgeted_regret"] = np.cumsum(0.5 * (oracle - reward))
    return df


def postgres_url() -> str:
    """The test server's URL; skip locally, fail on CI, when it is not configured."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        if ON_CI:
            pytest.fail(f"{POSTGRES_ENV} is not set on CI: .ci/run must start PostgreSQL.")
        pytest.skip(f"{POSTGRES_ENV} is not set (no PostgreSQL server for this run)")
    return url


@contextmanager
def temporary_postgres_database(url: str) -> Iterator[str]:
    """A fresh database on the server at ``url`` (dropped afterwards); yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bandit_router_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
