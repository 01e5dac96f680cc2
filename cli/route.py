"""``bandit-router route`` and ``bandit-router feedback``: one decision from the shell.

Both run on the configured durable store (the database of ``bandit-router serve``), so a
shell user routes and learns without a server: config (``--config`` or
``$BANDIT_ROUTER_CONFIG``, else the packaged example) -> ``open_router_stores`` ->
``Router.from_config`` (latest snapshot + the feedback logged after it) -> one call. Every
command first settles decisions whose feedback wait time is over; the router writes a
snapshot every ``router.snapshot_every`` feedback, so a start replays at most that many.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from bandit_router.cli.options import DB_HELP

CONFIG_HELP = (
    "Router config file (YAML, as for `bandit-router serve`; default: $BANDIT_ROUTER_CONFIG, "
    "else the packaged example)."
)


def register(app: typer.Typer) -> None:
    app.command("route")(route)
    app.command("feedback")(feedback)


def config_option() -> Any:
    return typer.Option(None, "--config", help=CONFIG_HELP)


def db_option() -> Any:
    return typer.Option(None, "--db", help=DB_HELP)


def load_serve_config(config: Path | None, db: str | None) -> Any:
    """The validated config (``ServeConfig``) of ``--config`` / ``$BANDIT_ROUTER_CONFIG``,
    with ``--db`` overriding its database."""
    from bandit_router.config_file import load_config

    if config is None and os.environ.get("BANDIT_ROUTER_CONFIG", "").strip():
        config = Path(os.environ["BANDIT_ROUTER_CONFIG"].strip())
    cfg = load_config(config)
    if db is not None:
        cfg = dataclasses.replace(cfg, database_url=db)
    return cfg


@contextlib.contextmanager
def open_stores(config: Path | None, db: str | None) -> Iterator[tuple[Any, Any]]:
    """(config, durable stores) of the configured database; closed on exit."""
    from bandit_router.storage import open_router_stores
    from bandit_router.storage.config import resolve_database_url

    cfg = load_serve_config(config, db)
    url = resolve_database_url(cfg.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    stores = open_router_stores(url)
    try:
        yield cfg, stores
    finally:
        stores.close()


@contextlib.contextmanager
def open_router(config: Path | None, db: str | None, *, quiet: bool = True) -> Iterator[Any]:
    """A ``Router`` restored from the configured store (expired decisions settled)."""
    from bandit_router.cli.serve import build_router

    with open_stores(config, db) as (cfg, stores):
        router = build_router(cfg, stores, progress=not quiet)
        router.expire()
        yield router


def _money(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "unlimited"
    return f"${x:.6f}" if x < 1 else f"${x:,.2f}"


def route(
    text: str = typer.Argument(..., help="The prompt to route (quote it)."),
    user: str = typer.Option(..., "--user", "-u", help="Whose budget pays for the query."),
    allowed: str | None = typer.Option(
        None, "--allowed", help="Comma list of the models this query may go to (default: all)."
    ),
    max_cost: float | None = typer.Option(
        None, "--max-cost", min=0.0, help="Refuse models whose estimated cost is above this USD."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as one JSON object."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Pick a model for one prompt under the user's budget and record the decision.

    Prints the model, the decision id (give it to `bandit-router feedback`), the estimated cost, the propensity and what is left of the budget. When no model may be called (budget exhausted, or --allowed / --max-cost exclude all), it says why for every model and exits with code 1.

    Example:

        bandit-router route "Write a haiku about autumn" --user alice --json
    """
    names = [a.strip() for a in allowed.split(",") if a.strip()] if allowed else None
    with open_router(config, db) as router:
        r = router.route(user, text, allowed=names, max_cost=max_cost)
    if as_json:
        typer.echo(json.dumps(r.as_dict()))
    elif r.ok:
        resets = r.as_dict()["budget_resets_at"]
        typer.echo(f"model:          {r.model}")
        typer.echo(f"decision_id:    {r.decision_id}")
        typer.echo(f"estimated cost: {_money(r.estimated_cost)}   propensity {r.propensity:.3f}")
        typer.echo(
            f"budget left:    {_money(r.budget_remaining)}"
            + (f" (resets {resets})" if resets else "")
            + f"   reason: {r.reason}"
        )
        typer.echo(f"send feedback:  bandit-router feedback {r.decision_id} --reward 1")
    else:
        typer.echo(r.message)
        for model, why in r.excluded.items():
            typer.echo(f"  {model}: {why}")
    if not r.ok:
        raise typer.Exit(1)


def feedback(
    decision_id: str = typer.Argument(..., help="The decision_id that `route` printed."),
    reward: float = typer.Option(
        ..., "--reward", "-r", help="How good the answer was, in the reward range (0..1)."
    ),
    cost: float | None = typer.Option(
        None, "--cost", min=0.0, help="What the call actually cost, USD (default: from tokens)."
    ),
    input_tokens: int | None = typer.Option(
        None, "--input-tokens", min=0, help="Prompt tokens of the call (prices the cost)."
    ),
    output_tokens: int | None = typer.Option(
        None, "--output-tokens", min=0, help="Answer tokens of the call (prices the cost)."
    ),
    user: str | None = typer.Option(
        None, "--user", "-u", help="Only accept the feedback if the decision is this user's."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Tell the router how good a routed answer was; it learns and settles the cost.

    The cost is --cost, else --input-tokens/--output-tokens times the model's prices, else the estimate. The same feedback twice is accepted once; different feedback on the same decision, an unknown decision or one whose wait time is over is an error.

    Example:

        bandit-router feedback 0190f3a2-... --reward 1 --cost 0.0004
    """
    from bandit_router.errors import InvalidInputError

    usage = None
    if (input_tokens is None) != (output_tokens is None):
        raise InvalidInputError("give both --input-tokens and --output-tokens, or neither.")
    if input_tokens is not None:
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    with open_router(config, db) as router:
        out = router.feedback(decision_id, reward, cost=cost, usage=usage, user=user)
    if as_json:
        typer.echo(json.dumps(out.as_dict()))
        return
    if out.duplicate:
        typer.echo(f"already recorded: feedback {out.feedback_id} on {out.model} (nothing changed)")
        return
    typer.echo(
        f"recorded feedback {out.feedback_id}: {out.model} reward {out.reward:g}, cost "
        f"{_money(out.cost)} (estimated {_money(out.estimated_cost)})"
        + ("" if out.applied else "; the model is retired, nothing learned")
    )
