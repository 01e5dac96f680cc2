"""Loading and validating RouterBench-format outcome tables (CSV, Parquet, RouterBench pickle).

The wide layout (RouterBench, Hu et al. 2024): one row per query with ``sample_id``,
``prompt``, ``eval_name`` (the task), one column per model holding the quality of that
model's answer (0/1 or a score in [0, 1]), ``<model>|total_cost`` (USD) and optionally
``<model>|model_response``. RouterBench's own ``.pkl`` files are pickled pandas DataFrames
in the same layout.
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
    ) -> OutcomeTable:
        """Validate a wide DataFrame.

        ``nan`` says what to do with rows whose score or cost is missing: ``"error"``
        (default: raise and report how many per model), ``"drop"`` (drop those rows and
        record how many in ``dropped_nan_rows``) or ``"zero"`` (a missing score counts 0).
        """
        if nan not in ("error", "drop", "zero"):
            raise OutcomeTableError(f"nan must be 'error', 'drop' or 'zero', got {nan!r}.")
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
    path: str | Path, *, models: Sequence[str] | None = None, nan: str = "error"
) -> OutcomeTable:
    """Read and validate an outcome table (CSV, Parquet, JSONL or a RouterBench pickle)."""
    return OutcomeTable.from_frame(read_table(path), source=str(path), models=models, nan=nan)
