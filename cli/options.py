"""Options shared by several commands, defined once so their names and help stay alike."""

from __future__ import annotations

from typing import Any

import typer

DB_HELP = (
    "Database URL or SQLite file (default: $BANDIT_ROUTER_DATABASE_URL, else "
    "bandit-router.db in the user's data directory)."
)


def db_option() -> Any:
    """``--db URL``: where runs are stored."""
    return typer.Option(None, "--db", help=DB_HELP)


def workers_option() -> Any:
    """``--workers N``: parallel processes of a sweep."""
    return typer.Option(2, "--workers", min=1, help="Parallel processes.")
