"""Memory of a long-lived router on in-memory stores, with and without ``Router.prune``.

The routed query of ``benchmarks/policy_speed.py`` (K = 11, d = 64, a daily budget,
in-memory stores; 10 ms of clock per query) repeated; prints the process's resident memory
(from /proc, Linux) every ``--every`` queries, then the growth. With ``--prune N`` the
router prunes its answered history (``older_than=0``) every N queries.

    python benchmarks/memory_history.py                  # 200,000 queries, no pruning
    python benchmarks/memory_history.py --prune 10000    # pruned every 10,000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import policy_speed as ps


def rss_mb() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200_000, help="routed queries")
    parser.add_argument("--every", type=int, default=50_000, help="report every N queries")
    parser.add_argument("--prune", type=int, default=0, help="prune every N queries (0: never)")
    args = parser.parse_args()
    if args.queries < 1 or args.every < 1 or args.prune < 0:
        parser.error("--queries and --every must be >= 1, --prune >= 0")
    X, R = ps.stream(20_000, 64)
    router = ps._router(64, 63)
    E = np.ascontiguousarray(X[:, :-1])
    start = rss_mb()
    t = time.perf_counter()
    for n in range(1, args.queries + 1):
        i = n % 20_000
        r = router.route("u", embedding=E[i], input_tokens=500.0)
        router.feedback(r.decision_id, R[i, r.index])
        router.clock.advance(0.01)
        if args.prune and n % args.prune == 0:
            router.prune(older_than=0.0)
        if n % args.every == 0:
            now = time.perf_counter()
            print(
                f"{n:>8} queries: {(now - t) / args.every * 1e6:6.1f} us/query, "
                f"resident {rss_mb()} MB (+{rss_mb() - start})",
                flush=True,
            )
            t = now
    grown = rss_mb() - start
    print(
        f"grew {grown} MB over {args.queries} queries ({grown * 2**20 / args.queries:.0f} B each)"
    )


if __name__ == "__main__":
    main()
