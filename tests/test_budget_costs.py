"""Token counters, the cost model and the catalogue loader."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.budget import CostModel, HeuristicTokenCounter, make_token_counter
from bandit_router.catalogue import DEMO_CATALOGUE, ModelSpec, load_catalogue
from bandit_router.errors import ConfigurationError, InvalidInputError, UnknownArmError
from tests.conftest import shared_file


def test_heuristic_counter_rounds_up_and_batches():
    c = HeuristicTokenCounter()
    assert [c.count(t) for t in ["", "a", "abcd", "abcde"]] == [0, 1, 1, 2]
    assert c.count_many(["", "a", "abcd", "abcde"]).tolist() == [0, 1, 1, 2]
    with pytest.raises(InvalidInputError):
        c.count(3)  # type: ignore[arg-type]


def test_token_counter_factory():
    assert make_token_counter("heuristic:3").count("abcdef") == 2
    assert make_token_counter("auto").count("hello world") > 0  # tiktoken or the heuristic
    with pytest.raises(ConfigurationError, match="unknown token counter"):
        make_token_counter("bpe")


def test_estimate_is_price_formula_and_vectorised():
    cat = [
        ModelSpec("a", 1.0, 2.0, price_per_call=0.001, expected_output_tokens=100),
        ModelSpec("b", 10.0, 30.0, expected_output_tokens=50),
    ]
    cm = CostModel(cat)
    est = cm.estimate(input_tokens=1000)
    assert est.shape == (2,)
    assert est[0] == pytest.approx(0.001 + 1000 * 1e-6 + 100 * 2e-6)
    assert est[1] == pytest.approx(1000 * 10e-6 + 50 * 30e-6)
    assert cm.estimate("x" * 4000).tolist() == pytest.approx(est.tolist())
    assert cm.estimate(input_tokens=1000, models=["b"]).tolist() == pytest.approx([est[1]])
    many = cm.estimate_many(np.array([0.0, 1000.0]))
    assert many.shape == (2, 2)
    np.testing.assert_allclose(many[1], est)
    assert cm.cost("b", 1000, 50) == pytest.approx(est[1])


def test_output_tokens_are_learned_online():
    cm = CostModel([ModelSpec("a", 0.0, 1.0, expected_output_tokens=100)], fading_factor=0.5)
    before = cm.estimate(input_tokens=0)[0]
    for _ in range(20):
        cm.observe("a", 500)
    assert cm.expected_output_tokens[0] == pytest.approx(500, rel=1e-3)
    assert cm.estimate(input_tokens=0)[0] == pytest.approx(5 * before, rel=1e-3)
    slow = CostModel([ModelSpec("a", 0.0, 1.0, expected_output_tokens=100)], output_stat="mean")
    slow.observe("a", 210)  # prior weight 10: (10 * 100 + 210) / 11
    assert slow.expected_output_tokens[0] == pytest.approx(110)


def test_cost_model_errors_say_what_to_do():
    cm = CostModel(DEMO_CATALOGUE)
    with pytest.raises(UnknownArmError, match="catalogue has"):
        cm.estimate(input_tokens=10, models=["gpt-9"])
    with pytest.raises(InvalidInputError):
        cm.estimate()
    with pytest.raises(InvalidInputError):
        cm.estimate(input_tokens=-1)
    with pytest.raises(InvalidInputError):
        cm.observe("demo-nano", float("nan"))
    with pytest.raises(ConfigurationError):
        CostModel([])
    with pytest.raises(ConfigurationError):
        ModelSpec("x", -1.0, 0.0)


def test_load_catalogue_from_shared_data():
    specs = load_catalogue(shared_file("llmrouter/models.csv"))
    assert len(specs) == 9
    by_name = {s.name: s for s in specs}
    assert by_name["gemma-2-9b-it"].input_price_per_mtok == 0.1
    assert by_name["llama3-chatqa-1.5-70b"].output_price_per_mtok == 0.9
    cm = CostModel(specs)
    assert cm.estimate(input_tokens=1000).shape == (9,)


def test_load_catalogue_rejects_bad_files(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_catalogue(tmp_path / "nope.csv")
    p = tmp_path / "bad.csv"
    p.write_text("model,price\nm,1\n")
    with pytest.raises(ConfigurationError, match="input_price_per_mtok"):
        load_catalogue(p)
    p.write_text("model,input_price_per_mtok,output_price_per_mtok\nm,abc,1\n")
    with pytest.raises(ConfigurationError, match="not a number"):
        load_catalogue(p)
    p.write_text("name,input_price_per_mtok,output_price_per_mtok,price_per_call\nm,1,2,0.01\n")
    assert load_catalogue(p)[0].price_per_call == 0.01
