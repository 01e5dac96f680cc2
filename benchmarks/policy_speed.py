"""Speed of one decide-and-learn event: bandit-router against the peers a user would pick.

One event = score all arms for a context, choose one, update the chosen arm with its
reward. The same stream (contexts and per-arm Bernoulli rewards from a linear world) goes
through bandit-router's LinUCB, MABWiser's LinUCB, river's LinUCBDisjoint and Vowpal
Wabbit's ``--cb_explore_adf`` (driven from Python: its examples are text lines, built per
event). Every event is timed on its own; the table shows medians and ratios.

    python benchmarks/policy_speed.py            # table
    python benchmarks/policy_speed.py --json     # one JSON object per dimension
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

# One BLAS thread for every library: on small matrices threads only add synchronisation,
# and with other work on the machine a threaded gemv waits for a busy core. Set
# BENCH_BLAS_THREADS to override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = os.environ.get("BENCH_BLAS_THREADS", "1")

import numpy as np  # noqa: E402

K = 11


def stream(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Contexts (n, d) on the unit sphere plus bias, rewards (n, K) in {0, 1}."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, :-1] /= np.linalg.norm(X[:, :-1], axis=1, keepdims=True)
    X[:, -1] = 1.0
    theta = rng.normal(0, 0.3 / np.sqrt(d), (K, d))
    theta[:, -1] = rng.uniform(0.3, 0.6, K)
    p = np.clip(X @ theta.T, 0.02, 0.98)
    return X, (rng.random((n, K)) < p).astype(float)


def time_events(event: Callable[[int], None], start: int, n: int) -> list[float]:
    """Run events ``start .. start + n - 1`` and return each one's microseconds."""
    out = []
    for i in range(start, start + n):
        t0 = time.perf_counter_ns()
        event(i)
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def bandit_router_events(X, R):
    from bandit_router.policies import LinUCB

    pol = LinUCB([f"m{k}" for k in range(K)], X.shape[1], alpha=1.0, seed=0)

    def event(i: int) -> None:
        x = X[i]
        d = pol.decide(x)
        pol.update(d.arm, x, R[i, d.index])

    return event


def mabwiser_events(X, R):
    from mabwiser.mab import MAB, LearningPolicy

    arms = list(range(K))
    mab = MAB(arms, LearningPolicy.LinUCB(alpha=1.0), seed=0)
    mab.fit(decisions=arms, rewards=R[np.arange(K), arms], contexts=X[:K])

    def event(i: int) -> None:
        x = X[i : i + 1]
        a = mab.predict(x)
        mab.partial_fit([a], [R[i, a]], x)

    return event


def river_events(X, R):
    from river import bandit

    pol = bandit.LinUCBDisjoint(alpha=1.0, seed=0)
    arms = list(range(K))
    names = [f"f{j}" for j in range(X.shape[1])]

    def event(i: int) -> None:
        ctx = dict(zip(names, X[i].tolist(), strict=True))
        a = pol.pull(arms, context=ctx)
        pol.update(a, ctx, R[i, a])

    return event


def vw_events(X, R):
    import vowpalwabbit

    vw = vowpalwabbit.Workspace("--cb_explore_adf -q sa --epsilon 0.05 --quiet --random_seed 0")
    actions = [f"|a arm{k}" for k in range(K)]
    rng = np.random.default_rng(0)

    def event(i: int) -> None:
        shared = "shared |s " + " ".join(f"f{j}:{v:.6f}" for j, v in enumerate(X[i].tolist()))
        pmf = np.asarray(vw.predict([shared, *actions]))
        a = int(rng.choice(K, p=pmf / pmf.sum()))
        label = [shared, *actions]
        label[a + 1] = f"0:{-R[i, a]}:{pmf[a]} {actions[a]}"
        vw.learn(label)

    return event


PEERS = {
    "bandit_router": bandit_router_events,
    "vowpalwabbit": vw_events,
    "mabwiser": mabwiser_events,
    "river": river_events,
}

# events timed per library and dimension: the slow peers get fewer (medians settle fast)
BUDGET = {
    64: {"bandit_router": 5000, "vowpalwabbit": 2000, "mabwiser": 200, "river": 300},
    512: {"bandit_router": 1000, "vowpalwabbit": 500, "mabwiser": 40, "river": 15},
}


def run(d: int, scale: float = 1.0, rounds: int = 3) -> dict:
    """Time every library on the same stream, in interleaved rounds.

    Each library's events are split into ``rounds`` blocks and the blocks alternate
    between libraries, so a slow phase of the machine does not land on one library only.
    """
    budgets = {k: max(rounds, int(v * scale)) for k, v in BUDGET[d].items()}
    warmup = 50 if d == 64 else 10
    X, R = stream(max(budgets.values()) + warmup + K, d)
    events, times, cursor = {}, {}, {}
    for name, make in PEERS.items():
        try:
            events[name] = make(X, R)
        except ImportError as exc:
            print(f"# {name} is not installed ({exc}); pip install -e '.[bench]'", file=sys.stderr)
            continue
        for i in range(K, K + warmup):
            events[name](i)
        times[name], cursor[name] = [], K + warmup
    for _ in range(rounds):
        for name, event in events.items():
            n = budgets[name] // rounds
            times[name] += time_events(event, cursor[name], n)
            cursor[name] += n
    return {
        name: {"median": float(np.median(t)), "p90": float(np.percentile(t, 90)), "n": len(t)}
        for name, t in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per dimension")
    parser.add_argument("--dims", default="64,512", help="comma-separated context dimensions")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per library")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the number of timed events"
    )
    args = parser.parse_args()
    for d in (int(v) for v in args.dims.split(",")):
        res = run(d, args.scale, args.rounds)
        if args.json:
            print(
                json.dumps(
                    {
                        "K": K,
                        "d": d,
                        "us_per_event": {k: round(v["median"], 2) for k, v in res.items()},
                    }
                )
            )
            continue
        ours = res["bandit_router"]["median"]
        print(f"\nK = {K} arms, d = {d}; median (p90) microseconds per decide-and-learn event")
        print(
            f"{'library':<15} {'median us':>11} {'p90 us':>10} {'events':>7} {'x slower than us':>17}"
        )
        for name, v in res.items():
            print(
                f"{name:<15} {v['median']:>11.1f} {v['p90']:>10.1f} {v['n']:>7} {v['median'] / ours:>17.1f}"
            )
    if not args.json:
        print(f"\n(cpu count {os.cpu_count()}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
