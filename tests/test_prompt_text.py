"""Training and replay read a prompt cell into the same text (issue 8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bandit_router.simulations.outcomes import OutcomeTable, OutcomeTableError, load_outcomes
from bandit_router.text import prompt_text
from bandit_router.warm_start.outcomes import load_outcomes as load_training_table
from bandit_router.warm_start.outcomes import outcomes_to_preferences

#: raw prompt cells as tables hold them, and the text both loaders must embed
CELLS = [
    (["What is 2 + 2?"], "What is 2 + 2?"),
    (["hi", "there"], "hi\nthere"),
    ("['hi', 'there']", "hi\nthere"),  # RouterBench writes Python literals
    ('["Name a prime."]', "Name a prime."),
    (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
        ],
        "Capital of France?\nAnd of Italy?",
    ),
    ("  plain text with spaces \n", "plain text with spaces"),
]


def table() -> pd.DataFrame:
    n = len(CELLS)
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "prompt": [raw for raw, _ in CELLS],
            "eval_name": ["t"] * n,
            "m1": [1.0, 0.0, 1.0, 0.0, 1.0, 0.5],
            "m1|total_cost": [0.01] * n,
            "m2": [0.0, 1.0, 1.0, 1.0, 0.0, 0.5],
            "m2|total_cost": [0.1] * n,
        }
    )


def test_prompt_text_of_every_cell():
    for raw, text in CELLS:
        assert prompt_text(raw) == text


def test_replay_and_training_see_the_same_text():
    df = table()
    replay = OutcomeTable.from_frame(df).prompts
    training = outcomes_to_preferences(df, models=["m1", "m2"]).prompts
    assert replay == [text for _, text in CELLS]
    # the training loader merges identical texts into one query: the list of turns and
    # its Python-literal spelling are the same prompt
    assert training == list(dict.fromkeys(replay))
    assert len(training) == len(CELLS) - 1


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_both_file_loaders_agree_on_a_table_of_turn_lists(tmp_path, suffix):
    """A list column survives Parquet and JSONL as lists and CSV as their literal text."""
    df = table()
    path = tmp_path / f"outcomes{suffix}"
    if suffix == ".parquet":
        df.iloc[[0, 1]].to_parquet(path)  # Parquet holds one type per column: list<string>
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_csv(path, index=False)
    replay = load_outcomes(path).prompts
    training = outcomes_to_preferences(load_training_table(path), models=["m1", "m2"]).prompts
    assert training == list(dict.fromkeys(replay))
    assert set(replay) <= {text for _, text in CELLS}


def test_a_row_without_prompt_text_is_refused_by_the_simulator():
    df = table()
    df.loc[2, "prompt"] = "   "
    with pytest.raises(OutcomeTableError, match="no prompt text"):
        OutcomeTable.from_frame(df)


def test_a_decision_log_embeds_the_same_text_as_training():
    """``evaluate`` on a log with a prompt column used ``astype(str)``: a list of turns was
    embedded as its Python repr, not the text the prior was fitted on."""
    from bandit_router.simulations.ope import LogFormatError, log_from_frame

    seen: list[str] = []

    def featurize(texts):
        seen.extend(texts)
        return np.ones((len(texts), 2))

    cell = [{"role": "user", "content": "What is 2 + 2?"}]
    df = pd.DataFrame(
        {"prompt": [cell, "plain"], "model": ["a", "b"], "reward": [1, 0], "propensity": [0.5, 0.5]}
    )
    log_from_frame(df, featurize=featurize)
    assert seen == [prompt_text(cell), "plain"]
    assert seen[0] == "What is 2 + 2?"
    with pytest.raises(LogFormatError, match="no prompt text"):
        log_from_frame(df.assign(prompt=[None, "x"]), featurize=featurize)
