"""The ``bandit-router`` command. Each command group lives in a module of its own."""

from __future__ import annotations

import sys

import typer

from bandit_router.errors import BanditRouterError

app = typer.Typer(
    name="bandit-router",
    help="Self-hosted LLM router that learns online: route queries, replay logs, inspect regret. "
    "Example: bandit-router serve",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Self-hosted LLM router that learns online: route queries, replay logs, inspect regret."""


def _register() -> None:
    from bandit_router.cli import demo

    demo.register(app)

    from bandit_router.cli import serve

    serve.register(app)

    from bandit_router.cli import warm_start

    warm_start.register(app)

    from bandit_router.cli import runs

    runs.register(app)

    from bandit_router.cli import evaluate, replay, simulate

    replay.register(app)
    simulate.register(app)
    evaluate.register(app)

    from bandit_router.cli import models, route, users

    route.register(app)
    users.register(app)
    models.register(app)

    from bandit_router.cli import db

    db.register(app)


_register()


def main() -> None:
    """Console-script entry point: user errors become one clear line and exit code 2."""
    try:
        app()
    except BanditRouterError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
