"""Reading tabular files, and the columns of a RouterBench-format outcome table.

One reader for every table the project takes in (outcome tables, preferences, prompts,
decision logs): CSV / TSV (optionally gzipped), JSON, JSONL, Parquet and, where allowed,
pickled DataFrames (RouterBench ships its tables as pickles).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bandit_router.errors import InvalidInputError

#: columns of an outcome table that are not models
META_COLUMNS = ("sample_id", "prompt", "eval_name", "oracle_model_to_route_to", "dataset")
#: suffix of a model's cost column in an outcome table
COST_SUFFIX = "|total_cost"


def read_table(path: str | Path, *, allow_pickle: bool = False) -> pd.DataFrame:
    """Read a table by its suffix, with errors that say what to do.

    Pickles run code when loaded: ``allow_pickle`` is for files you trust (RouterBench's).

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "x.csv")
    ...     _ = open(p, "w").write("a,b\\n1,2\\n")
    ...     read_table(p).shape
    (1, 2)
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{p} does not exist; check the path.")
    if p.is_dir():
        raise InvalidInputError(f"{p} is a directory; give a CSV, JSONL or Parquet file.")
    suffix = "".join(s.lower() for s in p.suffixes[-2:])
    pickles = (".pkl", ".pickle", ".pkl.gz")
    try:
        if suffix.endswith((".parquet", ".pq")):
            df = pd.read_parquet(p)
        elif suffix.endswith((".jsonl", ".ndjson")):
            df = pd.read_json(p, lines=True)
        elif suffix.endswith(".json"):
            try:
                df = pd.read_json(p)
            except ValueError:
                df = pd.read_json(p, lines=True)
        elif suffix.endswith((".csv", ".csv.gz", ".tsv")):
            df = pd.read_csv(p, sep="\t" if suffix.endswith(".tsv") else ",")
        elif allow_pickle and suffix.endswith(pickles):
            df = pd.read_pickle(p)
            if not isinstance(df, pd.DataFrame):
                raise InvalidInputError(
                    f"{p} holds a {type(df).__name__}, not a pandas DataFrame; RouterBench "
                    "pickles are DataFrames in the wide layout."
                )
        else:
            kinds = ".csv, .jsonl, .parquet" + (" or .pkl (RouterBench)" if allow_pickle else "")
            raise InvalidInputError(f"{p.name}: unknown file type {p.suffix!r}; use {kinds}.")
    except pd.errors.EmptyDataError as exc:
        raise InvalidInputError(f"{p} is empty; it needs a header row and data rows.") from exc
    except InvalidInputError:
        raise
    except Exception as exc:  # the parsers' own errors (pandas, pyarrow, pickle)
        raise InvalidInputError(f"cannot read {p}: {exc}") from exc
    if len(df) == 0:
        raise InvalidInputError(f"{p} has no data rows.")
    return df


def model_columns(df: pd.DataFrame) -> list[str]:
    """The model (score) columns of an outcome table, in table order.

    A model column is one with a ``<model>|total_cost`` companion; a table without cost
    columns falls back to its numeric columns other than the metadata (``sample_id``,
    ``prompt``, ``eval_name``...). Columns with a ``|`` are never models.

    >>> df = pd.DataFrame({"sample_id": [1], "prompt": ["q"], "eval_name": ["t"], "m1": [1.0],
    ...                    "m2": [0.0], "m1|total_cost": [0.1], "m2|total_cost": [0.2]})
    >>> model_columns(df)
    ['m1', 'm2']
    """
    cols = [str(c) for c in df.columns]
    with_cost = [c for c in cols if "|" not in c and f"{c}{COST_SUFFIX}" in cols]
    if with_cost:
        return with_cost
    return [
        c
        for c in cols
        if "|" not in c and c not in META_COLUMNS and pd.api.types.is_numeric_dtype(df[c])
    ]
