"""bandit-router: a self-hosted LLM router that learns online.

The core: embeddings, features, policies, warm start, budget allocation. It imports no
database and no CLI code; ``storage``, ``simulations`` and ``cli`` build on it.
"""

from bandit_router.embeddings import Embedder, make_embedder
from bandit_router.errors import (
    BanditRouterError,
    ConfigurationError,
    DimensionMismatchError,
    EmbedderError,
    InvalidInputError,
    StateError,
    UnknownArmError,
)
from bandit_router.features import Featurizer, Projection
from bandit_router.policies import ArmPrior, Decision, Policy, from_state, make_policy

__version__ = "0.1.0"

__all__ = [
    "ArmPrior",
    "BanditRouterError",
    "ConfigurationError",
    "Decision",
    "DimensionMismatchError",
    "Embedder",
    "EmbedderError",
    "Featurizer",
    "InvalidInputError",
    "Policy",
    "Projection",
    "StateError",
    "UnknownArmError",
    "__version__",
    "from_state",
    "make_embedder",
    "make_policy",
]
