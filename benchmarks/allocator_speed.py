"""Budget allocator overhead per decision, and its quality against the hindsight LP.

    python benchmarks/allocator_speed.py            # speed table (K = 11)
    python benchmarks/allocator_speed.py --quality  # + fraction of the LP optimum vs naive splits
    python benchmarks/allocator_speed.py --json

Overhead = median time of ``BudgetAllocator.choose`` minus the median time of the
``policy.choose(scores, allowed=mask)`` call it makes (which a router pays anyway), on the
same scores and costs. Timings are per call with ``perf_counter_ns``, timer cost removed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bandit_router.budget import (
    AccountState,
    Budget,
    BudgetAllocator,
    InMemoryLedger,
    ManualClock,
    hindsight_optimum,
    naive_split,
)
from bandit_router.budget.baselines import run_allocator
from bandit_router.budget.synthetic import synthetic_stream
from bandit_router.policies import make_policy


def paired_ns(
    fn: Callable[[], object], base: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median ns per call of ``fn`` and of ``base``, timed alternately so that machine load
    hits both alike, each minus the median cost of reading the timer."""
    clock = time.perf_counter_ns
    for _ in range(min(repeats, 2000)):  # warm up
        fn()
        base()
    a = np.empty(repeats)
    b = np.empty(repeats)
    e = np.empty(repeats)
    for i in range(repeats):
        t0 = clock()
        fn()
        t1 = clock()
        base()
        t2 = clock()
        t3 = clock()
        a[i], b[i], e[i] = t1 - t0, t2 - t1, t3 - t2
    timer = float(np.median(e))
    return float(np.median(a)) - timer, max(float(np.median(b)) - timer, 0.0)


