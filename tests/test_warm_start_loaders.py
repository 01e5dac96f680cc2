"""Preference loaders (arena, AlpacaEval join, Kaggle 55k, 33k conversations) and the
outcome-table converter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.errors import InvalidInputError
from bandit_router.warm_start import (
    load_outcomes,
    load_preferences,
    model_columns,
    outcomes_to_preferences,
    preferences_from_frame,
)
from tests.conftest import shared_file

ARENA = pd.DataFrame(
    {
        "prompt": ["Write a poem", "Sort a list in Python", "2 + 2?", "Capital of France?"],
        "model_a": ["gpt", "gpt", "llama", "gpt"],
        "model_b": ["llama", "mistral", "gpt", "llama"],
        "winner": ["model_a", "model_b", "tie", "tie (bothbad)"],
    }
)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_arena_style_in_every_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"prefs{suffix}"
    if suffix == ".csv":
        ARENA.to_csv(path, index=False)
    elif suffix == ".jsonl":
        ARENA.to_json(path, orient="records", lines=True)
    else:
        ARENA.to_parquet(path)
    d = load_preferences(path)
    assert d.models == ["gpt", "llama", "mistral"]
    assert d.n_pairs == 4 and d.n_queries == 4
    assert d.y.tolist() == [1.0, 0.0, 0.5, 0.5]
    assert [d.models[i] for i in d.a] == ["gpt", "gpt", "llama", "gpt"]


def test_prompts_joined_by_id_and_missing_ones_counted(tmp_path: Path) -> None:
    prefs = pd.DataFrame(
        {
            "prompt_id": [0, 1, 2, 7],
            "model_a": ["x"] * 4,
            "model_b": ["y"] * 4,
            "winner": ["model_a", "model_b", "model_a", "model_a"],
        }
    )
    prompts = pd.DataFrame({"prompt_id": [0, 1, 2], "prompt": ["first", "second", "  "]})
    prefs.to_csv(tmp_path / "p.csv", index=False)
    prompts.to_csv(tmp_path / "q.csv", index=False)
    d = load_preferences(tmp_path / "p.csv", prompts=tmp_path / "q.csv")
    assert d.prompts == ["first", "second"]
    assert d.dropped["missing prompt"] == 2  # id 2 has a blank prompt, id 7 none at all
    assert "2 missing prompt" in d.describe()
    with pytest.raises(InvalidInputError, match="--prompts"):
        load_preferences(tmp_path / "p.csv")


def test_kaggle_export_with_json_turns(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "model_a": ["a", "a", "b"],
            "model_b": ["b", "c", "c"],
            "prompt": [json.dumps(["Hello", "And then?"]), json.dumps(["Hi"]), json.dumps([None])],
            "response_a": ["..."] * 3,
            "response_b": ["..."] * 3,
            "winner_model_a": [0, 1, 0],
            "winner_model_b": [1, 0, 0],
            "winner_tie": [0, 0, 1],
        }
    )
    df.to_csv(tmp_path / "train.csv", index=False)
    d = load_preferences(tmp_path / "train.csv")
    assert d.prompts == ["Hello\nAnd then?", "Hi"]
    assert d.y.tolist() == [0.0, 1.0]
    assert d.dropped["missing prompt"] == 1
    bad = df.assign(winner_tie=[1, 0, 1])
    with pytest.raises(InvalidInputError, match="exactly one"):
        preferences_from_frame(bad)


def test_conversation_export(tmp_path: Path) -> None:
    rows = [
        {
            "model_a": "m1",
            "model_b": "m2",
            "winner": "tie (bothbad)",
            "conversation_a": [
                {"role": "user", "content": "Explain TCP"},
                {"role": "assistant", "content": "TCP is..."},
            ],
        }
    ]
    path = tmp_path / "conv.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    d = load_preferences(path)
    assert d.prompts == ["Explain TCP"] and d.y.tolist() == [0.5]


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="model_b"):
        preferences_from_frame(ARENA.drop(columns=["model_b"]))
    with pytest.raises(InvalidInputError, match="no winner"):
        preferences_from_frame(ARENA.drop(columns=["winner"]))
    with pytest.raises(InvalidInputError, match=r"unknown winner.*'draw'"):
        preferences_from_frame(ARENA.assign(winner=["model_a", "draw", "tie", "tie"]))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InvalidInputError, match="empty"):
        load_preferences(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("prompt,model_a,model_b,winner\n")
    with pytest.raises(InvalidInputError, match="no data rows"):
        load_preferences(header_only)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_preferences(tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="unknown file type"):
        (tmp_path / "x.txt").write_text("a")
        load_preferences(tmp_path / "x.txt")
    with pytest.raises(InvalidInputError, match="none of its"):
        preferences_from_frame(ARENA.assign(prompt=[None] * 4))
    same = preferences_from_frame(ARENA.assign(model_b=["gpt", "mistral", "gpt", "llama"]))
    assert same.dropped["same model"] == 1


OUTCOMES = pd.DataFrame(
    {
        "sample_id": ["s0", "s1", "s2"],
        "prompt": ["q0", "q1", None],
        "eval_name": ["t", "t", "t"],
        "m1": [1.0, 0.2, 1.0],
        "m2": [0.0, 0.2, 1.0],
        "m3": [np.nan, 0.9, 0.0],
        "m1|total_cost": [0.1] * 3,
        "m2|total_cost": [0.2] * 3,
        "m3|total_cost": [0.3] * 3,
        "m1|model_response": ["..."] * 3,
    }
)


def test_model_columns_and_converter() -> None:
    assert model_columns(OUTCOMES) == ["m1", "m2", "m3"]
    no_cost = OUTCOMES[["sample_id", "prompt", "eval_name", "m1", "m2"]]
    assert model_columns(no_cost) == ["m1", "m2"]
    d = outcomes_to_preferences(OUTCOMES)
    assert d.dropped["missing prompt"] == 1
    # q0: m1 beats m2 (m3 missing); q1: m1 ties m2, m3 beats both
    rows = {
        (d.prompts[q], d.models[a], d.models[b], y)
        for q, a, b, y in zip(d.query, d.a, d.b, d.y, strict=True)
    }
    assert rows == {
        ("q0", "m1", "m2", 1.0),
        ("q1", "m1", "m2", 0.5),
        ("q1", "m1", "m3", 0.0),
        ("q1", "m2", "m3", 0.0),
    }
    assert d.scores is not None and d.scores.shape == (2, 3)


def test_outcome_table_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="at least two models"):
        outcomes_to_preferences(OUTCOMES[["prompt", "m1"]])
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        outcomes_to_preferences(OUTCOMES.assign(m1=[5.0, 0.0, 1.0]))
    with pytest.raises(InvalidInputError, match="prompt"):
        outcomes_to_preferences(OUTCOMES.drop(columns=["prompt"]))
    OUTCOMES.to_parquet(tmp_path / "o.parquet")
    OUTCOMES.to_pickle(tmp_path / "o.pkl")
    for name in ("o.parquet", "o.pkl"):
        assert model_columns(load_outcomes(tmp_path / name, costs=False).frame) == [
            "m1",
            "m2",
            "m3",
        ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.25, 1.0]), min_size=3, max_size=3),
        min_size=1,
        max_size=8,
    )
)
def test_converter_agrees_with_scores(table: list[list[float]]) -> None:
    df = pd.DataFrame(table, columns=["a", "b", "c"])
    df.insert(0, "prompt", [f"p{i}" for i in range(len(df))])
    d = outcomes_to_preferences(df)
    assert d.n_pairs == 3 * len(df)
    S = d.scores
    expect = np.sign(S[d.query, d.a] - S[d.query, d.b]) * 0.5 + 0.5
    np.testing.assert_array_equal(d.y, expect)
    # win rates agree with a direct count over the table
    T = np.array(table)
    direct = [
        np.mean(
            [
                (T[i, m] > T[i, o]) + 0.5 * (T[i, m] == T[i, o])
                for i in range(len(T))
                for o in range(3)
                if o != m
            ]
        )
        for m in range(3)
    ]
    np.testing.assert_allclose(d.win_rates(), direct)


def test_shared_alpaca_eval_loads_with_counts() -> None:
    prefs = shared_file("alpaca_eval/preferences.csv")
    d = load_preferences(prefs, prompts=shared_file("alpaca_eval/prompts.csv"))
    assert (d.n_pairs, d.n_queries, d.n_models) == (14488, 805, 19)
    assert int((d.y == 0.5).sum()) == 42
    assert sum(d.dropped.values()) == 0


def test_shared_outcome_table_converts() -> None:
    df = load_outcomes(shared_file("llmrouter/outcomes_test.csv")).frame
    models = model_columns(df)
    assert len(models) == 9
    d = outcomes_to_preferences(df)
    assert d.n_models == 9 and d.n_queries <= len(df)
    assert d.n_pairs == 36 * d.n_queries  # every model scored on every query
