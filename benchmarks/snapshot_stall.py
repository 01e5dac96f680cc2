"""How long a query waits while the router writes a periodic snapshot.

One thread sends feedback (``snapshot_every`` 50, so a snapshot every 50 feedback), another
routes as fast as it can meanwhile; both on one ``Router`` over an SQLite file in a
temporary folder, ``linucb`` without a prior on 512-d embeddings (513-d contexts, the demo
catalogue's five models: a 21 MB policy state). Prints how many routes got through and
their latency (median, p99, max): the max is the longest the router's lock was held.

    python benchmarks/snapshot_stall.py                    # 400 feedback, 512-d, SQLite
    python benchmarks/snapshot_stall.py --memory           # in-memory stores
    python benchmarks/snapshot_stall.py --feedback 1000 --dim 64

On SQLite the longest wait is at least the snapshot's write transaction: SQLite has one
writer, and a route writes its decision. In memory it is what the lock holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time

import numpy as np

from bandit_router.config_file import example_config_text, load_config_text
from bandit_router.router import Router
from bandit_router.storage import open_router_stores
from bandit_router.stores_memory import memory_stores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feedback", type=int, default=400, help="feedback to send")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension")
    parser.add_argument("--every", type=int, default=50, help="snapshot_every")
    parser.add_argument("--memory", action="store_true", help="in-memory stores, not SQLite")
    args = parser.parse_args()
    if args.feedback < 1 or args.dim < 1 or args.every < 1:
        parser.error("--feedback, --dim and --every must be >= 1")
    cfg = dataclasses.replace(
        load_config_text(example_config_text()).router,
        prior=None, policy="linucb", embedder=f"hashing-{args.dim}", snapshot_every=args.every,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        stores = memory_stores() if args.memory else open_router_stores(f"{tmp}/stall.db")
        router = Router.from_config(cfg, stores)
        E = np.random.default_rng(0).standard_normal((5000, args.dim))
        ids = [
            router.route("u", embedding=E[i % 5000], input_tokens=100.0).decision_id
            for i in range(args.feedback)
        ]
        done = threading.Event()
        waits: list[float] = []

        def send_feedback() -> None:
            for did in ids:
                router.feedback(did, 0.5)
            done.set()

        def route() -> None:
            i = 0
            while not done.is_set():
                t = time.perf_counter()
                router.route("u", embedding=E[i % 5000], input_tokens=100.0)
                waits.append(time.perf_counter() - t)
                i += 1

        threads = [threading.Thread(target=send_feedback), threading.Thread(target=route)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        if not args.memory:
            stores.close()
    ms = np.array(waits) * 1e3
    print(
        f"{args.feedback} feedback ({args.feedback // args.every} snapshots) in {took:.1f} s, "
        f"d = {args.dim + 1}, {'memory' if args.memory else 'SQLite'}; {len(ms)} routes meanwhile: median {np.median(ms):.2f} ms, "
        f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms"
    )


if __name__ == "__main__":
    main()
