"""Loaders for pairwise preference files: arena style, AlpacaEval, the Kaggle 55k export.

Accepted shapes (CSV, JSONL or Parquet):

- **arena style**: ``model_a``, ``model_b``, ``winner`` in {``model_a``, ``model_b``, ``tie``,
  ``tie (bothbad)``} (also ``a`` / ``b``), with the prompt inline (``prompt``), as a
  conversation (``conversation_a``: a list of ``{role, content}`` turns, the 33k Chatbot
  Arena export) or joined by id (``prompt_id`` / ``question_id``) from a prompts file.
- **Kaggle 55k** (lmsys-chatbot-arena): ``model_a``, ``model_b``, ``winner_model_a``,
  ``winner_model_b``, ``winner_tie`` (0/1) and ``prompt`` as a JSON list of user turns.

Rows whose prompt is missing (empty, or an id absent from the prompts file) and rows that
compare a model with itself are counted in ``PreferenceData.dropped``, never silently lost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bandit_router.errors import InvalidInputError
from bandit_router.tables import read_table
from bandit_router.text import prompt_text
from bandit_router.warm_start.data import PreferenceData

#: how the ``winner`` column may spell each outcome (lower-cased, stripped)
WINNER_VALUES: dict[str, float] = {
    "model_a": 1.0,
    "a": 1.0,
    "model_b": 0.0,
    "b": 0.0,
    "tie": 0.5,
    "tie (bothbad)": 0.5,
    "tie(bothbad)": 0.5,
    "tie_bothbad": 0.5,
}
ID_COLUMNS = ("prompt_id", "question_id", "id", "instruction_id")


def _outcomes_from_winner(winner: pd.Series) -> np.ndarray:
    norm = winner.astype("string").str.strip().str.lower()
    y = norm.map(WINNER_VALUES)
    bad = y.isna()
    if bad.any():
        values = sorted({str(v) for v in winner[bad].tolist()})[:5]
        rows = np.flatnonzero(bad.to_numpy())[:5].tolist()
        raise InvalidInputError(
            f"unknown winner value(s) {values} (first rows {rows}); the winner column must be "
            "one of model_a, model_b, tie, tie (bothbad)."
        )
    return y.to_numpy(dtype=np.float64)


def _outcomes_from_kaggle(df: pd.DataFrame) -> np.ndarray:
    cols = ["winner_model_a", "winner_model_b", "winner_tie"]
    try:
        flags = df[cols].astype(float).to_numpy()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            "winner_model_a, winner_model_b and winner_tie must be 0/1 numbers."
        ) from exc
    if not np.isin(flags, (0.0, 1.0)).all() or not (flags.sum(axis=1) == 1).all():
        rows = np.flatnonzero(~(np.isin(flags, (0.0, 1.0)).all(axis=1) & (flags.sum(axis=1) == 1)))
        raise InvalidInputError(
            f"rows {rows[:5].tolist()}: exactly one of winner_model_a, winner_model_b, "
            "winner_tie must be 1."
        )
    return flags[:, 0] * 1.0 + flags[:, 2] * 0.5


def _prompt_lookup(prompts: pd.DataFrame | str | Path) -> tuple[str, dict[str, str]]:
    table = read_table(prompts) if not isinstance(prompts, pd.DataFrame) else prompts
    id_col = next((c for c in ID_COLUMNS if c in table.columns), None)
    text_col = next((c for c in ("prompt", "instruction", "text") if c in table.columns), None)
    if id_col is None or text_col is None:
        raise InvalidInputError(
            f"the prompts file needs an id column ({', '.join(ID_COLUMNS)}) and a 'prompt' "
            f"column; it has {list(table.columns)}."
        )
    lookup: dict[str, str] = {}
    for key, text in zip(table[id_col].astype(str), table[text_col], strict=True):
        t = prompt_text(text)
        if t is not None:
            lookup[key] = t
    return id_col, lookup


def preferences_from_frame(
    df: pd.DataFrame,
    prompts: pd.DataFrame | str | Path | None = None,
    source: str = "<DataFrame>",
) -> PreferenceData:
    """Turn a preference table (any accepted shape) into ``PreferenceData``.

    >>> df = pd.DataFrame({"prompt": ["2+2?", "", "poem"], "model_a": ["x", "x", "y"],
    ...                    "model_b": ["y", "y", "x"], "winner": ["model_a", "tie", "tie (bothbad)"]})
    >>> d = preferences_from_frame(df)
    >>> d.n_pairs, d.dropped["missing prompt"]
    (2, 1)
    """
    if len(df) == 0:
        raise InvalidInputError(f"{source} has no rows.")
    cols = set(df.columns)
    missing = {"model_a", "model_b"} - cols
    if missing:
        raise InvalidInputError(
            f"{source} lacks column(s) {sorted(missing)}; a preference table needs model_a, "
            "model_b and a winner (winner, or winner_model_a / winner_model_b / winner_tie). "
            "For an outcome table (one score column per model) use --from-outcomes."
        )
    if "winner" in cols:
        y = _outcomes_from_winner(df["winner"])
    elif {"winner_model_a", "winner_model_b", "winner_tie"} <= cols:
        y = _outcomes_from_kaggle(df)
    else:
        raise InvalidInputError(
            f"{source} has no winner column: give 'winner' (model_a / model_b / tie) or "
            "winner_model_a, winner_model_b and winner_tie (the Kaggle export)."
        )

    # prompts: inline text, a conversation, or joined by id
    if prompts is not None:
        id_col, lookup = _prompt_lookup(prompts)
        if id_col not in cols:
            raise InvalidInputError(
                f"{source} has no {id_col!r} column to join the prompts file on; its columns "
                f"are {sorted(cols)}."
            )
        texts = [lookup.get(str(k)) for k in df[id_col].astype(str)]
    elif "prompt" in cols:
        texts = [prompt_text(v) for v in df["prompt"]]
    elif "conversation_a" in cols:
        texts = [prompt_text(v) for v in df["conversation_a"]]
    else:
        has_id = [c for c in ID_COLUMNS if c in cols]
        hint = f" (it has {has_id[0]!r}: pass the prompts file with --prompts)" if has_id else ""
        raise InvalidInputError(
            f"{source} has no prompt column{hint}; give 'prompt' inline, 'conversation_a', or "
            "a prompts file joined by prompt_id."
        )

    model_a = df["model_a"].astype("string").str.strip()
    model_b = df["model_b"].astype("string").str.strip()
    dropped = {"missing prompt": 0, "missing model": 0, "same model": 0}
    records: list[tuple[str, str, str, float]] = []
    for text, ma, mb, out in zip(texts, model_a, model_b, y, strict=True):
        if text is None:
            dropped["missing prompt"] += 1
        elif ma is pd.NA or mb is pd.NA or not ma or not mb:
            dropped["missing model"] += 1
        elif ma == mb:
            dropped["same model"] += 1
        else:
            records.append((text, str(ma), str(mb), float(out)))
    if not records:
        raise InvalidInputError(
            f"{source}: none of its {len(df)} rows is usable ({dropped}); check the prompt "
            "column or the prompts file."
        )
    return PreferenceData.from_records(records, dropped=dropped, source=source)


def load_preferences(
    path: str | Path, prompts: str | Path | pd.DataFrame | None = None
) -> PreferenceData:
    """Load a preference file (CSV, JSONL or Parquet); ``prompts`` joins prompt texts by id.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = open(os.path.join(d, "p.jsonl"), "w").write(
    ...         '{"prompt": "hi", "model_a": "x", "model_b": "y", "winner": "model_b"}\\n')
    ...     load_preferences(os.path.join(d, "p.jsonl")).y.tolist()
    [0.0]
    """
    return preferences_from_frame(read_table(path), prompts, source=str(path))
