"""``bandit-router users add/list/budget``: the users (tenants) and their budgets.

They work on the configured durable store, as ``route`` and ``serve`` do; a budget is USD
per period (``total``, ``daily``, ``monthly`` or ``rolling:<seconds>``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bandit_router.cli.route import _money, config_option, db_option, open_stores

users_app = typer.Typer(
    help="Add users, list them with their spend, change a budget. Example: "
    "bandit-router users add alice --budget 5 --period monthly",
    no_args_is_help=True,
)

PERIOD_HELP = "total, daily, monthly or rolling:<seconds> (UTC calendar periods)."


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")


def _budget(amount: float | None, period: str, expected: int | None):
    from bandit_router.budget import Budget

    if amount is None:
        if expected is not None:
            raise typer.BadParameter("--expected-queries needs --budget", param_hint="--budget")
        return None
    return Budget(amount, period, expected_queries=expected)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="The user's name (an API key is issued by serve)."),
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, help="USD per period (default: the config's default budget)."
    ),
    period: str = typer.Option("monthly", "--period", help=PERIOD_HELP),
    expected_queries: int | None = typer.Option(
        None, "--expected-queries", min=1, help="Queries expected per period (paces the spend)."
    ),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Add a user with a budget; without --budget the config's default budget applies.

    Example:

        bandit-router users add alice --budget 5 --period monthly
    """
    from bandit_router.stores import UserRecord

    with open_stores(config, db) as (cfg, stores):
        if stores.users.get(name) is not None:
            raise typer.BadParameter(
                f"user {name!r} exists; change their budget with `bandit-router users budget "
                f"{name} --budget USD`",
                param_hint="NAME",
            )
        b = _budget(budget, period, expected_queries) or cfg.router.budget()
        stores.users.put(UserRecord(name, b))
        if b is not None:
            stores.ledger.set_budget(name, b)
    typer.echo(f"added {name}: " + (f"{_money(b.amount_usd)} {b.period}" if b else "no budget"))


@users_app.command("budget")
def budget_cmd(
    name: str = typer.Argument(..., help="An existing user."),
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, help="USD per period; leave out with --unlimited."
    ),
    period: str = typer.Option("monthly", "--period", help=PERIOD_HELP),
    expected_queries: int | None = typer.Option(
        None, "--expected-queries", min=1, help="Queries expected per period (paces the spend)."
    ),
    unlimited: bool = typer.Option(False, "--unlimited", help="Remove the user's budget."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Change a user's budget (what was spent in the current period is kept).

    Example:

        bandit-router users budget alice --budget 20 --period daily
    """
    from bandit_router.stores import UserRecord

    if unlimited == (budget is not None):
        raise typer.BadParameter("give --budget USD or --unlimited", param_hint="--budget")
    with open_stores(config, db) as (_, stores):
        if stores.users.get(name) is None:
            raise typer.BadParameter(
                f"no user {name!r}; add them first: bandit-router users add {name}",
                param_hint="NAME",
            )
        b = _budget(budget, period, expected_queries)
        stores.users.put(UserRecord(name, b))
        if b is not None:
            stores.ledger.set_budget(name, b)
    typer.echo(f"{name}: " + (f"{_money(b.amount_usd)} {b.period}" if b else "no budget"))


@users_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per user."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """List the users with their budget, spend, holds and reset time.

    Example:

        bandit-router users list --json
    """
    from bandit_router.router import _iso

    rows = []
    with open_stores(config, db) as (_, stores):
        for u in stores.users.list():
            row = {"user": u.name, "budget": None, "period": None, "spent": None}
            if u.budget is not None:
                s = stores.ledger.state(u.name)
                row.update(
                    budget=u.budget.amount_usd,
                    period=str(u.budget.period),
                    spent=s.spent,
                    reserved=s.reserved,
                    remaining=s.remaining,
                    resets_at=_iso(s.resets_at),
                )
            rows.append(row)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    if not rows:
        typer.echo("no users yet; add one: bandit-router users add alice --budget 5")
        return
    typer.echo(f"{'user':<20} {'budget':>12} {'period':>10} {'spent':>12} {'left':>12}  resets")
    for r in rows:
        if r["budget"] is None:
            typer.echo(f"{r['user']:<20} {'unlimited':>12}")
            continue
        typer.echo(
            f"{r['user']:<20} {_money(r['budget']):>12} {r['period']:>10} "
            f"{_money(r['spent']):>12} {_money(r['remaining']):>12}  {r['resets_at'] or '-'}"
        )
