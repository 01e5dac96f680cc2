"""Speed of one decide-and-learn event, and of a routed query, against the peers.

Policy event = score all arms for a context, choose one, update the chosen arm with its
reward. The same stream (contexts and per-arm Bernoulli rewards from a linear world) goes
through bandit-router's LinUCB, MABWiser's LinUCB, river's LinUCBDisjoint and Vowpal
Wabbit's ``--cb_explore_adf`` (driven from Python: its examples are text lines, built per
event). ``bandit_router+budget`` is the same event with the budget allocator between score
and choose (ledger state, prices, selection); its difference to ``bandit_router`` is the
allocator's overhead.

Routed query = ``Router.route`` (precomputed embedding, in-memory stores, a user with a
daily budget) + ``Router.feedback``, against ParetoBandit's ``route`` + ``process_feedback``
on the same stream, K and d, in its fast configuration: precomputed vectors
(``FeatureService.for_precomputed``: no encoder, no PCA), stationary (``forgetting_factor=1``,
its cheaper update), its budget pacer (the budget, as ours), its in-memory context store and
defaults otherwise. ``router`` gets the (d - 1)-d embedding (its featurizer normalises and
appends the bias), ParetoBandit the d-d context; ``router 512->d`` gets a 512-d embedding
through a learned projection (the prior's featurizer). ``router floor`` is a bare router
(``benchmarks/router_floor.py``: one compiled score-and-choose call, one compiled update,
dicts, no validation, pacing, propensity or log): what any Python router with this API and
state costs at the least on this machine, so ``ParetoBandit / router floor`` bounds the
ratio the real router can reach in the same run.

bandit-router's rows use the optional compiled kernels when numba is installed (the extra
``fast``, part of ``bench``); the ``numpy`` rows are the same events without them (the
default install's path).

Every event is timed on its own; the libraries alternate in ``--rounds`` interleaved
rounds, so a slow phase of the machine (absolute times swing 30-90 us within minutes)
does not land on one library only. The table shows each library's minimum over rounds of
the per-round median (the figure the ratios use), the overall median and p90, and a
calibration figure: the median cost of one small numpy call (``np.add`` of two 3-vectors
into a third), timed in the same rounds.

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

import logging  # noqa: E402

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


def bandit_router_events(X, R, kernels: bool = True):
    from bandit_router.policies import LinUCB

    pol = LinUCB([f"m{k}" for k in range(K)], X.shape[1], alpha=1.0, seed=0)
    if not kernels:
        pol.state.kernels = None

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


def bandit_router_numpy_events(X, R):
    """The policy event on numpy alone (without the optional compiled kernels)."""
    return bandit_router_events(X, R, kernels=False)


def bandit_router_float64_events(X, R):
    """The policy event with the float64 scoring state (what d >= 257 used before)."""
    from bandit_router.policies import ridge

    saved = ridge.FLOAT32_FROM_DIM
    ridge.FLOAT32_FROM_DIM = 10**9
    try:
        return bandit_router_events(X, R)
    finally:
        ridge.FLOAT32_FROM_DIM = saved


def _costs() -> np.ndarray:
    return np.geomspace(1e-4, 2e-2, K)  # USD per query, 200x from the cheapest to the dearest


def bandit_router_budget_events(X, R):
    """The policy event with the allocator: score, ``BudgetAllocator.choose`` on the
    ledger's state (a daily budget), update."""
    from bandit_router.budget import Budget, BudgetAllocator, InMemoryLedger, ManualClock
    from bandit_router.policies import LinUCB

    pol = LinUCB([f"m{k}" for k in range(K)], X.shape[1], alpha=1.0, seed=0)
    alloc = BudgetAllocator()
    ledger = InMemoryLedger(clock=ManualClock(0.0))
    ledger.set_budget("u", Budget(1e6, "daily"))
    costs = _costs()
    costs.flags.writeable = False  # as the Router's cost model gives them (one array per length)

    def event(i: int) -> None:
        x = X[i]
        a = alloc.choose(pol, pol.score(x), costs, ledger.state("u"))
        d = a.decision
        pol.update(d.arm, x, R[i, d.index])

    return event


def _router(d: int, in_dim: int, projection=None):
    from bandit_router.budget import Budget, ManualClock
    from bandit_router.catalogue import ModelSpec
    from bandit_router.features import Featurizer
    from bandit_router.policies import LinUCB
    from bandit_router.router import Router

    names = [f"m{k}" for k in range(K)]
    # prices per million tokens: 500 input + 500 output tokens cost _costs()
    specs = [ModelSpec(n, c * 1e3, c * 1e3) for n, c in zip(names, _costs(), strict=True)]
    pol = LinUCB(names, d, alpha=1.0, seed=0)
    router = Router(specs, None, Featurizer(in_dim, projection), pol, clock=ManualClock(0.0))
    router.set_user("u", Budget(1e6, "daily"))
    return router


