"""Policies by the names the CLI, configuration and database use."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from bandit_router.errors import ConfigurationError
from bandit_router.policies.base import Policy
from bandit_router.policies.epsilon_greedy import EpsilonGreedy
from bandit_router.policies.lints import LinTS, PilotTS
from bandit_router.policies.linucb import LinUCB, PilotUCB
from bandit_router.policies.river_adapters import RiverExp3, RiverTS, RiverUCB
from bandit_router.policies.simple import FixedPolicy, RandomPolicy

POLICY_CLASSES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        LinUCB,
        LinTS,
        PilotUCB,
        PilotTS,
        EpsilonGreedy,
        RandomPolicy,
        FixedPolicy,
        RiverUCB,
        RiverTS,
        RiverExp3,
    )
}

#: names with a prior: the simulator and CLI wire a warm-start prior into these
PRIOR_POLICIES = ("pilot", "pilot-ts")


def policy_names() -> list[str]:
    """Every name ``make_policy`` accepts (``fixed:<model>`` stands for one per model)."""
    return [n if n != "fixed" else "fixed:<model>" for n in POLICY_CLASSES]


def _parameters(cls: type[Policy]) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p for p in inspect.signature(init).parameters if p not in ("self", "kwargs")}
    return names - {"arms", "dim", "_from_state"}


def make_policy(name: str, arms: Sequence[str], dim: int, **kwargs: Any) -> Policy:
    """Build a policy from its registry name.

    >>> make_policy("linucb", ["a", "b"], dim=4, alpha=0.3).alpha
    0.3
    >>> make_policy("fixed:b", ["a", "b"], dim=4).model
    'b'
    """
    key = name.strip()
    if key.startswith("fixed:"):
        kwargs["model"] = key.split(":", 1)[1]
        key = "fixed"
    cls = POLICY_CLASSES.get(key)
    if cls is None:
        raise ConfigurationError(
            f"unknown policy {name!r}; choose one of: {', '.join(policy_names())}."
        )
    unknown = set(kwargs) - _parameters(cls)
    if unknown:
        raise ConfigurationError(
            f"policy {key!r} takes no option(s) {sorted(unknown)}; it accepts "
            f"{sorted(_parameters(cls))}."
        )
    return cls(arms, dim, **kwargs)
