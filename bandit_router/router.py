"""The Router: one decision, end to end, for the service, the shell and the simulator.

The path of one query (``route``):

1. text (``prompt`` or chat ``messages``) -> ``Embedder.embed`` -> ``Featurizer`` -> the
   context ``x`` ``(d,)``; or a precomputed ``embedding`` through the featurizer; or a
   context ``x`` as is (``route_context``, the replay's entry). Outside the lock.
2. Under the router's lock: ``CostModel.estimate`` -> expected USD per model ``(K,)`` (or
   the caller's ``costs``); ``Policy.score(x)``; the user's ``AccountState`` from the
   ledger; ``Allocator.choose`` -> the model, or an explicit "budget exhausted" / "no
   eligible model" outcome listing why each model was excluded. A user without a budget
   skips the allocator: the policy chooses among the allowed models under ``max_cost``.
3. Still under the lock, the decision (id, user, model, context, all scores, propensity,
   estimated cost, policy version, embedder, prior) is written with its reservation in one
   call, ``stores.decisions.record``, before ``route`` returns.

``feedback(decision_id, reward, cost=None, usage=None)`` validates everything first, then
under the lock stores the feedback and settles the reservation (``add_feedback``, one
call), and applies every feedback logged since the last one it applied, in feedback-id
order (its own included): so the policy's state is always "snapshot + feedback log", also
when several processes share one store.

The same feedback twice is a no-op; different feedback on the same decision raises
``FeedbackConflictError``; an unknown decision (or another user's) ``UnknownDecisionError``;
feedback after the wait time ``DecisionExpiredError``. ``expire(now)`` settles the
reservations of decisions whose wait time is over at their estimate and, with a
``default_reward``, applies it as their feedback (``is_default=True``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bandit_router.blas import check_threads, limit_blas_threads
from bandit_router.budget.allocator import BudgetAllocator
from bandit_router.budget.clock import Clock, system_clock
from bandit_router.budget.costs import CostModel
from bandit_router.budget.periods import Budget
from bandit_router.budget.protocol import Allocator
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import (
    BudgetExhaustedError,
    ConfigurationError,
    DecisionExpiredError,
    DimensionMismatchError,
    FeedbackConflictError,
    InvalidInputError,
    UnknownArmError,
    UnknownDecisionError,
)
from bandit_router.features import Featurizer
from bandit_router.policies import ArmPrior, ArmScores, Policy, from_state
from bandit_router.policies.state import capture_state, encode_state
from bandit_router.records import record_maker
from bandit_router.stores import (
    DecisionRecord,
    FeedbackRecord,
    ModelRecord,
    Stores,
    UserRecord,
)
from bandit_router.stores_memory import memory_stores, same_feedback

# ---- decision ids ----------------------------------------------------------------------------

_uuid_lock = threading.Lock()
# (ms, counter, text of the ms) of the last id, so ids are strictly increasing and the
# timestamp's hex is formatted once per millisecond
_uuid_last: list = [0, 0, ""]
# random hex digits for the ids, from os.urandom 4 KiB at a time (one system call per 512
# ids instead of one per id); (pool, position of the next unused 16 digits)
_uuid_pool: list = ["", 0]
_POOL_BYTES = 4096
#: a random hex digit -> the UUID variant digit ``10xx`` keeping its two low bits
_VARIANT = {f"{i:x}": "89ab"[i & 3] for i in range(16)}


def uuid7() -> str:
    """A UUIDv7 (RFC 9562) as text: 48-bit Unix milliseconds, then a 12-bit counter and
    62 random bits, so ids made by one process sort in creation order.

    >>> a, b = uuid7(), uuid7()
    >>> a < b, a[14], a[19] in "89ab", len(a)
    (True, '7', True, 36)
    """
    with _uuid_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, counter, head = _uuid_last
        if ms <= last_ms:
            ms, counter = last_ms, counter + 1
            if counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                ms, counter = ms + 1, 0
        else:
            counter = 0
        if ms != last_ms:
            h = f"{ms:012x}"
            head = _uuid_last[2] = f"{h[:8]}-{h[8:]}-7"
        _uuid_last[0], _uuid_last[1] = ms, counter
        pool, i = _uuid_pool
        if i >= len(pool):
            pool, i = os.urandom(_POOL_BYTES).hex(), 0
            _uuid_pool[0] = pool
        _uuid_pool[1] = i + 16
    return f"{head}{counter:03x}-{_VARIANT[pool[i]]}{pool[i + 1 : i + 4]}-{pool[i + 4 : i + 16]}"


def counter_ids(prefix: str = "") -> Callable[[], str]:
    """Deterministic ids ``prefix0, prefix1...`` (replays and tests).

    >>> ids = counter_ids("run-")
    >>> ids(), ids()
    ('run-0', 'run-1')
    """
    state = [0]
    lock = threading.Lock()

    def nxt() -> str:
        with lock:
            i = state[0]
            state[0] = i + 1
        return f"{prefix}{i}"

    return nxt


# ---- results ---------------------------------------------------------------------------------


def _iso(t: float | None) -> str | None:
    if t is None or not math.isfinite(t):
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Route:
    """The outcome of ``Router.route``.

    ``model`` is None when nothing may be called: ``reason`` is then ``"exhausted"``
    (the budget cannot pay for any model; ``resets_at`` says when it renews) or
    ``"no_candidate"`` (``allowed`` / ``max_cost`` / retirements exclude every model), and
    ``excluded`` maps every model to why it was excluded. Otherwise ``reason`` is the
    allocator's (``admitted``, ``explored``, ``fallback``) or ``unbudgeted`` (a user
    without a budget). ``scores`` are the policy's scores of every active model;
    ``budget_remaining`` is what is left after this decision's reservation (None without
    a budget).

    >>> r = Route("id", "alice", None, 0.0, None, "exhausted", None, 0.0, 86_400.0,
    ...           {"m": "unaffordable"})
    >>> r.ok, r.as_dict()["budget_resets_at"]
    (False, '1970-01-02T00:00:00Z')
    """

    decision_id: str | None
    user: str
    model: str | None
    estimated_cost: float
    propensity: float | None
    reason: str
    scores: ArmScores | None
    budget_remaining: float | None
    resets_at: float | None
    excluded: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when a model was chosen (and its reservation recorded)."""
        return self.model is not None

    @property
    def index(self) -> int:
        """Position of the chosen model among ``scores.arms`` (-1 when none)."""
        if self.model is None or self.scores is None:
            return -1
        return list(self.scores.arms).index(self.model)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: decision_id, model, estimated_cost, propensity, budget_remaining..."""
        return {
            "decision_id": self.decision_id,
            "user": self.user,
            "model": self.model,
            "estimated_cost": self.estimated_cost,
            "propensity": self.propensity,
            "reason": self.reason,
            "budget_remaining": self.budget_remaining,
            "budget_resets_at": _iso(self.resets_at),
            "scores": self.scores.as_dict() if self.scores is not None else {},
            "excluded": dict(self.excluded),
            "message": self.message,
        }


@dataclass(frozen=True)
class FeedbackResult:
    """What ``Router.feedback`` did. ``duplicate``: the same feedback was already stored
    (nothing changed); ``applied``: the policy learned from it.

    >>> FeedbackResult("id", "m", 1.0, 0.002, 0.003, 4).as_dict()["feedback_id"]
    4
    """

    decision_id: str
    model: str
    reward: float | None
    cost: float
    estimated_cost: float
    feedback_id: int
    duplicate: bool = False
    applied: bool = True
    is_default: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "model": self.model,
            "reward": self.reward,
            "cost": self.cost,
            "estimated_cost": self.estimated_cost,
            "feedback_id": self.feedback_id,
            "duplicate": self.duplicate,
            "applied": self.applied,
            "is_default": self.is_default,
        }


# positional constructors of the records made on every routed query (``record_maker``)
_make_route = record_maker(Route)
_make_result = record_maker(FeedbackResult)
_make_decision = record_maker(DecisionRecord)
_make_feedback = record_maker(FeedbackRecord)


# ---- the router ------------------------------------------------------------------------------

#: usage keys accepted by ``feedback(usage=...)`` (ours and OpenAI's)
_IN_KEYS = ("input_tokens", "prompt_tokens")
_OUT_KEYS = ("output_tokens", "completion_tokens")


def _nonnegative(value: Any, what: str, unit: str, noun: str = "number") -> float:
    """``value`` as a finite float >= 0, or an ``InvalidInputError`` naming ``what``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a number of {unit}, got {value!r}.") from None
    if not (x >= 0 and math.isfinite(x)):
        raise InvalidInputError(f"{what} must be a finite {noun} of {unit} >= 0, got {value!r}.")
    return x