def router_events(X, R, kernels: bool = True):
    """``Router.route`` (precomputed (d - 1)-d embedding) + ``Router.feedback``."""
    router = _router(X.shape[1], X.shape[1] - 1)
    if not kernels:
        router.policy.state.kernels = None
    E = np.ascontiguousarray(X[:, :-1])

    def event(i: int) -> None:
        r = router.route("u", embedding=E[i], input_tokens=500.0)
        router.feedback(r.decision_id, R[i, r.index])

    return event


def router_numpy_events(X, R):
    """The routed query on numpy alone (without the optional compiled kernels)."""
    return router_events(X, R, kernels=False)


def router_projected_events(X, R):
    """The same with a 512-d embedding and a learned projection 512 -> d - 1 (plus bias)."""
    from bandit_router.features import Projection

    d = X.shape[1]
    rng = np.random.default_rng(1)
    E = rng.standard_normal((X.shape[0], 512))
    proj = Projection(rng.standard_normal((d - 1, 512)) / np.sqrt(512), np.zeros(d - 1))
    router = _router(d, 512, proj)

    def event(i: int) -> None:
        r = router.route("u", embedding=E[i], input_tokens=500.0)
        router.feedback(r.decision_id, R[i, r.index])

    return event


def router_floor_events(X, R):
    """``benchmarks/router_floor.py``: the least a Python router with this API and state
    does per query (a lower bound, not a product)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from router_floor import FloorRouter

    router = FloorRouter([f"m{k}" for k in range(K)], X.shape[1], _costs())
    E = np.ascontiguousarray(X[:, :-1])

    def event(i: int) -> None:
        r = router.route(E[i])
        router.feedback(r.decision_id, R[i, r.index])

    return event


def paretobandit_events(X, R):
    """ParetoBandit's ``route`` (precomputed vectors, budget pacer) + ``process_feedback``."""
    from pareto_bandit import BanditRouter, FeatureService
    from pareto_bandit.budget_pacer import BudgetPacer

    logging.getLogger("pareto_bandit").setLevel(logging.ERROR)
    names = [f"m{k}" for k in range(K)]
    registry = {
        n: {"input_cost_per_m": c * 1e3, "output_cost_per_m": c * 1e3}
        for n, c in zip(names, _costs(), strict=True)
    }
    pb = BanditRouter(
        model_registry=registry,
        feature_service=FeatureService.for_precomputed(X.shape[1]),
        alpha=1.0,
        forgetting_factor=1.0,
        bandit_seed=0,
        budget_pacer=BudgetPacer(float(np.median(_costs()))),
    )
    index = {n: k for k, n in enumerate(names)}

    def event(i: int) -> None:
        model, log = pb.route(X[i], input_tokens=500, output_tokens=500)
        pb.process_feedback(log.request_id, R[i, index[model]])

    return event


PEERS = {
    "bandit_router": bandit_router_events,
    "bandit_router numpy": bandit_router_numpy_events,
    "bandit_router+budget": bandit_router_budget_events,
    "bandit_router float64": bandit_router_float64_events,
    "vowpalwabbit": vw_events,
    "mabwiser": mabwiser_events,
    "river": river_events,
    "router": router_events,
    "router numpy": router_numpy_events,
    "router 512->d": router_projected_events,
    "router floor": router_floor_events,
    "paretobandit": paretobandit_events,
}

# events timed per library and dimension: the slow peers get fewer (medians settle fast)
BUDGET = {
    64: {
        "bandit_router": 5000, "bandit_router numpy": 5000, "bandit_router+budget": 5000,
        "vowpalwabbit": 2000, "mabwiser": 200, "river": 300, "router": 3000,
        "router numpy": 3000, "router 512->d": 3000, "router floor": 3000,
        "paretobandit": 2000,
    },
    512: {
        "bandit_router": 1000, "bandit_router numpy": 1000, "bandit_router float64": 500,
        "vowpalwabbit": 500, "mabwiser": 40, "river": 15, "router": 500,
        "router numpy": 500, "paretobandit": 200,
    },
}  # fmt: skip


def calibration_event():
    """One small numpy call: the unit of per-call overhead on this machine, now."""
    a, b, c = np.ones(3), np.ones(3), np.empty(3)

    def event(i: int) -> None:
        np.add(a, b, out=c)

    return event