def speed(K: int, repeats: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    arms = [f"m{k}" for k in range(K)]
    policy = make_policy("linucb", arms, 16, seed=seed)
    scores = policy.score(rng.normal(size=16))
    costs = np.geomspace(1e-5, 5e-4, K) * rng.uniform(0.8, 1.25, K)
    budget = Budget(1.0, expected_queries=10_000)
    mid = AccountState("u", budget, 0.0, spent=0.3, n_decisions=3000)
    cases = [
        ("admitted, sliding bins (default)", {}, mid, {}),
        ("admitted, discrete bins", {"sliding": False}, mid, {}),
        ("admitted, select=value", {"select": "value"}, mid, {}),
        (
            "fallback (nothing clears psi)",
            {},
            AccountState("u", budget, 0.0, spent=0.99995, n_decisions=3000),
            {},
        ),
        ("exhausted", {}, AccountState("u", budget, 0.0, spent=1.0, n_decisions=3000), {}),
        (
            "admitted, with max_cost and allowed mask",
            {},
            mid,
            {"max_cost": float(np.median(costs)), "allowed": np.arange(K) % 3 != 0},
        ),
    ]
    rows = []
    for name, cfg, state, kw in cases:
        alloc = BudgetAllocator(**cfg)
        a = alloc.choose(policy, scores, costs, state, **kw)
        if a.decision is None:
            inner_fn = lambda: None  # noqa: E731
        else:  # the policy call the allocator makes inside, with the same mask
            if a.reason == "admitted":
                mask = (scores.value >= a.threshold * costs) & (costs <= state.remaining)
                if "max_cost" in kw:
                    mask &= (costs <= kw["max_cost"]) & kw["allowed"]
            else:
                mask = np.arange(K) == a.decision.index
            inner_fn = lambda m=mask: policy.choose(scores, allowed=m)  # noqa: E731
        total, inner = paired_ns(
            lambda alloc=alloc, state=state, kw=kw: alloc.choose(
                policy, scores, costs, state, **kw
            ),
            inner_fn,
            repeats,
        )
        rows.append(
            {
                "case": name,
                "reason": a.reason,
                "allocator_us": total / 1e3,
                "policy_choose_us": inner / 1e3,
                "overhead_us": (total - inner) / 1e3,
            }
        )
    ledger = InMemoryLedger(clock=ManualClock(0.0))
    ledger.set_budget("u", Budget(1e9))
    alloc = BudgetAllocator()
    ids = iter(range(10**9))

    def route() -> None:
        i = str(next(ids))
        a = alloc.route(policy, scores, costs, ledger, "u", i)
        ledger.settle(i, a.cost)

    full, _ = paired_ns(route, lambda: None, max(repeats // 4, 100))
    rows.append(
        {
            "case": "route + settle with the in-memory ledger",
            "reason": "admitted",
            "allocator_us": full / 1e3,
            "policy_choose_us": float("nan"),
            "overhead_us": float("nan"),
        }
    )
    return rows


def daily_replay(values: np.ndarray, costs: np.ndarray, budget: float, seed: int) -> float:
    """Oracle replay through the ledger with a daily budget and no known Q: the queries
    arrive uniformly at random over one UTC day, so the allocator paces by arrival rate."""
    from bandit_router.policies import ArmScores

    n, K = values.shape
    rng = np.random.default_rng(seed)
    arms = [f"m{k}" for k in range(K)]
    policy = make_policy("linucb", arms, 1, seed=seed)
    day0 = 86_400.0 * 100
    clock = ManualClock(day0)
    ledger = InMemoryLedger(clock=clock)
    ledger.set_budget("u", Budget(budget, "daily"))
    alloc = BudgetAllocator()
    zeros = np.zeros(K)
    total = 0.0
    for i, t in enumerate(np.sort(rng.uniform(0.0, 86_399.0, n))):
        clock.set(day0 + t)
        a = alloc.route(
            policy, ArmScores(arms, values[i], zeros, values[i]), costs[i], ledger, "u", str(i)
        )
        if a.decision is not None:
            ledger.settle(str(i), a.cost)
            total += float(values[i, a.decision.index])
    return total


def quality(n: int, seeds: list[int], budgets: list[float]) -> list[dict]:
    variants = {
        "allocator (default: sliding bins, surplus)": {},
        "PILOT discrete bins, surplus": {"sliding": False},
        "PILOT discrete bins, select=value": {"sliding": False, "select": "value"},
        "ZCL, no bins": {"bins": 1},
    }
    rows = []
    for rho in budgets:
        acc: dict[str, list[float]] = {}
        for seed in seeds:
            v, c = synthetic_stream(n, 11, seed=seed)
            B = rho * float(c[:, -1].sum())
            opt = hindsight_optimum(v, c, B).value
            acc.setdefault("naive B/Q per query", []).append(naive_split(v, c, B).value / opt)
            acc.setdefault("naive B/Q with carry-over", []).append(
                naive_split(v, c, B, carry_over=True).value / opt
            )
            acc.setdefault("allocator, daily budget, Q unknown (arrival rate)", []).append(
                daily_replay(v, c, B, seed) / opt
            )
            for name, cfg in variants.items():
                acc.setdefault(name, []).append(
                    run_allocator(BudgetAllocator(**cfg), v, c, B).value / opt
                )
        for name, fr in acc.items():
            rows.append(
                {
                    "budget_share": rho,
                    "rule": name,
                    "mean_fraction_of_lp": float(np.mean(fr)),
                    "min_fraction_of_lp": float(np.min(fr)),
                }
            )
    return rows


def real_quality(path: Path, budgets: list[float]) -> list[dict]:
    """The same comparison on a logged outcome table (RouterBench wide format), in file
    order (grouped by task, so the stream is not stationary), with the logged costs."""
    import pandas as pd

    df = pd.read_csv(path)
    cost_cols = [col for col in df.columns if col.endswith("|total_cost")]
    v = df[[col.split("|")[0] for col in cost_cols]].to_numpy(float)
    c = df[cost_cols].to_numpy(float)
    rows = []
    for rho in budgets:
        B = rho * float(c.max(axis=1).sum())
        opt = hindsight_optimum(v, c, B).value
        for rule, val in (
            ("naive B/Q per query", naive_split(v, c, B).value),
            ("naive B/Q with carry-over", naive_split(v, c, B, carry_over=True).value),
            (
                "allocator (default: sliding bins, surplus)",
                run_allocator(BudgetAllocator(), v, c, B).value,
            ),
            (
                "PILOT discrete bins, select=value",
                run_allocator(BudgetAllocator(sliding=False, select="value"), v, c, B).value,
            ),
        ):
            rows.append({"budget_share": rho, "rule": rule, "fraction_of_lp": val / opt})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arms", type=int, default=11)
    ap.add_argument("--repeats", type=int, default=20_000)
    ap.add_argument("--quality", action="store_true", help="also compare with the LP optimum")
    ap.add_argument("--n", type=int, default=2000, help="queries per synthetic stream (quality)")
    ap.add_argument("--seeds", type=int, default=3, help="synthetic streams per budget (quality)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = {
        "machine": f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}, "
        f"numpy {np.__version__}",
        "arms": args.arms,
        "speed": speed(args.arms, args.repeats, args.seed),
    }
    real = (
        Path(__file__).resolve().parents[2] / "shared" / "data" / "llmrouter" / "outcomes_train.csv"
    )
    if args.quality and real.exists():
        out["quality_llmrouter"] = real_quality(real, [0.15, 0.2, 0.25])
    if args.quality:
        out["quality"] = quality(args.n, list(range(1, args.seeds + 1)), [0.05, 0.15, 0.3, 0.6])
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"allocator overhead per decision, K = {args.arms} ({out['machine']}), median of "
        f"{args.repeats} calls"
    )
    print(f"{'case':58s} {'choose us':>10s} {'policy us':>10s} {'overhead us':>12s}")
    for r in out["speed"]:
        print(
            f"{r['case']:58s} {r['allocator_us']:10.2f} {r['policy_choose_us']:10.2f} "
            f"{r['overhead_us']:12.2f}"
        )
    if args.quality:
        print(
            f"\ntotal value as a fraction of the hindsight LP optimum (synthetic streams, n = {args.n}, "
            f"K = 11, {args.seeds} seeds; budget = share of always calling the dearest model)"
        )
        rules = list(dict.fromkeys(r["rule"] for r in out["quality"]))
        shares = list(dict.fromkeys(r["budget_share"] for r in out["quality"]))
        print(f"{'rule':52s} " + " ".join(f"{s:>8.2f}" for s in shares))
        for rule in rules:
            vals = [r["mean_fraction_of_lp"] for r in out["quality"] if r["rule"] == rule]
            print(f"{rule:52s} " + " ".join(f"{v:8.3f}" for v in vals))
    if "quality_llmrouter" in out:
        rows = out["quality_llmrouter"]
        print(
            f"\nthe same on {real.parent.name}/{real.name} (oracle values, logged costs, file "
            "order; budget = share of always calling the dearest model)"
        )
        shares = list(dict.fromkeys(r["budget_share"] for r in rows))
        print(f"{'rule':52s} " + " ".join(f"{s:>8.2f}" for s in shares))
        for rule in dict.fromkeys(r["rule"] for r in rows):
            vals = [r["fraction_of_lp"] for r in rows if r["rule"] == rule]
            print(f"{rule:52s} " + " ".join(f"{v:8.3f}" for v in vals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
