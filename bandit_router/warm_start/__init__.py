"""Warm start from preference data (PILOT, arXiv 2508.21141): the bandit's prior.

>>> from bandit_router.policies import make_policy
>>> art = PriorArtifact.example()
>>> make_policy("pilot", ["m0", "m1"], art.context_dim, priors=art.priors(["m0", "m1"])).arms
['m0', 'm1']
"""

from __future__ import annotations

from bandit_router.warm_start.api import (
    train_prior,
    train_prior_from_outcomes,
    train_prior_from_preferences,
)
from bandit_router.warm_start.artifact import PriorArtifact
from bandit_router.warm_start.baselines import (
    GlobalBradleyTerry,
    MajorityWinner,
    pairwise_accuracy,
)
from bandit_router.warm_start.data import PreferenceData
from bandit_router.warm_start.model import PilotModel, bt_loss, triplet_loss
from bandit_router.warm_start.outcomes import (
    OutcomeTable,
    load_outcomes,
    model_columns,
    outcomes_to_preferences,
)
from bandit_router.warm_start.preferences import load_preferences, preferences_from_frame
from bandit_router.warm_start.trainer import TrainConfig, train_pilot

__all__ = [
    "GlobalBradleyTerry",
    "MajorityWinner",
    "OutcomeTable",
    "PilotModel",
    "PreferenceData",
    "PriorArtifact",
    "TrainConfig",
    "bt_loss",
    "load_outcomes",
    "load_preferences",
    "model_columns",
    "outcomes_to_preferences",
    "pairwise_accuracy",
    "preferences_from_frame",
    "train_pilot",
    "train_prior",
    "train_prior_from_outcomes",
    "train_prior_from_preferences",
    "triplet_loss",
]
