"""Contextual bandit policies over named arms (models).

>>> import numpy as np
>>> pol = make_policy("linucb", ["cheap", "strong"], dim=3, seed=0)
>>> blob = pol.get_state()
>>> from_state(blob).arms
['cheap', 'strong']
"""

from bandit_router.policies.base import ArmScores, Decision, Policy
from bandit_router.policies.epsilon_greedy import EpsilonGreedy
from bandit_router.policies.lints import LinTS, PilotTS
from bandit_router.policies.linucb import LinUCB, PilotUCB
from bandit_router.policies.prior import ArmPrior
from bandit_router.policies.registry import (
    POLICY_CLASSES,
    PRIOR_POLICIES,
    make_policy,
    policy_names,
)
from bandit_router.policies.river_adapters import RiverExp3, RiverTS, RiverUCB
from bandit_router.policies.selection import Selection
from bandit_router.policies.simple import FixedPolicy, RandomPolicy
from bandit_router.policies.state import load_state as from_state

__all__ = [
    "POLICY_CLASSES",
    "PRIOR_POLICIES",
    "ArmPrior",
    "ArmScores",
    "Decision",
    "EpsilonGreedy",
    "FixedPolicy",
    "LinTS",
    "LinUCB",
    "PilotTS",
    "PilotUCB",
    "Policy",
    "RandomPolicy",
    "RiverExp3",
    "RiverTS",
    "RiverUCB",
    "Selection",
    "from_state",
    "make_policy",
    "policy_names",
]
