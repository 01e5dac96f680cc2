"""One loader of outcome tables, one prior trainer, one policy builder, one allocator protocol."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from bandit_router.budget import AffordableAllocator, Allocator, BudgetAllocator
from bandit_router.simulations import outcomes as sim_outcomes
from bandit_router.simulations import pipeline as sim_pipeline
from bandit_router.warm_start import OutcomeTable, load_outcomes
from bandit_router.warm_start.outcomes import OutcomeTableError


def test_the_simulator_and_the_warm_start_share_one_loader_and_one_trainer():
    assert sim_outcomes.load_outcomes is load_outcomes
    assert sim_outcomes.OutcomeTable is OutcomeTable
    assert not hasattr(sim_pipeline, "train_prior")
    with pytest.raises(ImportError):
        importlib.import_module("bandit_router.simulations.budget_bridge")


def test_the_warm_start_view_needs_scores_only(tmp_path):
    df = pd.DataFrame({"prompt": ["a", "b", None], "m1": [1.0, np.nan, 0.0], "m2": [0.0, 1.0, 1.0]})
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    with pytest.raises(OutcomeTableError, match="cost columns"):
        load_outcomes(path)  # the simulator needs costs
    t = load_outcomes(path, costs=False)
    assert t.models == ["m1", "m2"] and np.isnan(t.costs).all()
    assert np.isnan(t.scores[1, 0]) and t.prompts[2] is None


def test_the_allocators_share_one_protocol():
    assert isinstance(BudgetAllocator(), Allocator)
    assert isinstance(AffordableAllocator(), Allocator)
