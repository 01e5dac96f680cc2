"""Outcome tables (RouterBench wide format) and their conversion to pairwise preferences.

An outcome table has one row per query: ``sample_id``, ``prompt``, ``eval_name``, one column
per model with the quality of its answer (0/1 or a score in [0, 1]), ``<model>|total_cost``
and perhaps ``<model>|model_response``. On each query a model with a higher score beats one
with a lower score; equal scores are ties. This is how a team with only benchmark logs gets
a prior.

``load_outcomes`` is the one loader of such tables (the simulator and the warm start both
read them through it): it returns an ``OutcomeTable`` (arrays ``(n, K)`` of scores and
costs, prompts, tasks, sample ids, and the source ``frame``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bandit_router.errors import InvalidInputError
from bandit_router.tables import COST_SUFFIX, model_columns
from bandit_router.tables import read_table as _read_table
from bandit_router.text import prompt_text
from bandit_router.warm_start.data import PreferenceData

#: suffix of a model's logged answer column (ignored)
RESPONSE_SUFFIX = "|model_response"


class OutcomeTableError(InvalidInputError):
    """An outcome table cannot be used: missing columns, NaN scores, negative costs..."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, JSONL, Parquet or pickled DataFrame (RouterBench's ``.pkl``) by suffix."""
    try:
        return _read_table(path, allow_pickle=True)  # RouterBench pickles: trusted input only
    except InvalidInputError as exc:
        raise OutcomeTableError(str(exc)) from None