def run(d: int, scale: float = 1.0, rounds: int = 5) -> dict:
    """Time every library on the same stream, in interleaved rounds.

    Each library's events are split into ``rounds`` blocks and the blocks alternate
    between libraries, so a slow phase of the machine does not land on one library only.
    Returns per library: ``best`` (minimum over rounds of the per-round median),
    ``median`` and ``p90`` over all events, ``n``.
    """
    budgets = {k: max(rounds, int(v * scale)) for k, v in BUDGET.get(d, BUDGET[512]).items()}
    budgets["calibration"] = 2000 * rounds
    warmup = 50 if d <= 64 else 10
    X, R = stream(max(budgets.values()) + warmup + K, d)
    events, rounds_t, cursor = {}, {}, {}
    for name in budgets:
        make = calibration_event if name == "calibration" else PEERS[name]
        try:
            events[name] = make() if name == "calibration" else make(X, R)
        except ImportError as exc:
            print(f"# {name} is not installed ({exc}); pip install -e '.[bench]'", file=sys.stderr)
            continue
        for i in range(K, K + warmup):
            events[name](i)
        rounds_t[name], cursor[name] = [], K + warmup
    for _ in range(rounds):
        for name, event in events.items():
            n = budgets[name] // rounds
            rounds_t[name].append(time_events(event, cursor[name], n))
            cursor[name] += n
    out = {}
    for name, blocks in rounds_t.items():
        t = np.concatenate(blocks)
        out[name] = {
            "best": float(min(np.median(b) for b in blocks)),
            "median": float(np.median(t)),
            "p90": float(np.percentile(t, 90)),
            "n": len(t),
        }
    return out


RATIOS = (  # (what, numerator, denominator, target)
    ("Vowpal Wabbit / policy event", "vowpalwabbit", "bandit_router", 15.0),
    ("MABWiser / policy event", "mabwiser", "bandit_router", 100.0),
    ("Vowpal Wabbit / policy event (numpy)", "vowpalwabbit", "bandit_router numpy", None),
    ("MABWiser / policy event (numpy)", "mabwiser", "bandit_router numpy", None),
    ("river / policy event", "river", "bandit_router", None),
    ("float64 state / float32 state", "bandit_router float64", "bandit_router", 2.0),
    ("ParetoBandit / router (route + feedback)", "paretobandit", "router", 10.0),
    ("ParetoBandit / router (numpy)", "paretobandit", "router numpy", None),
    ("ParetoBandit / router 512->d", "paretobandit", "router 512->d", None),
    ("ParetoBandit / router floor (bound)", "paretobandit", "router floor", None),
    # the whole path over the bare floor: what the Router's own work costs, in floors
    ("router / router floor", "router", "router floor", None),
)


def ratios(res: dict) -> dict:
    """The ratios of the ``best`` figures, and the allocator's overhead over the event."""
    out = {}
    for what, num, den, target in RATIOS:
        if num in res and den in res:
            out[what] = {"ratio": res[num]["best"] / res[den]["best"], "target": target}
    if "bandit_router+budget" in res and "bandit_router" in res:
        over = res["bandit_router+budget"]["best"] - res["bandit_router"]["best"]
        out["allocator overhead / policy event"] = {
            "ratio": over / res["bandit_router"]["best"],
            "target_max": 1.0,
            "overhead_us": over,
        }
    return out


def _numba_version() -> str:
    import numba

    return numba.__version__


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per dimension")
    parser.add_argument("--dims", default="64,512", help="comma-separated context dimensions")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per library")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the number of timed events"
    )
    args = parser.parse_args()
    for d in (int(v) for v in args.dims.split(",")):
        res = run(d, args.scale, args.rounds)
        rat = ratios(res)
        if args.json:
            print(
                json.dumps(
                    {
                        "K": K,
                        "d": d,
                        "us_per_event_best_round": {k: round(v["best"], 2) for k, v in res.items()},
                        "us_per_event_median": {k: round(v["median"], 2) for k, v in res.items()},
                        "ratios": {k: round(v["ratio"], 2) for k, v in rat.items()},
                    }
                )
            )
            continue
        ours = res["bandit_router"]["best"]
        print(f"\nK = {K} arms, d = {d}; microseconds per event ({args.rounds} interleaved rounds)")
        print(
            f"{'library':<22} {'best round':>10} {'median':>9} {'p90':>9} {'events':>7}"
            f" {'/ policy event':>15}"
        )
        for name, v in res.items():
            print(
                f"{name:<22} {v['best']:>10.2f} {v['median']:>9.1f} {v['p90']:>9.1f} {v['n']:>7}"
                f" {v['best'] / ours:>15.2f}"
            )
        print("ratios of the best-round medians (target):")
        for what, v in rat.items():
            target = v.get("target")
            goal = f">= {target:g}" if target else ""
            if "target_max" in v:
                goal = f"<= {v['target_max']:g} ({v['overhead_us']:.1f} us)"
            print(f"  {what:<42} {v['ratio']:>7.2f}  {goal}")
    if not args.json:
        from bandit_router.policies import _kernels

        kern = "numba " + _numba_version() if _kernels.KERNELS is not None else "not installed"
        print(f"\n(cpu count {os.cpu_count()}, numpy {np.__version__}, compiled kernels: {kern})")


if __name__ == "__main__":
    main()
