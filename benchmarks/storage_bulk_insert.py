"""Time of a bulk insert of per-step curves (``store.runs.add_steps``) and of reading them
back, in a temporary SQLite file (and PostgreSQL with ``--postgres URL``).

    python benchmarks/storage_bulk_insert.py                 # 15,000 steps, SQLite file
    python benchmarks/storage_bulk_insert.py --steps 15000 60000 \
        --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres

Used to be a timed test (15k steps ``< 5 s``); the test now checks that a bulk insert
round-trips every step, the speed lives here. With ``--postgres`` the runs are written to a
fresh database on that server, dropped afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from bandit_router.storage import open_store


def steps_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A per-step frame shaped like the simulator's (budgeted), ``n`` rows."""
    rng = np.random.default_rng(seed)
    reward = rng.random(n)
    oracle = np.maximum(reward, rng.random(n))
    cost = rng.random(n) * 1e-3
    return pd.DataFrame(
        {
            "step": np.arange(1, n + 1),
            "reward": reward,
            "cost": cost,
            "oracle_reward": oracle,
            "spend": np.cumsum(cost),
            "cumulative_regret": np.cumsum(oracle - reward),
            "model": rng.choice(["gpt-4", "mixtral", "llama"], n),
            "budgeted_regret": np.cumsum(0.5 * (oracle - reward)),
        }
    )


def time_insert(url: str, n: int) -> tuple[float, float]:
    """Seconds to insert ``n`` steps of one run, and to read them back."""
    steps = steps_frame(n)
    with open_store(url) as store:
        rid = store.runs.create("replay", "bench", "synthetic", seed=0)
        t0 = time.perf_counter()
        store.runs.add_steps(rid, steps)
        t1 = time.perf_counter()
        back = store.runs.steps(rid)
        t2 = time.perf_counter()
    if len(back) != n:
        raise RuntimeError(f"wrote {n} steps, read {len(back)} back")
    return t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[15_000])
    ap.add_argument("--postgres", default=None, help="server URL (a temporary database is made)")
    args = ap.parse_args()
    print(f"{'backend':>10} {'steps':>8} {'insert s':>9} {'read s':>8} {'steps/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.steps:
            url = str(Path(tmp) / f"bench-{n}.db")
            ins, read = time_insert(url, n)
            print(f"{'sqlite':>10} {n:>8} {ins:>9.3f} {read:>8.3f} {n / ins:>10.0f}")
    if args.postgres:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = f"bandit_router_bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            for n in args.steps:
                ins, read = time_insert(url, n)
                print(f"{'postgres':>10} {n:>8} {ins:>9.3f} {read:>8.3f} {n / ins:>10.0f}")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
