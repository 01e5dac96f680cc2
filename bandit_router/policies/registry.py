"""Policies by the names the CLI, configuration and database use."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
    """Keyword options of ``cls``'s constructor chain (``arms``, ``dim`` and ``*args`` /
    ``**kwargs`` catch-alls are not options)."""
    return set(_signature(cls))


def _signature(cls: type[Policy]) -> dict[str, inspect.Parameter]:
    out: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is object:
            continue
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in _NOT_OPTIONS:
                continue
            out.setdefault(p.name, p)
    return out


_NOT_OPTIONS = frozenset({"self", "arms", "dim", "_from_state"})

#: constructor arguments the CLI sets from flags of their own, never through ``--set``
SET_BY_FLAGS: dict[str, str] = {
    "seed": "the seed is set by --seed (first seed) and --seeds N (number of runs); "
    "use those instead of --set seed",
    "priors": "the prior is given with --prior FILE (or --train TABLE / --train-split F), "
    "not with --set priors",
    "model": "the model of a fixed policy is part of its name: -p fixed:<model>, not --set model",
}


def _split_item(item: str) -> tuple[str, str]:
    if "=" not in str(item):
        raise ConfigurationError(f"--set takes KEY=VALUE (e.g. --set alpha=0.5), got {item!r}.")
    key, value = str(item).split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigurationError(f"--set {item}: the key before '=' is empty.")
    return key, value.strip()


def _bad(key: str, text: str, what: str) -> ConfigurationError:
    return ConfigurationError(f"--set {key}={text}: {key} must be {what}, got {text!r}.")


def _parse_float(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(key, text, "a number (e.g. 0.5)") from None
    if not math.isfinite(value):
        raise _bad(key, text, "a finite number")
    return value


def _parse_value(key: str, text: str, kind: str) -> Any:
    """``text`` converted to the annotation ``kind`` (a string: ``float``, ``int``, ``bool``,
    ``float | None``, ``tuple[float, float]``, ``str``)."""
    kind = kind.replace(" ", "")
    if kind.endswith("|None") or kind.startswith("None|"):
        if text.lower() in ("none", "null", ""):
            return None
        kind = kind.replace("|None", "").replace("None|", "")
    if kind == "float":
        return _parse_float(key, text)
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise _bad(key, text, "a whole number (e.g. 500)") from None
    if kind == "bool":
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise _bad(key, text, "true or false")
    if kind.startswith("tuple[float"):
        parts = [p for p in text.strip("[]() ").split(",") if p.strip()]
        if len(parts) != 2:
            raise _bad(key, text, "two numbers LO,HI (e.g. 0,1)")
        lo, hi = (_parse_float(key, p.strip()) for p in parts)
        if not lo < hi:
            raise _bad(key, text, "two numbers LO,HI with LO < HI")
        return (lo, hi)
    if kind == "str":
        return text
    raise ConfigurationError(f"--set {key}: this option cannot be set from the command line.")


def policy_options(name: str) -> dict[str, str]:
    """The options ``--set`` can give policy ``name``, with their types.

    >>> policy_options("epsilon-greedy")["epsilon"], "seed" in policy_options("linucb")
    ('float', False)
    """
    cls = _policy_class(name)[1]
    return {
        k: p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        for k, p in sorted(_signature(cls).items())
        if k not in SET_BY_FLAGS and p.annotation is not inspect.Parameter.empty
    }


def parse_policy_options(
    name: str,
    items: Sequence[str],
    *,
    extra: Mapping[str, str] | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """``--set KEY=VALUE`` items for policy ``name`` -> its typed keyword options.

    Every key must be an option of the policy's constructor (or of ``extra``: key -> type,
    options a caller adds, such as the simulator's ``prior_scale``); every value is parsed
    to the type the constructor declares; with ``validate`` the policy is then built once on
    two dummy models so that the constructor's own range checks run now, before any
    embedding or training. Errors are ``ConfigurationError`` naming the ``--set`` flag.

    >>> parse_policy_options("linucb", ["alpha=0.3", "refactor_every=50"])
    {'alpha': 0.3, 'refactor_every': 50}
    >>> parse_policy_options("linucb", ["alpha=abc"])
    Traceback (most recent call last):
    ...
    bandit_router.errors.ConfigurationError: --set alpha=abc: alpha must be a number (e.g. 0.5), got 'abc'.
    """
    key, cls = _policy_class(name)
    types = {**policy_options(name), **dict(extra or {})}
    out: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for item in items:
        k, text = _split_item(item)
        if k in SET_BY_FLAGS and k not in types:
            raise ConfigurationError(f"--set {k}={text}: {SET_BY_FLAGS[k]}.")
        if k not in types:
            raise ConfigurationError(
                f"--set {k}={text}: policy {key!r} has no option {k!r}; its options are "
                f"{', '.join(sorted(types)) or 'none'}."
            )
        out[k] = _parse_value(k, text, types[k])
        raw[k] = text
    if validate:
        own = {k: v for k, v in out.items() if k not in (extra or {})}
        for k, v in own.items():  # one at a time, so the error names the option at fault
            _try_build(name, cls, {k: v}, f"--set {k}={raw[k]}")
        if len(own) > 1:
            _try_build(name, cls, own, "--set " + " --set ".join(f"{k}={raw[k]}" for k in own))
    return out


def _try_build(name: str, cls: type[Policy], kwargs: dict[str, Any], flags: str) -> None:
    from bandit_router.policies.prior import ArmPrior

    arms, dim = ["model-a", "model-b"], 2
    kw = dict(kwargs)
    if getattr(cls, "needs_prior", False):
        kw["priors"] = {a: ArmPrior(np.zeros(dim), 1.0) for a in arms}
    if name.strip().startswith("fixed"):
        kw["model"] = arms[0]
    try:
        cls(arms, dim, **kw)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{flags}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{flags}: not a valid value ({exc}).") from None


def _policy_class(name: str) -> tuple[str, type[Policy]]:
    key = name.strip()
    if key.startswith("fixed:"):
        key = "fixed"
    cls = POLICY_CLASSES.get(key)
    if cls is None:
        raise ConfigurationError(
            f"unknown policy {name!r}; choose one of: {', '.join(policy_names())}."
        )
    return key, cls


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
            f"{sorted(policy_options(key))}."
        )
    return cls(arms, dim, **kwargs)