@dataclass
class OutcomeTable:
    """A validated full-information outcome table as arrays.

    ``scores`` and ``costs`` have shape ``(n, K)`` in the order of ``models``; ``prompts``,
    ``tasks`` and ``sample_ids`` have length ``n``; ``frame`` keeps the source DataFrame
    (extra columns such as a user column stay available).

    >>> df = pd.DataFrame({"sample_id": ["a", "b"], "prompt": ["p1", "p2"],
    ...     "eval_name": ["t", "t"], "m1": [1.0, 0.0], "m1|total_cost": [0.01, 0.01],
    ...     "m2": [1.0, 1.0], "m2|total_cost": [0.1, 0.2]})
    >>> t = OutcomeTable.from_frame(df)
    >>> t.models, t.scores.shape, t.most_expensive
    (['m1', 'm2'], (2, 2), 'm2')
    """

    models: list[str]
    scores: np.ndarray
    costs: np.ndarray
    prompts: list[str]
    tasks: np.ndarray
    sample_ids: np.ndarray
    frame: pd.DataFrame = field(repr=False)
    source: str = "<frame>"
    dropped_nan_rows: int = 0

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        source: str = "<frame>",
        models: Sequence[str] | None = None,
        nan: str = "error",
        costs: bool = True,
    ) -> OutcomeTable:
        """Validate a wide DataFrame.

        ``nan`` says what to do with rows whose score or cost is missing: ``"error"``
        (default: raise and report how many per model), ``"drop"`` (drop those rows and
        record how many in ``dropped_nan_rows``) or ``"zero"`` (a missing score counts 0).

        ``costs=False`` is the warm start's view (preferences need scores only): cost
        columns may be absent (their costs are NaN), missing scores stay NaN (a model takes
        no part in that query's pairs) and rows without prompt text stay (``prompts`` holds
        None for them; ``outcomes_to_preferences`` counts and drops them).
        """
        if nan not in ("error", "drop", "zero"):
            raise OutcomeTableError(f"nan must be 'error', 'drop' or 'zero', got {nan!r}.")
        if not costs:
            return cls._scores_only(df, source=source, models=models)
        if not isinstance(df, pd.DataFrame) or df.empty:
            raise OutcomeTableError(f"{source}: the table is empty; it needs one row per query.")
        cols = [str(c) for c in df.columns]
        df = df.copy()
        df.columns = cols
        names = list(models) if models is not None else model_columns(df)
        if not names:
            raise OutcomeTableError(
                f"{source}: no model columns found. A RouterBench table has one score column per "
                "model plus '<model>|total_cost'; columns present: " + ", ".join(cols[:12])
            )
        missing = [m for m in names if m not in cols]
        if missing:
            raise OutcomeTableError(f"{source}: model columns {missing} are not in the table.")
        no_cost = [m for m in names if f"{m}{COST_SUFFIX}" not in cols]
        if no_cost:
            raise OutcomeTableError(
                f"{source}: missing cost columns for {no_cost}; add '<model>{COST_SUFFIX}' "
                "(USD per query) for every model, or pass models= to use only those with costs."
            )
        if "prompt" not in cols:
            raise OutcomeTableError(
                f"{source}: no 'prompt' column; the router needs the query text to embed."
            )
        if len(names) < 2:
            raise OutcomeTableError(
                f"{source}: only one model ({names[0]}); routing needs at least two."
            )
        try:
            scores_df = df[names].apply(pd.to_numeric, errors="coerce")
            costs_df = df[[f"{m}{COST_SUFFIX}" for m in names]].apply(
                pd.to_numeric, errors="coerce"
            )
        except Exception as exc:  # pragma: no cover - pandas raises rarely here
            raise OutcomeTableError(f"{source}: scores/costs are not numeric: {exc}") from exc
        bad = scores_df.isna().to_numpy() | costs_df.isna().to_numpy()
        dropped = 0
        if bad.any():
            per_model = {m: int(bad[:, k].sum()) for k, m in enumerate(names) if bad[:, k].any()}
            n_rows = int(bad.any(axis=1).sum())
            if nan == "error":
                raise OutcomeTableError(
                    f"{source}: {n_rows} of {len(df)} rows have a missing (NaN) score or cost "
                    f"(per model: {per_model}); drop them (nan='drop', CLI --nan drop) or count "
                    "a missing score as 0 (nan='zero')."
                )
            if nan == "drop":
                keep = ~bad.any(axis=1)
                dropped = n_rows
                df, scores_df, costs_df = df[keep], scores_df[keep], costs_df[keep]
                if df.empty:
                    raise OutcomeTableError(f"{source}: every row has a NaN score or cost.")
            else:
                if costs_df.isna().to_numpy().any():
                    raise OutcomeTableError(
                        f"{source}: NaN costs cannot be zero-filled; drop those rows (nan='drop')."
                    )
                scores_df = scores_df.fillna(0.0)
        scores = scores_df.to_numpy(dtype=np.float64)
        costs = costs_df.to_numpy(dtype=np.float64)
        if not np.isfinite(scores).all() or not np.isfinite(costs).all():
            raise OutcomeTableError(f"{source}: scores or costs contain infinite values.")
        if (costs < 0).any():
            raise OutcomeTableError(
                f"{source}: {int((costs < 0).sum())} negative costs; costs are USD, never negative."
            )
        if scores.min() < 0 or scores.max() > 1:
            raise OutcomeTableError(
                f"{source}: scores must lie in [0, 1] (found {scores.min():.3g}..{scores.max():.3g});"
                " rescale the quality columns."
            )
        n = len(df)
        # the same text the warm start trains on (a prior's projection must see it)
        prompts = [prompt_text(v) for v in df["prompt"]]
        empty = [i for i, p in enumerate(prompts) if p is None]
        if empty:
            raise OutcomeTableError(
                f"{source}: {len(empty)} rows have no prompt text (first rows: {empty[:5]}); "
                "the router embeds the prompt, so fill or remove those rows."
            )
        tasks = (
            df["eval_name"].astype(str).to_numpy()
            if "eval_name" in cols
            else np.array(["all"] * n, dtype=object)
        )
        ids = (
            df["sample_id"].astype(str).to_numpy()
            if "sample_id" in cols
            else np.array([f"row-{i}" for i in range(n)], dtype=object)
        )
        return cls(
            models=list(names),
            scores=scores,
            costs=costs,
            prompts=prompts,
            tasks=tasks,
            sample_ids=ids,
            frame=df.reset_index(drop=True),
            source=source,
            dropped_nan_rows=dropped,
        )

    @classmethod
    def _scores_only(
        cls, df: pd.DataFrame, *, source: str, models: Sequence[str] | None
    ) -> OutcomeTable:
        names = list(models) if models is not None else check_outcome_table(df, source)
        absent = [m for m in names if m not in df.columns]
        if absent:
            raise OutcomeTableError(f"{source}: model columns {absent} are not in the table.")
        n = len(df)
        cost_cols = [f"{m}{COST_SUFFIX}" for m in names]
        costs = np.full((n, len(names)), np.nan)
        for k, c in enumerate(cost_cols):
            if c in df.columns:
                costs[:, k] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        return cls(
            models=names,
            scores=df[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64),
            costs=costs,
            prompts=[prompt_text(v) for v in df["prompt"]],
            tasks=(
                df["eval_name"].astype(str).to_numpy()
                if "eval_name" in df.columns
                else np.array(["all"] * n, dtype=object)
            ),
            sample_ids=(
                df["sample_id"].astype(str).to_numpy()
                if "sample_id" in df.columns
                else np.array([f"row-{i}" for i in range(n)], dtype=object)
            ),
            frame=df.reset_index(drop=True),
            source=source,
        )

    # ---- derived figures -------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def most_expensive(self) -> str:
        """The model with the highest total cost over the table."""
        return self.models[int(self.costs.sum(axis=0).argmax())]

    @property
    def best_single(self) -> str:
        """The model with the highest mean score over the table."""
        return self.models[int(self.scores.mean(axis=0).argmax())]

    def subset(self, rows: np.ndarray) -> OutcomeTable:
        """Rows ``rows`` (indices or a boolean mask) as a new table."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return OutcomeTable(
            models=list(self.models),
            scores=self.scores[idx],
            costs=self.costs[idx],
            prompts=[self.prompts[i] for i in idx],
            tasks=self.tasks[idx],
            sample_ids=self.sample_ids[idx],
            frame=self.frame.iloc[idx].reset_index(drop=True),
            source=self.source,
            dropped_nan_rows=self.dropped_nan_rows,
        )

    def split(self, fraction: float, seed: int = 0) -> tuple[OutcomeTable, OutcomeTable]:
        """Random (train, rest) split with ``fraction`` of the rows in train, by ``seed``."""
        if not 0.0 < fraction < 1.0:
            raise OutcomeTableError(f"split fraction must be in (0, 1), got {fraction}.")
        perm = np.random.default_rng(seed).permutation(self.n)
        k = max(1, round(fraction * self.n))
        return self.subset(np.sort(perm[:k])), self.subset(np.sort(perm[k:]))


def load_outcomes(
    path: str | Path,
    *,
    models: Sequence[str] | None = None,
    nan: str = "error",
    costs: bool = True,
) -> OutcomeTable:
    """The one loader of outcome tables: CSV, JSONL, Parquet or a RouterBench pickle (a
    DataFrame), validated into an ``OutcomeTable`` (``.frame`` is the DataFrame).

    The simulator's view (default) needs a cost column per model and handles missing
    scores or costs by ``nan``; the warm start's (``costs=False``) needs scores only. See
    ``OutcomeTable.from_frame``. Pickles run code when loaded: only load pickles you trust
    (RouterBench's own files).
    """
    return OutcomeTable.from_frame(
        read_table(path), source=str(path), models=models, nan=nan, costs=costs
    )


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
    df: pd.DataFrame | OutcomeTable,
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
    if isinstance(df, OutcomeTable):  # what load_outcomes returns
        source = df.source if source == "<outcome table>" else source
        df = df.frame
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
