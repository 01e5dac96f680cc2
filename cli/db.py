"""``bandit-router db upgrade / status / prune``: the store's schema and its retention.

A thin layer over :mod:`storage.migrate` and :mod:`storage.maintenance`. Every command
takes ``--db`` (default: ``$BANDIT_ROUTER_DATABASE_URL``, else the SQLite file in the user
data directory).
"""

from __future__ import annotations

import json

import typer

from bandit_router.cli.options import db_option

db_app = typer.Typer(
    help="The database of the router: apply migrations, show the schema revision and row "
    "counts, prune old history. Example: bandit-router db status",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to the root app."""
    app.add_typer(db_app, name="db")


def _engine(db: str | None):
    from bandit_router.storage.config import resolve_database_url
    from bandit_router.storage.engine import make_engine

    return make_engine(resolve_database_url(db))


@db_app.command("upgrade")
def upgrade_cmd(db: str | None = db_option()) -> None:
    """Migrate the database to the newest schema this bandit-router ships.

    A database written by a newer bandit-router is refused and left untouched.

    Example:

        bandit-router db upgrade --db postgresql+psycopg://router@db-host/router
    """
    from bandit_router.storage.config import display_url
    from bandit_router.storage.migrate import current_revisions, upgrade

    engine = _engine(db)
    try:
        with engine.connect() as conn:
            before = current_revisions(conn)
        after = upgrade(engine)
    finally:
        engine.dispose()
    where = display_url(engine.url)
    if set(before) == set(after):
        typer.echo(f"{where} is at the newest schema ({', '.join(after)}); nothing to do.")
    else:
        typer.echo(
            f"upgraded {where} from {', '.join(before) or 'an empty database'} to "
            f"{', '.join(after)}."
        )


@db_app.command("status")
def status_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    db: str | None = db_option(),
) -> None:
    """Show the schema revision, the newest one this code ships, and row counts.

    Changes nothing; exits with an error for a database from a newer bandit-router.

    Example:

        bandit-router db status --json
    """
    from bandit_router.storage.config import display_url
    from bandit_router.storage.errors import SchemaVersionError
    from bandit_router.storage.maintenance import status
    from bandit_router.storage.migrate import _check_known

    engine = _engine(db)
    try:
        info = status(engine)
        where = display_url(engine.url)
        try:
            _check_known(tuple(info["current"]), engine, _migrations_dir())
            info["known"] = True
        except SchemaVersionError as exc:
            info["known"] = False
            info["error"] = str(exc)
    finally:
        engine.dispose()
    info["database"] = where
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        current = ", ".join(info["current"]) or "none (an empty database)"
        typer.echo(f"database  {where}")
        typer.echo(f"revision  {current}")
        typer.echo(f"head      {', '.join(info['head'])}")
        width = max(len(t) for t in info["counts"])
        for table, n in info["counts"].items():
            typer.echo(f"  {table:<{width}}  {'-' if n is None else n:>10}")
    if not info["known"]:
        from bandit_router.storage.errors import SchemaVersionError

        raise SchemaVersionError(info["error"])
    if not info["up_to_date"] and not as_json:
        typer.echo("the schema is behind: run `bandit-router db upgrade`.")


def _migrations_dir():
    from bandit_router.storage.migrate import MIGRATIONS_DIR

    return MIGRATIONS_DIR


@db_app.command("prune")
def prune_cmd(
    older_than: str = typer.Option(
        ...,
        "--older-than",
        help="Delete history older than this: 30d, 12h, 90m, 3600s or 2w.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only count what would be deleted; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object."),
    db: str | None = db_option(),
) -> None:
    """Delete old decisions, feedback, ledger entries and snapshots.

    Keeps what the router still needs: decisions waiting for feedback, open reservations,
    the spend inside rolling budget windows, the latest snapshot and all feedback after it
    (the learned state still rebuilds exactly).

    Example:

        bandit-router db prune --older-than 30d --dry-run
    """
    from bandit_router.storage import open_store
    from bandit_router.storage.maintenance import parse_duration, prune

    seconds = parse_duration(older_than)
    with open_store(db) as store:
        counts = prune(store.engine, seconds, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "deleted": counts}, indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    parts = ", ".join(f"{n} {table}" for table, n in counts.items())
    typer.echo(f"{verb} {parts} (older than {older_than}).")
