"""``bandit-router models add/retire/price``: change the catalogue of a running setup.

Adding or retiring a model changes the learned policy (a new arm starts from the prior,
else from the pooled mean of the others; a retired arm's state is dropped), so these go
through the ``Router`` on the configured store, which writes a snapshot at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bandit_router.cli.route import config_option, db_option, open_router, open_stores

models_app = typer.Typer(
    help="Add, retire and reprice models. Example: bandit-router models add tiny "
    "--input-price 0.05 --output-price 0.2",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.command("add")
def add(
    name: str = typer.Argument(..., help="The model's name (as its provider spells it)."),
    input_price: float = typer.Option(
        ..., "--input-price", min=0.0, help="USD per million input tokens."
    ),
    output_price: float = typer.Option(
        ..., "--output-price", min=0.0, help="USD per million output tokens."
    ),
    per_call: float = typer.Option(0.0, "--per-call", min=0.0, help="USD per call on top."),
    expected_output_tokens: float = typer.Option(
        256.0, "--expected-output-tokens", min=0.0, help="Typical answer length (learned later)."
    ),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Add a model (or bring a retired one back); it starts from the prior if the prior knows it, else from the pooled mean of the other models.

    Example:

        bandit-router models add tiny --input-price 0.05 --output-price 0.2
    """
    from bandit_router.catalogue import ModelSpec

    spec = ModelSpec(name, input_price, output_price, per_call, expected_output_tokens)
    with open_router(config, db) as router:
        router.add_model(spec)
        active = router.models
    typer.echo(f"added {name}; active models: {', '.join(active)}")


@models_app.command("retire")
def retire(
    name: str = typer.Argument(..., help="An active model."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Stop routing to a model; feedback still pending on its decisions settles their cost.

    Example:

        bandit-router models retire demo-large
    """
    with open_router(config, db) as router:
        router.retire_model(name)
        active = router.models
    typer.echo(f"retired {name}; active models: {', '.join(active)}")


@models_app.command("price")
def price(
    name: str = typer.Argument(..., help="A model of the catalogue."),
    input_price: float | None = typer.Option(
        None, "--input-price", min=0.0, help="New USD per million input tokens."
    ),
    output_price: float | None = typer.Option(
        None, "--output-price", min=0.0, help="New USD per million output tokens."
    ),
    per_call: float | None = typer.Option(None, "--per-call", min=0.0, help="New USD per call."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """Change a model's prices; new decisions are estimated with them at once.

    Example:

        bandit-router models price demo-large --input-price 2.5 --output-price 10
    """
    if input_price is None and output_price is None and per_call is None:
        raise typer.BadParameter(
            "give --input-price, --output-price and/or --per-call", param_hint="--input-price"
        )
    with open_router(config, db) as router:
        spec = router.set_price(
            name,
            input_price_per_mtok=input_price,
            output_price_per_mtok=output_price,
            price_per_call=per_call,
        )
    typer.echo(
        f"{name}: ${spec.input_price_per_mtok:g} / ${spec.output_price_per_mtok:g} per million "
        f"input / output tokens, ${spec.price_per_call:g} per call"
    )


@models_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per model."),
    config: Path | None = config_option(),
    db: str | None = db_option(),
) -> None:
    """List the stored catalogue: prices and status (active or retired).

    Example:

        bandit-router models list
    """
    with open_stores(config, db) as (cfg, stores):
        records = list(stores.models.list())
        if not records:  # nothing routed yet: the config's catalogue
            from bandit_router.stores import ModelRecord

            records = [ModelRecord(s) for s in cfg.router.models]
    for r in records:
        s = r.spec
        row = {
            "model": s.name,
            "status": r.status,
            "input_price_per_mtok": s.input_price_per_mtok,
            "output_price_per_mtok": s.output_price_per_mtok,
            "price_per_call": s.price_per_call,
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            typer.echo(
                f"{s.name:<28} {r.status:<8} ${s.input_price_per_mtok:g} / "
                f"${s.output_price_per_mtok:g} per M tokens"
                + (f", ${s.price_per_call:g} per call" if s.price_per_call else "")
            )
