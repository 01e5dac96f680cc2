"""Outcome tables (RouterBench wide format) and their conversion to pairwise preferences.

An outcome table has one row per query: ``sample_id``, ``prompt``, ``eval_name``, one column
per model with the quality of its answer (0/1 or a score in [0, 1]), ``<model>|total_cost``
and perhaps ``<model>|model_response``. On each query a model with a higher score beats one
with a lower score; equal scores are ties. This is how a team with only benchmark logs gets
a prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bandit_router.errors import InvalidInputError
from bandit_router.tables import model_columns, read_table
from bandit_router.text import prompt_text
from bandit_router.warm_start.data import PreferenceData


def load_outcomes(path: str | Path) -> pd.DataFrame:
    """Read an outcome table: CSV, JSONL, Parquet or a RouterBench pickle (a DataFrame).

    Pickles run code when loaded: only load pickles you trust (RouterBench's own files).
    """
    p = Path(path)
    df = read_table(p, allow_pickle=True)
    check_outcome_table(df, source=str(p))
    return df


def check_outcome_table(df: pd.DataFrame, source: str = "the outcome table") -> list[str]:
    """Validate an outcome table; returns its model columns."""
    if len(df) == 0:
        raise InvalidInputError(f"{source} has no rows.")
    if "prompt" not in df.columns:
        raise InvalidInputError(
            f"{source} has no 'prompt' column; an outcome table needs sample_id, prompt, "
            "eval_name and one score column per model."
        )
    models = model_columns(df)
    if len(models) < 2:
        raise InvalidInputError(
            f"{source} has {len(models)} model column(s) ({models}); preferences need at least "
            "two models (numeric score columns, ideally with '<model>|total_cost' companions). "
            "Is this a preference file? Then drop --from-outcomes."
        )
    scores = df[models].to_numpy(dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise InvalidInputError(
            f"{source}: model scores must lie in [0, 1] (the reward scale); found values in "
            f"[{finite.min():g}, {finite.max():g}]. Rescale the score columns first."
        )
    return models


def outcomes_to_preferences(
    df: pd.DataFrame,
    models: Sequence[str] | None = None,
    tol: float = 1e-9,
    source: str = "<outcome table>",
) -> PreferenceData:
    """Every pair of models on every query: higher score wins, equal scores (within ``tol``) tie.

    Rows without a prompt are dropped and counted; a model with a missing (NaN) score on a
    query takes no part in that query's pairs, and those pairs are counted in
    ``dropped["judgements with a missing score"]``. The absolute scores travel along in
    ``PreferenceData.scores`` (used to calibrate the prior on the reward scale).

    >>> df = pd.DataFrame({"prompt": ["q1", "q2"], "m1": [1.0, 0.0], "m2": [0.0, 0.0],
    ...                    "m3": [1.0, 1.0]})
    >>> d = outcomes_to_preferences(df)
    >>> d.n_pairs, d.win_rates().round(2).tolist()
    (6, [0.5, 0.12, 0.88])
    """
    model_list = list(models) if models is not None else check_outcome_table(df, source)
    absent = [m for m in model_list if m not in df.columns]
    if absent:
        raise InvalidInputError(f"{source} has no column(s) {absent}.")
    texts = [prompt_text(v) for v in df["prompt"]]
    keep = np.array([t is not None for t in texts])
    dropped = {"missing prompt": int((~keep).sum())}
    if not keep.any():
        raise InvalidInputError(f"{source}: every row lacks a prompt.")
    kept_texts = [t for t, k in zip(texts, keep, strict=True) if k]
    raw = df[model_list].to_numpy(dtype=np.float64)[keep]
    # identical prompts (a benchmark may repeat one) share one query: average their scores
    index: dict[str, int] = {}
    qid = np.array([index.setdefault(t, len(index)) for t in kept_texts])
    nq, K = len(index), len(model_list)
    total = np.zeros((nq, K))
    count = np.zeros((nq, K))
    finite = np.isfinite(raw)
    np.add.at(total, qid, np.where(finite, raw, 0.0))
    np.add.at(count, qid, finite.astype(float))
    scores = np.divide(total, count, out=np.full((nq, K), np.nan), where=count > 0)
    ia, ib = np.triu_indices(K, k=1)
    sa, sb = scores[:, ia], scores[:, ib]  # (nq, P)
    valid = np.isfinite(sa) & np.isfinite(sb)
    diff = sa - sb
    y = np.where(diff > tol, 1.0, np.where(diff < -tol, 0.0, 0.5))
    # a pair with a NaN score on either side cannot be judged: counted, never silent
    dropped["judgements with a missing score"] = int((~valid).sum())
    q_idx, p_idx = np.nonzero(valid)
    if len(q_idx) == 0:
        raise InvalidInputError(f"{source}: no query has scores for two models.")
    return PreferenceData(
        prompts=list(index),
        models=model_list,
        query=q_idx,
        a=ia[p_idx],
        b=ib[p_idx],
        y=y[q_idx, p_idx],
        scores=scores,
        dropped=dropped,
        source=source,
    )
