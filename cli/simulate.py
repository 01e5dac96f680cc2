"""``bandit-router simulate``: policies on a synthetic stream whose expected rewards are known."""

from __future__ import annotations

from pathlib import Path

import typer

from bandit_router.cli.checks import usage
from bandit_router.cli.options import db_option, workers_option
from bandit_router.cli.replay import (
    LOG_SUFFIXES,
    emit,
    parse_fractions,
    split_policies,
    with_policy_settings,
)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    policy: list[str] = typer.Option(
        ["linucb", "lints", "epsilon-greedy", "random"],
        "--policy",
        "-p",
        help="Policy name(s): repeat or comma-separate.",
    ),
    env: str = typer.Option(
        "linear", "--env", help="linear (mean x'theta) or logistic (mean sigmoid(4 x'theta))."
    ),
    queries: int = typer.Option(2000, "--queries", "-n", min=10, help="Length of the stream."),
    arms: int = typer.Option(4, "--arms", min=2, help="Number of models."),
    dim: int = typer.Option(8, "--dim", min=2, help="Context dimension (with the bias term)."),
    drift: bool = typer.Option(
        False, "--drift", help="Redraw every model's weights halfway (abrupt drift)."
    ),
    delay: str = typer.Option(
        "none",
        "--delay",
        help="Feedback delay in queries: none, fixed:K, geometric:MEAN, poisson:MEAN, uniform:LO-HI.",
    ),
    noise: float = typer.Option(
        0.0, "--noise", min=0.0, help="Sd of Gaussian noise on the revealed reward."
    ),
    budget_fraction: str | None = typer.Option(
        None,
        "--budget-fraction",
        help="Budget as a share of always using the most expensive model (comma list sweeps).",
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Number of seeds (stream orders)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the environment and the first run."),
    setting: list[str] = typer.Option(
        [], "--set", help="Policy option KEY=VALUE (e.g. forgetting=0.995); repeatable."
    ),
    workers: int = workers_option(),
    log: Path | None = typer.Option(
        None, "--log", help="Write the decision logs (JSONL or CSV) for `bandit-router evaluate`."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per run."),
    save: bool = typer.Option(
        True, "--save/--no-save", help="Save runs and curves to the database."
    ),
    db: str | None = db_option(),
) -> None:
    """Run policies on a synthetic stream with known expected rewards (exact regret).

    Linear or logistic rewards, optional drift, delays and budgets.

    Example:

        bandit-router simulate -p linucb,lints --queries 5000 --drift --seeds 5
    """
    from bandit_router.cli.checks import (
        check_fixed_models,
        check_output_file,
        check_replay_options,
        policy_settings,
        usage_errors,
    )
    from bandit_router.simulations.sweep import grid, run_sweep
    from bandit_router.simulations.synthetic import make_synthetic_problem

    names = split_policies(policy)
    if env not in ("linear", "logistic"):
        raise usage("--env", f"use linear or logistic, got {env!r}")
    settings, notes = policy_settings(names, setting)
    check_fixed_models(names, [f"arm{k}" for k in range(arms)], where="the synthetic stream")
    base = check_replay_options(order="given" if drift else "shuffle", delay=delay, noise=noise)
    fractions = parse_fractions(budget_fraction)
    check_output_file(log, "--log", LOG_SUFFIXES)
    with usage_errors("--env/--arms/--dim"):
        problem = make_synthetic_problem(
            env, n=queries, n_arms=arms, dim=dim, drift=drift, seed=seed
        )
    specs = grid(names, range(seed, seed + seeds), fractions, base=base)
    specs = with_policy_settings(specs, settings)
    results = run_sweep(problem, specs, workers=workers, log_decisions=log is not None)
    emit(
        results,
        kind="simulate",
        dataset=problem.name,
        as_json=as_json,
        save=save,
        db=db,
        log_path=log,
        notes=notes,
    )