def _usd(value: Any, what: str) -> float:
    return _nonnegative(value, what, "USD", "amount")


#: ``Router.expire`` scans the decisions due since its last pass minus this many seconds...
EXPIRE_OVERLAP_S = 300.0
#: ... and every decision due again at least this often
EXPIRE_FULL_EVERY_S = 3600.0


def _then_write_snapshot(method: Callable[..., Any]) -> Callable[..., Any]:
    """After ``method`` (which may apply feedback under the lock), write the periodic
    snapshot it took, if any, once the lock is released (``Router._write_due``)."""

    @functools.wraps(method)
    def wrapper(self: Router, *args: Any, **kwargs: Any) -> Any:
        try:
            out = method(self, *args, **kwargs)
        except BaseException:
            if self._due is not None:  # the method's own error is the one to raise
                with contextlib.suppress(Exception):
                    self._write_due()
            raise
        if self._due is not None:
            self._write_due()
        return out

    return wrapper


class Router:
    """Routes queries to models under per-user budgets and learns from their feedback.

    Parameters
    ----------
    catalogue
        The active models, in the order of ``policy.arms``.
    embedder
        Texts -> vectors (None: only ``embedding=`` / ``route_context`` can be routed).
    featurizer
        Embedding -> context (None: ``Featurizer(embedder.dim)``).
    policy
        The bandit, over the catalogue's models.
    allocator
        Anything with the ``Allocator`` protocol (default ``BudgetAllocator()``).
    cost_model
        Expected USD per model (default ``CostModel(catalogue)``).
    stores
        Where decisions, feedback, budgets, snapshots and the catalogue live (default: in
        memory).
    clock
        Seconds since the epoch (inject ``ManualClock`` in tests and replays).
    feedback_wait_seconds
        How long feedback is accepted (None: forever).
    default_reward
        Feedback applied by ``expire`` (None: the reservation settles, nothing is learned).
    default_budget
        Budget of users the user directory does not know (None: they are not limited).
    max_prompt_chars
        Longer prompts are refused.
    snapshot_every
        Write a snapshot after that many applied feedback (0: only when asked).
    prior
        A ``PriorArtifact``: its priors seed models added at run time.
    ids
        Decision-id generator (default ``uuid7``).
    log_propensity
        Compute the propensity of every decision (a replay that keeps no log turns it off:
        Thompson sampling estimates it by Monte Carlo). Stored as NaN when off.
    last_feedback_id
        The last feedback already folded into ``policy`` (``restore`` sets it).
    blas_threads
        BLAS threads of the process, set when the router is built (``bandit_router.blas``:
        one thread keeps the per-query products from waiting on a second one; None
        leaves the process's setting alone).

    >>> from bandit_router.budget import Budget, ManualClock
    >>> from bandit_router.catalogue import ModelSpec
    >>> from bandit_router.embeddings import HashingEmbedder
    >>> from bandit_router.policies import make_policy
    >>> models = [ModelSpec("small", 0.1, 0.4), ModelSpec("large", 5.0, 15.0)]
    >>> emb = HashingEmbedder(dim=16)
    >>> router = Router(models, emb, None, make_policy("linucb", ["small", "large"], 17, seed=0),
    ...                 clock=ManualClock(0.0))
    >>> router.set_user("alice", Budget(1.0, "daily"))
    >>> r = router.route("alice", "What is 2 + 2?")
    >>> r.model in ("small", "large"), r.propensity, r.budget_remaining < 1.0
    (True, 1.0, True)
    >>> f = router.feedback(r.decision_id, 1.0, cost=0.001)
    >>> f.feedback_id, router.feedback(r.decision_id, 1.0, cost=0.001).duplicate
    (1, True)
    """

    def __init__(
        self,
        catalogue: Sequence[ModelSpec],
        embedder: Any | None,
        featurizer: Featurizer | None,
        policy: Policy,
        allocator: Allocator | None = None,
        cost_model: CostModel | None = None,
        stores: Stores | None = None,
        *,
        clock: Clock = system_clock,
        feedback_wait_seconds: float | None = 86_400.0,
        default_reward: float | None = None,
        default_budget: Budget | None = None,
        max_prompt_chars: int = 100_000,
        snapshot_every: int = 0,
        prior: Any | None = None,
        ids: Callable[[], str] = uuid7,
        log_propensity: bool = True,
        last_feedback_id: int = 0,
        blas_threads: int | None = 1,
    ) -> None:
        specs = list(catalogue)
        names = [s.name for s in specs]
        if names != policy.arms:
            raise ConfigurationError(
                f"the catalogue's models {names} must be the policy's arms {policy.arms}, "
                "in the same order."
            )
        if featurizer is None:
            if embedder is None:
                featurizer = None
            else:
                featurizer = Featurizer(int(embedder.dim))
        if featurizer is not None and featurizer.dim != policy.dim:
            raise DimensionMismatchError(
                f"the featurizer gives {featurizer.dim}-d contexts but the policy was built for "
                f"{policy.dim}; build the policy with featurizer.dim."
            )
        if embedder is not None and featurizer is not None and featurizer.in_dim != embedder.dim:
            raise DimensionMismatchError(
                f"the embedder gives {embedder.dim}-d vectors, the featurizer expects "
                f"{featurizer.in_dim}; use the embedder the prior was trained with."
            )
        if feedback_wait_seconds is not None and not feedback_wait_seconds > 0:
            raise ConfigurationError(
                f"feedback_wait_seconds must be > 0 (or None), got {feedback_wait_seconds}."
            )
        lo, hi = policy.reward_range
        if default_reward is not None and not lo <= default_reward <= hi:
            raise ConfigurationError(
                f"default_reward {default_reward} is outside the reward range [{lo}, {hi}]."
            )
        blas_threads = check_threads(blas_threads)
        if blas_threads is not None:
            limit_blas_threads(blas_threads)
        self.embedder = embedder
        self.featurizer = featurizer
        self.policy = policy
        self.allocator: Allocator = (
            allocator
            if allocator is not None
            else BudgetAllocator(reward_range=policy.reward_range)
        )
        self.cost_model = cost_model if cost_model is not None else CostModel(specs)
        if list(self.cost_model.models) != names:
            raise ConfigurationError(
                f"the cost model's models {self.cost_model.models} must be the catalogue's {names}."
            )
        self.stores = stores if stores is not None else memory_stores(clock=clock)
        self.clock = clock
        self.feedback_wait_seconds = feedback_wait_seconds
        self.default_reward = default_reward
        self.default_budget = default_budget
        self.max_prompt_chars = int(max_prompt_chars)
        self.snapshot_every = int(snapshot_every)
        self.prior = prior
        self.prior_id = (getattr(prior, "fingerprint", "") or None) if prior is not None else None
        self.ids = ids
        self.log_propensity = bool(log_propensity)
        self.last_feedback_id = int(last_feedback_id)
        self._lock = threading.RLock()
        self._embed_lock = threading.Lock()  # the in-memory embedding cache is not thread-safe
        self._specs: dict[str, ModelSpec] = {s.name: s for s in specs}
        self._retired: set[str] = set()
        self._active: set[str] = set(names)
        self._budgets: dict[str, Budget | None] = {}
        self._since_snapshot = 0
        #: None, or a callable saying whether this process may write the periodic
        #: snapshots (``bandit_router.sync``: only the holder of the advisory lock does)
        self.snapshot_gate: Callable[[], bool] | None = None
        # a periodic snapshot taken under the lock, written to the store after it is
        # released (``_write_due``); the write lock keeps the writes in feedback order
        self._due: tuple[Any, int, dict[str, Any]] | None = None
        self._snapshot_write_lock = threading.Lock()
        self._saved_upto = -1  # the last feedback id of the newest snapshot written here
        # ``expire``: every decision due before ``_expired_upto`` has been settled
        self._expired_upto = -math.inf
        self._expired_full_at: float | None = None
        self._embedder_name = str(getattr(embedder, "name", "") or "")
        known = {r.spec.name: r for r in self.stores.models.list()}
        for name, rec in known.items():
            if rec.status == "retired" and name not in names:
                self._retired.add(name)
                self._specs.setdefault(name, rec.spec)
        for s in specs:
            rec = known.get(s.name)
            if rec is None or rec.status != "active" or rec.spec != s:
                self.stores.models.put(ModelRecord(s, "active"))

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        config: Any,
        stores: Stores | None = None,
        *,
        embedder: Any | None = None,
        prior: Any | None = None,
        clock: Clock = system_clock,
        **kwargs: Any,
    ) -> Router:
        """Build from a ``RouterConfig`` (or a dict of one) on ``stores`` (default: memory).

        The catalogue as stored (models added, retired or repriced at run time) wins over
        the config's list, whose new models are added. With a snapshot in the store, the
        policy is its state plus the feedback logged after it (``restore``); otherwise a
        fresh policy from the config (seeded by the prior if there is one) plus all the
        feedback in the store.
        """
        from bandit_router.config import RouterConfig, build_policy

        if isinstance(config, Mapping):
            config = RouterConfig.from_dict(config)
        stores = stores if stores is not None else memory_stores(clock=clock)
        if embedder is None:
            from bandit_router.embeddings import make_embedder

            emb_name = config.embedder
            if prior is None and config.prior is not None:
                prior = _load_prior(config.prior)
            if prior is not None:
                emb_name = prior.embedder_name
            embedder = make_embedder(emb_name)
        elif prior is None and config.prior is not None:
            prior = _load_prior(config.prior)
        if prior is not None:
            prior.check_compatible(str(embedder.name), int(embedder.dim))
            featurizer = prior.featurizer()
        else:
            featurizer = Featurizer(int(embedder.dim))
        stored = list(stores.models.list())
        by_name = {r.spec.name: r for r in stored}
        active = [r.spec for r in stored if r.status == "active"]
        for spec in config.models:
            if spec.name not in by_name:
                active.append(spec)
        if not active:
            raise ConfigurationError(
                "every model of the catalogue is retired; add one (bandit-router models add)."
            )
        names = [s.name for s in active]
        opts = dict(config.policy_options)
        opts.setdefault("reward_range", tuple(config.reward_range))
        snap = stores.snapshots.latest()
        last = 0
        realigned = False
        if snap is not None:
            policy = from_state(snap.blob)
            last = snap.last_feedback_id
            realigned = _align_arms(policy, names, prior)
        else:
            priors = None
            if prior is not None:
                priors = prior.priors(names)
            policy = build_policy(
                config.policy, names, featurizer.dim, priors=priors, seed=config.seed, **opts
            )
        if policy.dim != featurizer.dim:
            raise DimensionMismatchError(
                f"the stored policy has {policy.dim}-d contexts but the config's embedder/prior "
                f"gives {featurizer.dim}-d; route with the embedder and prior it was built with."
            )
        order = {a: i for i, a in enumerate(policy.arms)}
        active.sort(key=lambda s: order[s.name])
        alloc_opts = dict(config.allocator)
        alloc_opts.setdefault("reward_range", tuple(config.reward_range))
        router = cls(
            active,
            embedder,
            featurizer,
            policy,
            BudgetAllocator(**alloc_opts),
            None,
            stores,
            clock=clock,
            feedback_wait_seconds=config.feedback_wait_seconds,
            default_reward=config.default_reward,
            default_budget=config.budget(),
            max_prompt_chars=config.max_prompt_chars,
            snapshot_every=config.snapshot_every,
            prior=prior,
            last_feedback_id=last,
            **kwargs,
        )
        if snap is not None:
            tokens = snap.meta.get("expected_output_tokens") or {}
            router._restore_output_tokens(tokens)
        router.catch_up()
        if realigned:  # the catalogue changed since the snapshot: fold the change in now
            router.snapshot()
        return router

    @classmethod
    def restore(cls, config: Any, stores: Stores, **kwargs: Any) -> Router:
        """A router on ``stores`` in the state its latest snapshot and feedback log give."""
        return cls.from_config(config, stores, **kwargs)

    @property
    def lock(self) -> threading.RLock:
        """The re-entrant lock ``route`` and ``feedback`` hold: the service tries it
        without blocking to learn whether a call would run at once (then it runs on the
        event loop) or wait (then in a worker thread)."""
        return self._lock

    # ---- models and users ----------------------------------------------------------------
    @property
    def models(self) -> list[str]:
        """The active models, in arm order."""
        return self.policy.arms

    @property
    def catalogue(self) -> list[ModelSpec]:
        return [self._specs[a] for a in self.policy.arms]

    def set_user(self, name: str, budget: Budget | None) -> None:
        """Add or update a user; ``budget`` None: not limited."""
        name = _user(name)
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidInputError(f"budget must be a Budget, got {type(budget).__name__}.")
        with self._lock:
            self.stores.users.put(UserRecord(name, budget))
            if budget is not None:
                self.stores.ledger.set_budget(name, budget)
            self._budgets[name] = budget

    def budget_of(self, user: str) -> Budget | None:
        """The user's budget (their own, else the default), None when not limited."""
        with self._lock:
            return self._budget(user)

    def _budget(self, user: str) -> Budget | None:
        try:
            return self._budgets[user]
        except KeyError:
            pass
        rec = self.stores.users.get(user)
        budget = rec.budget if rec is not None else self.default_budget
        if budget is not None:
            try:
                self.stores.ledger.state(user)
            except Exception:  # the ledger does not know the user yet
                self.stores.ledger.set_budget(user, budget)
        self._budgets[user] = budget
        return budget

    def add_model(self, spec: ModelSpec, prior: ArmPrior | None = None) -> None:
        """Add a model at run time (or bring a retired one back). It starts from ``prior``,
        else from the router's prior artifact if that knows it, else from the pooled mean
        of the other models. A snapshot is written at once, so a restart rebuilds the
        same state."""
        if not isinstance(spec, ModelSpec):
            raise InvalidInputError(f"expected a ModelSpec, got {type(spec).__name__}.")
        with self._lock:
            if spec.name in self.policy.arms:
                raise ConfigurationError(
                    f"model {spec.name!r} is already active; change its prices instead."
                )
            if prior is None and self.prior is not None and spec.name in self.prior.models:
                prior = self.prior.priors([spec.name])[spec.name]
            self._catch_up()
            self.policy.add_arm(spec.name, prior)
            self._active.add(spec.name)
            self._specs[spec.name] = spec
            self._retired.discard(spec.name)
            self._rebuild_costs()
            self.stores.models.put(ModelRecord(spec, "active"))
            self.snapshot()

    def retire_model(self, name: str) -> None:
        """Stop routing to ``name``; its learned state is dropped. Pending feedback on its
        decisions still settles their cost. A snapshot is written at once."""
        with self._lock:
            if name not in self.policy.arms:
                raise UnknownArmError(
                    f"no active model {name!r}; active models: {', '.join(self.policy.arms)}."
                )
            self._catch_up()
            self.policy.remove_arm(name)
            self._active.discard(name)
            self._retired.add(name)
            self._rebuild_costs()
            self.stores.models.put(ModelRecord(self._specs[name], "retired"))
            self.snapshot()

    def set_price(
        self,
        name: str,
        *,
        input_price_per_mtok: float | None = None,
        output_price_per_mtok: float | None = None,
        price_per_call: float | None = None,
        expected_output_tokens: float | None = None,
    ) -> ModelSpec:
        """Change a model's prices (USD per million tokens, per call); returns the new spec."""
        with self._lock:
            spec = self._specs.get(name)
            if spec is None:
                raise UnknownArmError(
                    f"no model {name!r}; the catalogue has: {', '.join(self._specs)}."
                )
            changes = {
                k: _usd(v, k.replace("_", " "))
                for k, v in (
                    ("input_price_per_mtok", input_price_per_mtok),
                    ("output_price_per_mtok", output_price_per_mtok),
                    ("price_per_call", price_per_call),
                    ("expected_output_tokens", expected_output_tokens),
                )
                if v is not None
            }
            new = replace(spec, **changes)
            self._specs[name] = new
            if name in self.policy.arms:
                self._rebuild_costs(reset={name} if expected_output_tokens is not None else ())
            status = "retired" if name in self._retired else "active"
            self.stores.models.put(ModelRecord(new, status))
            return new

    def _rebuild_costs(self, reset: Iterable[str] = ()) -> None:
        old = self.cost_model
        learned = dict(zip(old.models, old.expected_output_tokens.tolist(), strict=True))
        specs = []
        for a in self.policy.arms:
            s = self._specs[a]
            if a in learned and a not in reset:
                s = replace(s, expected_output_tokens=learned[a])
            specs.append(s)
        self.cost_model = CostModel(specs, old.token_counter, output_stat=old.output_stat)

    def _restore_output_tokens(self, tokens: Mapping[str, float]) -> None:
        if not tokens:
            return
        cm = self.cost_model
        for k, a in enumerate(cm.models):
            if a in tokens:
                cm.expected_output_tokens[k] = float(tokens[a])
        cm._refresh_base()

    # ---- routing -------------------------------------------------------------------------
    def text_of(self, prompt: str | None = None, messages: Sequence[Any] | None = None) -> str:
        """The text to embed: the prompt, or the chat messages' contents one per line."""
        if prompt is not None and messages is not None:
            raise InvalidInputError("give the prompt or the messages, not both.")
        if messages is not None:
            if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
                raise InvalidInputError(
                    "messages must be a list of {role, content} objects, as in a chat request."
                )
            parts = []
            for i, m in enumerate(messages):
                content = m.get("content") if isinstance(m, Mapping) else None
                if isinstance(content, list):  # OpenAI content parts
                    content = " ".join(
                        str(p.get("text", "")) for p in content if isinstance(p, Mapping)
                    )
                if not isinstance(content, str):
                    raise InvalidInputError(
                        f"message #{i} has no text content; give {{'role': ..., 'content': '...'}}."
                    )
                parts.append(content)
            text = "\n".join(parts)
        elif prompt is not None:
            if not isinstance(prompt, str):
                raise InvalidInputError(f"the prompt must be text, got {type(prompt).__name__}.")
            text = prompt
        else:
            raise InvalidInputError("give a prompt, chat messages or an embedding to route.")
        if not text.strip():
            raise InvalidInputError("the prompt is empty; give the text of the query.")
        if len(text) > self.max_prompt_chars:
            raise InvalidInputError(
                f"the prompt has {len(text)} characters; this router accepts at most "
                f"{self.max_prompt_chars} (max_prompt_chars). Shorten or truncate it."
            )
        return text

    def context_of(
        self,
        prompt: str | None = None,
        messages: Sequence[Any] | None = None,
        embedding: Any | None = None,
    ) -> tuple[np.ndarray, str | None]:
        """The context ``(d,)`` of a query and the text it came from (None for an embedding)."""
        if self.featurizer is None:
            raise ConfigurationError(
                "this router has no embedder or featurizer; route contexts with route_context."
            )
        if embedding is not None:
            if prompt is not None or messages is not None:
                raise InvalidInputError("give a prompt, messages or an embedding, not several.")
            try:
                e = np.asarray(embedding, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInputError("the embedding must be a list of numbers.") from None
            if e.ndim != 1:
                raise DimensionMismatchError(
                    f"the embedding must be one vector of {self.featurizer.in_dim} numbers, "
                    f"got shape {e.shape}."
                )
            return self.featurizer.transform_one(e), None
        text = self.text_of(prompt, messages)
        if self.embedder is None:
            raise ConfigurationError("this router has no embedder; send an embedding instead.")
        with self._embed_lock:
            vec = self.embedder.embed([text])[0]
        return self.featurizer.transform_one(vec), text

    def route(
        self,
        user: str,
        prompt: str | None = None,
        messages: Sequence[Any] | None = None,
        embedding: Any | None = None,
        *,
        allowed: Iterable[str] | None = None,
        max_cost: float | None = None,
        input_tokens: float | None = None,
        costs: np.ndarray | None = None,
    ) -> Route:
        """Choose a model for one query of ``user`` and record the decision.

        Give the ``prompt``, the chat ``messages`` or a precomputed ``embedding`` ``(D,)``.
        ``allowed`` restricts the models; ``max_cost`` caps the estimated USD of this
        query. ``input_tokens`` (with an embedding: the prompt's length) and ``costs``
        (estimated USD per active model ``(K,)``, e.g. a logged row) override the cost
        model.
        """
        x, text = self.context_of(prompt, messages, embedding)  # outside the lock
        if costs is None and input_tokens is None:
            input_tokens = 0.0 if text is None else self.cost_model.input_tokens(text)
        return self.route_context(
            user, x, allowed=allowed, max_cost=max_cost, input_tokens=input_tokens, costs=costs
        )

    def route_context(
        self,
        user: str,
        x: np.ndarray,
        *,
        allowed: Iterable[str] | np.ndarray | None = None,
        max_cost: float | None = None,
        input_tokens: float | None = None,
        costs: np.ndarray | None = None,
    ) -> Route:
        """``route`` for a featurized context ``x`` ``(d,)``: the same path without the
        embedder (the replay's entry). The context is kept by reference: do not mutate it."""
        if type(user) is not str or not user.strip():
            user = _user(user)
        if max_cost is not None:
            max_cost = _usd(max_cost, "max_cost")
        if type(x) is not np.ndarray or x.dtype != np.float64:
            x = np.asarray(x, dtype=np.float64)  # shape and NaN: checked by policy.score
        with self._lock:
            pol = self.policy
            K = pol.n_arms
            if costs is None:
                c = self.cost_model.estimate(input_tokens=input_tokens or 0.0)
            else:
                c = costs
                if type(c) is not np.ndarray or c.dtype != np.float64 or c.shape != (K,):
                    c = np.asarray(c, dtype=np.float64)
                    if c.shape != (K,):
                        raise DimensionMismatchError(
                            f"costs has shape {c.shape}, expected ({K},): one per active model."
                        )
                if not (c.min() >= 0.0 and c.max() < math.inf):
                    raise InvalidInputError("costs must be finite USD amounts >= 0.")
            mask = None if allowed is None else self._allowed_mask(allowed)
            budget = self._budgets[user] if user in self._budgets else self._budget(user)
            scores = pol.score(x)  # validates x: shape (d,), finite
            state = None
            threshold = None
            if budget is None:
                m = mask
                if max_cost is not None:
                    m = (c <= max_cost) if m is None else (m & (c <= max_cost))
                if m is not None and not m.any():
                    return self._refusal(user, "no_candidate", scores, c, mask, max_cost, None)
                d = pol.choose(scores, m)
                reason = "explored" if d.explored else "unbudgeted"
            else:
                state = self.stores.ledger.state(user)
                if mask is not None and not mask.any():
                    return self._refusal(user, "no_candidate", scores, c, mask, max_cost, state)
                a = self.allocator.choose(pol, scores, c, state, max_cost=max_cost, allowed=mask)
                if a.decision is None:
                    return self._refusal(user, a.reason, scores, c, mask, max_cost, state)
                d, reason, threshold = a.decision, a.reason, a.threshold
            cost = float(c[d.index])
            now = self.clock()
            did = self.ids()
            propensity = d.propensity if self.log_propensity else math.nan
            wait = self.feedback_wait_seconds
            record = _make_decision(
                did,
                user,
                now,
                d.arm,
                x,
                _LazyScores(scores),
                propensity,
                cost,
                pol.name,
                pol.n_updates,
                self._embedder_name,
                self.prior_id,
                reason,
                None if wait is None else now + wait,
                budget is not None,
            )
            try:
                self.stores.decisions.record(record)
            except BudgetExhaustedError:  # another process spent the budget meanwhile
                state = self.stores.ledger.state(user)
                return self._refusal(user, "exhausted", scores, c, mask, max_cost, state)
            if state is None:
                return _make_route(
                    did, user, d.arm, cost, propensity, reason, scores, None, None, {},
                    threshold, "",
                )  # fmt: skip
            left = state.budget.amount_usd - state.spent - state.reserved - cost
            return _make_route(
                did, user, d.arm, cost, propensity, reason, scores, left if left > 0.0 else 0.0,
                state.resets_at, {}, threshold, "",
            )  # fmt: skip

    def _allowed_mask(self, allowed: Iterable[str] | np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        if isinstance(allowed, np.ndarray) and allowed.dtype == bool:
            if allowed.shape != (self.policy.n_arms,):
                raise DimensionMismatchError(
                    f"allowed mask has shape {allowed.shape}, expected ({self.policy.n_arms},)."
                )
            return allowed
        if isinstance(allowed, str):
            allowed = [allowed]
        names = [str(a) for a in allowed]
        unknown = [a for a in names if a not in self._specs]
        if unknown:
            raise UnknownArmError(
                f"unknown model(s) {unknown} in the allowed list; the catalogue has: "
                f"{', '.join(self._specs)}."
            )
        index = {a: i for i, a in enumerate(self.policy.arms)}
        mask = np.zeros(self.policy.n_arms, dtype=bool)
        for a in names:
            if a in index:
                mask[index[a]] = True
        return mask

    def _refusal(
        self,
        user: str,
        reason: str,
        scores: ArmScores,
        c: np.ndarray,
        mask: np.ndarray | None,
        max_cost: float | None,
        state: Any | None,
    ) -> Route:
        """A route with no model, and why each model of the catalogue was excluded."""
        remaining = None if state is None else state.remaining
        excluded: dict[str, str] = {}
        for k, a in enumerate(self.policy.arms):
            why = []
            if mask is not None and not mask[k]:
                why.append("not allowed for this query")
            if max_cost is not None and c[k] > max_cost:
                why.append(f"over max_cost ({c[k]:.6g} > {max_cost:.6g} USD)")
            if remaining is not None and c[k] > remaining:
                why.append(f"unaffordable ({c[k]:.6g} USD > {remaining:.6g} left)")
            excluded[a] = "; ".join(why) or "not worth its price under the budget pacing"
        for a in sorted(self._retired):
            excluded[a] = "retired"
        if reason == "exhausted":
            when = _iso(state.resets_at) if state is not None else None
            msg = (
                f"budget exhausted: {remaining:.6g} USD left of "
                f"{state.budget.amount_usd:.6g}, not enough for any model; "
                + (f"it resets at {when}." if when else "it does not reset (total budget).")
            )
        else:
            msg = "no eligible model: " + "; ".join(f"{a}: {w}" for a, w in excluded.items())
        return Route(
            None,
            user,
            None,
            0.0,
            None,
            reason,
            scores,
            remaining,
            None if state is None else state.resets_at,
            excluded,
            None,
            msg,
        )

    # ---- feedback ------------------------------------------------------------------------
    @_then_write_snapshot
    def feedback(
        self,
        decision_id: str,
        reward: float,
        cost: float | None = None,
        usage: Mapping[str, float] | None = None,
        user: str | None = None,
    ) -> FeedbackResult:
        """Learn from the reward of a routed decision and settle its cost.

        ``cost`` is the actual USD; without it, ``usage`` (``input_tokens`` /
        ``output_tokens``, or OpenAI's ``prompt_tokens`` / ``completion_tokens``) times the
        model's prices; without both, the estimate. With ``user``, a decision of another
        user is unknown.
        """
        did = str(decision_id)
        lo, hi = self.policy.reward_range
        try:
            r = float(reward)
        except (TypeError, ValueError):
            raise InvalidInputError(f"the reward must be a number, got {reward!r}.") from None
        if not lo <= r <= hi:
            raise InvalidInputError(
                f"reward {reward!r} is outside the configured range [{lo:g}, {hi:g}]; rescale "
                "the feedback (e.g. thumbs up = 1, down = 0)."
            )
        if cost is not None:
            cost = _usd(cost, "the cost")
        tokens = _usage(usage) if usage is not None else None
        with self._lock:
            d = self.stores.decisions.get(did)
            if d is None or (user is not None and d.user != user):
                raise UnknownDecisionError(
                    f"no decision {did!r}"
                    + (f" of user {user!r}" if user is not None else "")
                    + "; give the decision_id that route returned."
                )
            if cost is None:
                if tokens is not None:
                    cost = self._specs[d.model].cost(*tokens)
                else:
                    cost = d.estimated_cost
            now = self.clock()
            rec = _make_feedback(did, r, float(cost), now, d.model, d.context, d.user, False, 0)
            known = self.stores.decisions.feedback_for(did)
            if known is not None:
                return self._known(d, known, rec)
            if d.expires_at is not None and now > d.expires_at:
                raise DecisionExpiredError(
                    f"decision {did} expired at {_iso(d.expires_at)} (the feedback wait time "
                    "is over); its cost was settled at the estimate. Send feedback sooner or "
                    "raise feedback_wait_seconds."
                )
            out = self.stores.decisions.add_feedback(rec)
            if out.duplicate:  # another process stored the same feedback meanwhile
                return self._known(d, out.record, rec)
            if tokens is not None and d.model in self.cost_model.models:
                self.cost_model.observe(d.model, tokens[1])
            self._catch_up()
            return _make_result(
                did, d.model, r, float(cost), d.estimated_cost, out.record.feedback_id, False,
                d.model in self.policy._index, False,
            )  # fmt: skip

    def _known(
        self, d: DecisionRecord, known: FeedbackRecord, rec: FeedbackRecord
    ) -> FeedbackResult:
        if known.is_default:
            raise DecisionExpiredError(
                f"decision {d.decision_id} expired (the feedback wait time is over); its cost "
                "was settled at the estimate"
                + (
                    f" and the default reward {known.reward:g} applied."
                    if known.reward is not None
                    else "."
                )
            )
        if same_feedback(known, rec):
            return FeedbackResult(
                d.decision_id, d.model, known.reward, known.cost, d.estimated_cost,
                known.feedback_id, duplicate=True, applied=False,
            )  # fmt: skip
        raise FeedbackConflictError(
            f"decision {d.decision_id} already has feedback (reward {known.reward:g}, cost "
            f"{known.cost:.6g} USD); it is accepted once per decision, so this different "
            f"one (reward {rec.reward:g}, cost {rec.cost:.6g}) was not applied."
        )

    @_then_write_snapshot
    def release(self, decision_id: str, user: str | None = None) -> FeedbackResult:
        """Cancel a decision whose model was never called (its upstream failed): the
        reservation settles at 0 USD and nothing is learned. It is stored as a feedback
        record without a reward (``is_default=True``), so later feedback on it is refused
        as for an expired decision. Releasing twice is a no-op (``duplicate``)."""
        did = str(decision_id)
        with self._lock:
            d = self.stores.decisions.get(did)
            if d is None or (user is not None and d.user != user):
                raise UnknownDecisionError(
                    f"no decision {did!r}; give the decision_id that route returned."
                )
            rec = FeedbackRecord(
                did, None, 0.0, self.clock(), d.model, d.context, d.user, is_default=True
            )
            out = self.stores.decisions.add_feedback(rec)  # conflicts if feedback came first
            self._catch_up()
            return FeedbackResult(
                did, d.model, None, 0.0, d.estimated_cost, out.record.feedback_id,
                duplicate=out.duplicate, applied=False, is_default=True,
            )  # fmt: skip

    @_then_write_snapshot
    def catch_up(self) -> int:
        """Apply the feedback logged after ``last_feedback_id`` (by any process), in id
        order; returns how many records were read."""
        return self._catch_up()

    def _catch_up(self) -> int:
        """``catch_up`` for callers that write the due snapshot themselves (they hold the
        lock, or are wrapped in ``_then_write_snapshot`` too)."""
        with self._lock:
            n = 0
            while True:
                batch = self.stores.decisions.feedback_since(self.last_feedback_id, 10_000)
                if not batch:
                    return n
                for f in batch:
                    self._apply(f)
                n += len(batch)
                if len(batch) < 10_000:
                    return n

    @_then_write_snapshot
    def apply_feedback(self, records: Sequence[FeedbackRecord]) -> int:
        """Apply feedback read from the log *outside* the lock (``feedback_since(w)`` for a
        watermark ``w <= last_feedback_id``): the records after ``last_feedback_id``, in id
        order; returns how many. Feedback ids are assigned in commit order, so the records
        of one read are the whole log between its watermark and its last id."""
        n = 0
        with self._lock:
            for f in records:
                if f.feedback_id > self.last_feedback_id:
                    self._apply(f)
                    n += 1
        return n

    def refresh_catalogue(self) -> bool:
        """Fold in the catalogue changes another process stored (models added, retired or
        repriced through its admin API); returns whether anything changed.

        A new or retired model changes the learned state (a new arm starts from the prior
        or the pooled mean of the others *at that moment*), so this process does not redo
        it: it reloads the snapshot the changing process wrote at once (``add_model`` /
        ``retire_model``) and replays the feedback after it, which gives exactly the
        changing process's state. Until that snapshot is visible, nothing changes (the
        next call retries). Price changes only rebuild the cost model."""
        records = list(self.stores.models.list())
        active = [r.spec for r in records if r.status == "active"]
        names = {s.name for s in active}
        with self._lock:
            changed = False
            if names and names != set(self.policy.arms):
                snap = self.stores.snapshots.latest()
                if snap is None or set(snap.meta.get("arms") or ()) != names:
                    return False  # the writer's snapshot is not committed yet
                policy = from_state(snap.blob)
                if policy.dim != self.policy.dim:
                    return False
                self.policy = policy
                self.last_feedback_id = int(snap.last_feedback_id)
                self._active = set(policy.arms)
                self._retired = {r.spec.name for r in records if r.status == "retired"}
                for r in records:
                    self._specs[r.spec.name] = r.spec
                self._rebuild_costs()
                self._restore_output_tokens(snap.meta.get("expected_output_tokens") or {})
                self._since_snapshot = 0
                changed = True
            reset = set()
            for r in records:
                old = self._specs.get(r.spec.name)
                if old is None or old == r.spec:
                    continue
                self._specs[r.spec.name] = r.spec
                if old.expected_output_tokens != r.spec.expected_output_tokens:
                    reset.add(r.spec.name)
                changed = True
            if changed:
                self._rebuild_costs(reset=reset & set(self.policy.arms))
        if changed:
            self.catch_up()
        return changed

    def forget_budgets(self) -> None:
        """Drop the cached budgets of users: the next route reads each user's budget from
        the user directory again (another process may have changed it)."""
        with self._lock:
            self._budgets.clear()

    def _apply(self, f: FeedbackRecord) -> None:
        if f.reward is not None and f.model in self._active:
            self.policy.update(f.model, f.context, f.reward)
        self.last_feedback_id = f.feedback_id
        self._since_snapshot += 1
        if self.snapshot_every and self._since_snapshot >= self.snapshot_every:
            gate = self.snapshot_gate
            if gate is None or gate():
                self._due = self._capture()  # written once the lock is free

    @_then_write_snapshot
    def expire(self, now: float | None = None) -> list[FeedbackResult]:
        """Settle every decision whose wait time is over at its estimate and, with a
        ``default_reward``, apply that reward as its feedback (``is_default=True``)."""
        now = self.clock() if now is None else float(now)
        out: list[FeedbackResult] = []
        with self._lock:
            # the decisions due since the last pass (with an overlap), not every old one:
            # a full scan walks the whole expires_at index, ~55 ms per 100,000 answered
            # decisions on SQLite, every expire_interval_s; a full pass still runs hourly
            # (a decision written late by a process with a slow clock)
            full = (
                self._expired_full_at is None
                or now < self._expired_upto
                or now - self._expired_full_at >= EXPIRE_FULL_EVERY_S
            )
            after = None if full else self._expired_upto - EXPIRE_OVERLAP_S
            for d in self.stores.decisions.expired(now, after=after):
                rec = FeedbackRecord(
                    d.decision_id, self.default_reward, d.estimated_cost, now, d.model,
                    d.context, d.user, is_default=True,
                )  # fmt: skip
                try:
                    res = self.stores.decisions.add_feedback(rec)
                except FeedbackConflictError:  # real feedback came first (another process)
                    continue
                if res.duplicate:
                    continue
                out.append(
                    FeedbackResult(
                        d.decision_id, d.model, self.default_reward, d.estimated_cost,
                        d.estimated_cost, res.record.feedback_id,
                        applied=self.default_reward is not None and d.model in self.policy.arms,
                        is_default=True,
                    )
                )  # fmt: skip
            self._catch_up()
            self._expired_upto = max(self._expired_upto, now)  # only after a whole pass
            if full:
                self._expired_full_at = now
        return out

    # ---- history -------------------------------------------------------------------------
    def prune(self, older_than: float) -> dict[str, int]:
        """Forget the history older than ``older_than`` seconds that nothing needs any more;
        returns how many records (rows) went, per kind.

        A snapshot is written first, so the state rebuilds from it: then the feedback folded
        into it, its decisions and their settled reservations go when older than the cutoff.
        Decisions waiting for feedback, open reservations and the feedback after the
        snapshot stay; a feedback on a pruned decision is an unknown decision. In memory
        this is what bounds a long-lived router (about 3 KB per query otherwise, d = 64);
        on a database it is ``bandit-router db prune --older-than`` (which also drops old
        journal entries outside every rolling window).

        >>> from bandit_router.budget import ManualClock
        >>> from bandit_router.catalogue import ModelSpec
        >>> from bandit_router.policies import make_policy
        >>> clock = ManualClock(0.0)
        >>> router = Router([ModelSpec("a", 1.0, 1.0), ModelSpec("b", 2.0, 2.0)], None, None,
        ...                 make_policy("linucb", ["a", "b"], 2, seed=0), clock=clock)
        >>> for _ in range(3):
        ...     r = router.route_context("u", np.array([1.0, 0.0]))
        ...     _ = router.feedback(r.decision_id, 1.0)
        >>> _ = clock.advance(3600)
        >>> router.prune(older_than=60)
        {'decisions': 3, 'feedback': 3, 'ledger_settlements': 0}
        """
        t = _nonnegative(older_than, "older_than", "seconds")
        with self._lock:
            snap = self.snapshot()
            prune = getattr(self.stores.decisions, "prune", None)
            if prune is not None:  # in memory
                return prune(self.clock() - t, snap.last_feedback_id)
        engine = getattr(self.stores, "engine", None)
        if engine is None:
            raise ConfigurationError(
                "these stores cannot prune their history; on a database use "
                "`bandit-router db prune --older-than`."
            )
        from bandit_router.storage.maintenance import prune as prune_database

        return prune_database(engine, t, now=self.clock())

    # ---- snapshots -----------------------------------------------------------------------
    def snapshot(self) -> Any:
        """Write the policy state with the last feedback folded into it; returns the
        ``Snapshot``."""
        with self._lock:
            state, last, meta = self._capture()
            self._due = None  # older than this one
            with self._snapshot_write_lock:  # (lock order: the router's, then this one)
                snap = self.stores.snapshots.save(encode_state(state), last, meta)
                self._saved_upto = max(self._saved_upto, last)
                return snap

    def _write_due(self) -> None:
        """Encode and write the periodic snapshot ``_apply`` took, outside the router's
        lock (for a 21 MB state: ~60 ms to encode, 130-200 ms to write on SQLite, which
        no longer hold up routing). Inside a caller that still holds the lock it waits
        for that caller's turn; a snapshot older than one already written is dropped (two
        threads may take theirs in one order and write in the other). If the write fails,
        the snapshot stays due (unless a newer one is) and the next call retries it."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            return
        with self._lock:  # never while holding the write lock: snapshot() nests the other way
            due, self._due = self._due, None
        if due is None:
            return
        state, last, meta = due
        try:
            with self._snapshot_write_lock:
                if last <= self._saved_upto:
                    return
                self.stores.snapshots.save(encode_state(state), last, meta)
                self._saved_upto = last
        except BaseException:
            with self._lock:
                if self._due is None:
                    self._due = due
            raise

    def _capture(self) -> tuple[Any, int, dict[str, Any]]:
        """A copy of the policy's state (``capture_state``), the last feedback folded into
        it and the snapshot's meta, under the lock; resets the periodic count."""
        with self._lock:
            cm = self.cost_model
            meta = {
                "policy": self.policy.name,
                "arms": self.policy.arms,
                "expected_output_tokens": dict(
                    zip(cm.models, cm.expected_output_tokens.tolist(), strict=True)
                ),
                "n_updates": self.policy.n_updates,
                # what the state was learned on (serve refuses another embedder)
                "embedder": self._embedder_name,
                "embedder_dim": int(self.embedder.dim) if self.embedder is not None else None,
                "prior_id": self.prior_id,
            }
            self._since_snapshot = 0
            return capture_state(self.policy), self.last_feedback_id, meta


class _LazyScores(Mapping[str, Mapping[str, float]]):
    """``ArmScores.as_dict()`` computed on first use (a replay never reads it)."""

    __slots__ = ("_d", "_s")

    def __init__(self, scores: ArmScores) -> None:
        self._s = scores
        self._d: dict[str, dict[str, float]] | None = None

    def _dict(self) -> dict[str, dict[str, float]]:
        if self._d is None:
            self._d = self._s.as_dict()
        return self._d

    def __getitem__(self, key: str) -> Mapping[str, float]:
        return self._dict()[key]

    def __iter__(self):
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._s.arms)

    def __eq__(self, other: object) -> bool:
        return dict(self._dict()) == other if isinstance(other, Mapping) else NotImplemented

    def __repr__(self) -> str:
        return repr(self._dict())


def _user(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("give a user name (e.g. --user alice).")
    return name


def _usage(usage: Mapping[str, float]) -> tuple[float, float]:
    if not isinstance(usage, Mapping):
        raise InvalidInputError(
            "usage must be a mapping like {input_tokens: 12, output_tokens: 80}."
        )
    vals = []
    for keys in (_IN_KEYS, _OUT_KEYS):
        v = next((usage[k] for k in keys if k in usage), None)
        if v is None:
            raise InvalidInputError(
                f"usage needs {keys[0]} (or {keys[1]}); got keys {sorted(usage)}."
            )
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise InvalidInputError(f"usage {keys[0]} must be a number, got {v!r}.") from None
        if not (x >= 0 and math.isfinite(x)):
            raise InvalidInputError(f"usage {keys[0]} must be a count >= 0, got {v!r}.")
        vals.append(x)
    return vals[0], vals[1]


def _load_prior(path: str) -> Any:
    from bandit_router.warm_start.artifact import PriorArtifact

    return PriorArtifact.load(path)


def _align_arms(policy: Policy, names: Sequence[str], prior: Any | None) -> bool:
    """Make a restored policy's arms the active catalogue (models the config adds, or a
    change made without a snapshot): retired arms go, new ones start from the prior (else
    the pooled mean). Returns whether anything changed."""
    changed = False
    for a in [a for a in policy.arms if a not in names]:
        policy.remove_arm(a)
        changed = True
    for a in names:
        if a not in policy.arms:
            p = None
            if prior is not None and a in prior.models:
                p = prior.priors([a])[a]
            policy.add_arm(a, p)
            changed = True
    return changed
