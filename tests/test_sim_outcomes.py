"""Loading RouterBench-format outcome tables: formats, validation, real tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bandit_router.simulations.outcomes import OutcomeTable, OutcomeTableError, load_outcomes
from tests.conftest import shared_file


def small_frame(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "prompt": [f"question number {i}" for i in range(n)],
            "eval_name": ["math", "code"] * (n // 2),
            "cheap": rng.integers(0, 2, n).astype(float),
            "cheap|total_cost": np.full(n, 0.001),
            "cheap|model_response": ["..."] * n,
            "dear": rng.integers(0, 2, n).astype(float),
            "dear|total_cost": np.full(n, 0.02),
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pkl", ".jsonl"])
def test_every_format_loads_the_same_arrays(tmp_path, suffix):
    df = small_frame()
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".parquet":
        df.to_parquet(path)
    elif suffix == ".pkl":
        df.to_pickle(path)  # RouterBench ships pickled DataFrames
    else:
        df.to_json(path, orient="records", lines=True)
    t = load_outcomes(path)
    assert t.models == ["cheap", "dear"]
    np.testing.assert_array_equal(t.scores, df[["cheap", "dear"]].to_numpy())
    np.testing.assert_allclose(t.costs[:, 1], 0.02)
    assert t.most_expensive == "dear"
    assert list(t.tasks[:2]) == ["math", "code"]


def test_no_model_columns_is_explained():
    df = pd.DataFrame({"prompt": ["a"], "eval_name": ["x"]})
    with pytest.raises(OutcomeTableError, match="no model columns"):
        OutcomeTable.from_frame(df)


def test_missing_cost_columns_are_named():
    df = small_frame().drop(columns=["dear|total_cost"])
    # 'dear' is then not detected as a model (no cost twin); asking for it explicitly names it
    with pytest.raises(OutcomeTableError, match=r"missing cost columns for \['dear'\]"):
        OutcomeTable.from_frame(df, models=["cheap", "dear"])


def test_nan_scores_are_counted_and_can_be_dropped():
    df = small_frame()
    df.loc[[1, 3], "dear"] = np.nan
    with pytest.raises(OutcomeTableError, match=r"2 of 6 rows .*'dear': 2"):
        OutcomeTable.from_frame(df)
    t = OutcomeTable.from_frame(df, nan="drop")
    assert t.n == 4 and t.dropped_nan_rows == 2
    z = OutcomeTable.from_frame(df, nan="zero")
    assert z.n == 6 and z.scores[1, 1] == 0.0


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("dear", 3.0, "must lie in"), ("cheap|total_cost", -1.0, "negative costs")],
)
def test_out_of_range_values(column, value, message):
    df = small_frame()
    df.loc[0, column] = value
    with pytest.raises(OutcomeTableError, match=message):
        OutcomeTable.from_frame(df)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(OutcomeTableError, match="does not exist"):
        load_outcomes(tmp_path / "nope.csv")
    p = tmp_path / "t.xlsx"
    p.write_text("x")
    with pytest.raises(OutcomeTableError, match="unknown file type"):
        load_outcomes(p)


def test_split_is_a_seeded_partition():
    t = OutcomeTable.from_frame(small_frame(10))
    a, b = t.split(0.3, seed=1)
    assert a.n + b.n == 10 and not set(a.sample_ids) & set(b.sample_ids)
    a2, _ = t.split(0.3, seed=1)
    assert list(a.sample_ids) == list(a2.sample_ids)


def test_real_routellm_table():
    t = load_outcomes(shared_file("routellm/gsm8k.csv"))
    assert t.n == 1319 and t.n_models == 2
    assert t.most_expensive == "gpt-4-1106-preview"
    assert np.isin(t.scores, [0.0, 1.0]).all()
    assert (t.costs > 0).all()


def test_real_llmrouter_table():
    t = load_outcomes(shared_file("llmrouter/outcomes_test.csv"))
    assert t.n == 500 and t.n_models == 9
    assert len(np.unique(t.tasks)) > 5
