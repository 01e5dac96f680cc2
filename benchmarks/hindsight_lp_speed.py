"""Time of the hindsight LP optimum (``bandit_router.budget.hindsight_optimum``) on streams
the size of a replay: prints one line per size, median of ``--repeats`` solves.

    python benchmarks/hindsight_lp_speed.py                    # n = 500, 2000, 5000; K = 11
    python benchmarks/hindsight_lp_speed.py --sizes 5000 20000 --models 11 --repeats 5

Used to be a timed test (``< 10 s`` for n = 5000, K = 11) that failed CI on a busy machine;
the test now checks the optimum's correctness on a smaller stream, the speed lives here.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from bandit_router.budget import hindsight_optimum
from bandit_router.budget.synthetic import synthetic_stream


def time_solve(n: int, k: int, share: float, repeats: int, seed: int = 0) -> tuple[float, float]:
    """Median seconds of one solve and the optimum's value, on ``synthetic_stream(n, k)``
    with a budget of ``share`` of always calling the dearest model."""
    v, c = synthetic_stream(n, k, seed=seed)
    budget = share * c[:, -1].sum()
    times = []
    value = float("nan")
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = hindsight_optimum(v, c, budget).value
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    ap.add_argument("--models", type=int, default=11)
    ap.add_argument("--share", type=float, default=0.2, help="budget / cost of the dearest")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(
        f"# hindsight LP (HiGHS), K = {args.models}, budget share {args.share}, "
        f"median of {args.repeats}; {platform.processor() or platform.machine()}"
    )
    print(f"{'queries':>8} {'seconds':>9} {'optimum':>10}")
    for n in args.sizes:
        sec, value = time_solve(n, args.models, args.share, args.repeats)
        print(f"{n:>8} {sec:>9.3f} {value:>10.2f}")


if __name__ == "__main__":
    main()
