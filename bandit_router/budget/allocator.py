"""The budget allocator: an online multi-choice knapsack between ``score`` and ``choose``.

Each query is a class with one item per model (value = the policy's ``ArmScores.value``,
weight = the estimated cost); at most one item is taken. Per query the allocator

1. keeps the *candidates*: allowed by the request, at most ``max_cost``, and at most what is
   left of the budget and of the current bin (the hard guarantee: an unaffordable model is
   never chosen);
2. computes the ZCL price ``psi(z) = (U e / L)^z (L / e)`` on the committed share ``z`` of
   the current bin's budget; a candidate is *admitted* when it is worth its price,
   ``value - reward_low >= psi(z) * cost`` (value per dollar at least ``psi(z)``);
3. hands the policy a ``Selection`` (candidates, prices, fallback): the policy exploits the
   admitted model with the best surplus ``value - psi(z) * cost`` (``select="surplus"``,
   the default) or the best value (``select="value"``), and an exploring policy explores
   uniformly among the candidates. The selection does not depend on the policy's random
   draw, so the logged propensity is the probability of the model under the whole
   decision (``Policy.action_probabilities``; ``Allocation.selection`` keeps it);
4. if no candidate is admitted, the fallback is taken (the cheapest affordable model by
   default, possibly outside the bin but never over the budget); if nothing is affordable
   at all, returns ``exhausted`` with the time the budget resets.

Bins (PILOT). With a known horizon (``Budget.expected_queries`` = Q), or an estimated one,
the budget B is paced in ``bins`` bins of B / bins. ``sliding=False`` is PILOT's scheme:
bin b (queries b Q / bins ... (b + 1) Q / bins) may commit up to ``B (b + 1) / bins`` in
total, i.e. B / bins plus what earlier bins left (roll-over), and ``z`` restarts at 0 in
every bin. ``sliding=True`` (the default) makes the same schedule continuous: after a share
f of the horizon, ``min(B, f B + B / bins)`` is released and ``z = 1 - (released -
committed) / (B / bins)``; the price then rises when the spend runs ahead of the schedule
and falls when it lags, instead of restarting cheap at every bin boundary (see the figures
in the README).

Horizon. ``f = n / Q`` with Q known. With a calendar period (daily, monthly) and no Q,
``f = n / (n + rate * time_left)`` with the arrival rate observed in this period, blended
with the previous period's count. A total budget without Q, and a rolling window, use the
threshold on the share of the whole budget (ZCL proper, no bins).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from bandit_router.budget.ledger import AccountState, Ledger
from bandit_router.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from bandit_router.policies.base import ArmScores, Decision, Policy
from bandit_router.policies.selection import Selection

REASONS = ("admitted", "explored", "fallback", "exhausted", "no_candidate")


class Allocation(NamedTuple):
    """The outcome of one budgeted decision.

    ``reason`` is ``admitted`` (the chosen model cleared its price), ``explored`` (an
    exploring step of the policy), ``fallback``, ``exhausted`` or ``no_candidate``;
    ``selection`` is the ``Selection`` the policy chose under (None without a decision
    attempt), from which ``policy.action_probabilities(scores, selection)`` gives every
    model's probability. ``decision`` is None when ``reason`` is ``"exhausted"`` (nothing affordable; see
    ``resets_at``) or ``"no_candidate"`` (``allowed`` / ``max_cost`` exclude every
    affordable model, or the fallback is disabled). ``cost`` is the estimated USD of the
    chosen model (0 when none); ``threshold`` is the price ``psi(z)`` (value per USD) that
    the candidates had to clear and ``spent_share`` the ``z`` it was computed on.
    ``decision.scores`` are the policy's own scores (not the surplus).

    >>> Allocation(None, 0.0, "exhausted", 1.0, 1.0, resets_at=86_400.0).exhausted
    True
    """

    decision: Decision | None
    cost: float
    reason: str
    threshold: float
    spent_share: float
    resets_at: float | None = None
    selection: Selection | None = None

    @property
    def exhausted(self) -> bool:
        return self.reason == "exhausted"

    @property
    def arm(self) -> str | None:
        return None if self.decision is None else self.decision.arm


class BudgetAllocator:
    """Online multi-choice knapsack: the ZCL threshold paced in PILOT's bins.

    Parameters
    ----------
    reward_range
        (low, high) of the rewards; value per dollar is ``(value - low) / cost``.
    bins
        Number of bins of a known (or estimated) horizon; 1 disables binning.
    sliding
        Continuous release of the bin schedule (default) or PILOT's discrete bins.
    select
        ``"surplus"``: the policy maximises ``value - psi(z) cost`` over the admitted
        models; ``"value"``: it maximises ``value`` (the literal ZCL / PILOT rule).
    value_floor
        The lowest value worth paying for, as a share of the reward span: sets
        ``L = value_floor * span / dearest cost`` (and ``U = span / cheapest cost``).
    cost_bounds
        (cheapest, dearest) typical USD of a query, for L and U. None: learned online as
        exponentially weighted means of the queries' cheapest and dearest costs.
    efficiency_bounds
        (L, U) in value per USD, overriding ``value_floor`` and ``cost_bounds``.
    fallback
        When no candidate clears the threshold: ``"cheapest"`` (default), ``"efficient"``
        (best value per dollar), a model name (used when it is a candidate, else the
        cheapest), or None (no decision, reason ``"no_candidate"``).
    pacing
        Estimate the horizon of calendar periods from the arrival rate (True) or use the
        threshold on the whole period's budget (False).

    >>> import numpy as np
    >>> from bandit_router.budget import AccountState, Budget, BudgetAllocator
    >>> from bandit_router.policies import ArmScores, make_policy
    >>> pol = make_policy("linucb", ["cheap", "mid", "dear"], dim=2, seed=0)
    >>> alloc = BudgetAllocator(efficiency_bounds=(1.0, 1000.0))   # value per USD
    >>> value = np.array([0.2, 0.5, 0.9])
    >>> scores = ArmScores(pol.arms, value, np.zeros(3), value)
    >>> costs = np.array([0.001, 0.01, 0.05])
    >>> fresh = AccountState("u", Budget(1.0), now=0.0)
    >>> a = alloc.choose(pol, scores, costs, fresh)     # psi(0) = L / e admits all
    >>> a.arm, a.reason
    ('dear', 'admitted')
    >>> poor = AccountState("u", Budget(1.0), now=0.0, spent=0.995)
    >>> a = alloc.choose(pol, scores, costs, poor)      # psi(0.995) = 961 admits none
    >>> a.arm, a.reason, a.cost <= poor.remaining
    ('cheap', 'fallback', True)
    >>> broke = AccountState("u", Budget(1.0), now=0.0, spent=1.0)
    >>> alloc.choose(pol, scores, costs, broke).exhausted
    True
    """

    def __init__(
        self,
        *,
        reward_range: tuple[float, float] = (0.0, 1.0),
        bins: int = 20,
        sliding: bool = True,
        select: str = "surplus",
        value_floor: float = 0.05,
        cost_bounds: tuple[float, float] | None = None,
        efficiency_bounds: tuple[float, float] | None = None,
        fallback: str | None = "cheapest",
        pacing: bool = True,
        bounds_fading: float = 0.02,
    ) -> None:
        lo, hi = float(reward_range[0]), float(reward_range[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigurationError(
                f"reward_range must be (low, high) with low < high; got {reward_range}."
            )
        if int(bins) != bins or int(bins) < 1:
            raise ConfigurationError(f"bins must be a positive integer, got {bins}.")
        if select not in ("surplus", "value"):
            raise ConfigurationError(f"select must be 'surplus' or 'value', got {select!r}.")
        if not 0.0 < value_floor <= 1.0:
            raise ConfigurationError(f"value_floor must be in (0, 1], got {value_floor}.")
        for name, pair in (("cost_bounds", cost_bounds), ("efficiency_bounds", efficiency_bounds)):
            if pair is not None:
                a, b = float(pair[0]), float(pair[1])
                if not (0 < a <= b and math.isfinite(b)):
                    raise ConfigurationError(
                        f"{name} must be (low, high) with 0 < low <= high < inf, got {pair}."
                    )
        if not 0.0 < bounds_fading <= 1.0:
            raise ConfigurationError(f"bounds_fading must be in (0, 1], got {bounds_fading}.")
        self.reward_range = (lo, hi)
        self.bins = int(bins)
        self.sliding = bool(sliding)
        self.select = select
        self.value_floor = float(value_floor)
        self.cost_bounds = (
            None if cost_bounds is None else (float(cost_bounds[0]), float(cost_bounds[1]))
        )
        self.efficiency_bounds = (
            None
            if efficiency_bounds is None
            else (float(efficiency_bounds[0]), float(efficiency_bounds[1]))
        )
        self.fallback = fallback
        self.pacing = bool(pacing)
        self.bounds_fading = float(bounds_fading)
        self._span = hi - lo
        self._c_lo, self._c_hi = self.cost_bounds or (math.nan, math.nan)
        self._learn = self.cost_bounds is None and self.efficiency_bounds is None
        self._n_seen = 0
        self._L = self._log_ratio = math.nan
        if self.efficiency_bounds is not None:
            L, U = self.efficiency_bounds
            self._L, self._log_ratio = L, math.log(U / L) + 1.0
        else:
            self._set_bounds()
        self._lo = lo
        self._surplus = select == "surplus"
        self._eye = np.eye(0, dtype=bool)
        self._every = np.ones(0, dtype=bool)
        # the last read-only cost array and its (cheapest index, cheapest, dearest)
        self._c_last: np.ndarray | None = None
        self._c_stats: tuple[int, float, float] = (0, 0.0, 0.0)
        # discrete bins, per user: (period start, bin index, committed at the bin's start)
        self._bins: dict[str, tuple[float, int, float]] = {}

    def config(self) -> dict[str, object]:
        """The hyper-parameters (``BudgetAllocator(**config)`` rebuilds an untrained copy)."""
        return {
            "reward_range": self.reward_range,
            "bins": self.bins,
            "sliding": self.sliding,
            "select": self.select,
            "value_floor": self.value_floor,
            "cost_bounds": self.cost_bounds,
            "efficiency_bounds": self.efficiency_bounds,
            "fallback": self.fallback,
            "pacing": self.pacing,
            "bounds_fading": self.bounds_fading,
        }

    # ---- bounds of value per dollar ---------------------------------------------------
    def _set_bounds(self) -> None:
        if math.isfinite(self._c_lo) and self._c_lo > 0:
            self._L = self.value_floor * self._span / self._c_hi
            self._log_ratio = math.log(self._span / self._c_lo / self._L) + 1.0

    def _learn_bounds(
        self, costs: np.ndarray, c_lo: float = math.nan, c_hi: float = math.nan
    ) -> None:
        """Fold this query's cheapest and dearest positive cost into the bounds (given as
        ``c_lo``, ``c_hi`` when known, else read off ``costs``)."""
        if not c_lo > 0.0:
            pos = costs[costs > 0]
            if pos.size == 0:
                return
            c_lo, c_hi = float(pos.min()), float(pos.max())
        if not math.isfinite(self._c_lo):
            self._c_lo, self._c_hi = c_lo, c_hi
        else:
            f = self.bounds_fading
            self._c_lo += f * (c_lo - self._c_lo)
            self._c_hi = max(self._c_hi + f * (c_hi - self._c_hi), self._c_lo)
        self._set_bounds()

    @property
    def bounds(self) -> tuple[float, float]:
        """(L, U): the value-per-USD bounds of the threshold (NaN before any cost is seen)."""
        if not math.isfinite(self._L):
            return (math.nan, math.nan)
        return (self._L, self._L * math.exp(self._log_ratio - 1.0))

    def threshold(self, z: float) -> float:
        """``psi(z)`` in value per USD with the current bounds (0 before any cost is seen)."""
        if not math.isfinite(self._L):
            return 0.0
        z = 0.0 if z < 0.0 else 1.0 if z > 1.0 else z
        return math.exp(z * self._log_ratio) * self._L / math.e

    # ---- pacing -----------------------------------------------------------------------
    def _progress(self, state: AccountState) -> float | None:
        """Expected share of the period's queries already seen, or None (no horizon)."""
        budget = state.budget
        n = state.n_decisions
        kind = budget.period.kind
        if budget.expected_queries is not None and kind != "rolling":
            return n / budget.expected_queries
        if not self.pacing or kind not in ("daily", "monthly") or state.period_end is None:
            return None
        span = state.period_end - state.period_start
        elapsed = max(state.now - state.period_start, 0.0)
        left = max(state.period_end - state.now, 0.0)
        prev = state.previous_decisions
        if prev is not None:  # blend with one pseudo-period at the previous period's rate
            rate = (n + prev) / (elapsed + span)
        elif elapsed > 0.0:
            rate = n / elapsed
        else:
            return 0.0
        expected = n + rate * left
        return n / expected if expected > 0 else 0.0

    def _pace(self, state: AccountState) -> tuple[float, float]:
        """(z, USD left in the current bin) for this query."""
        B = state.budget.amount_usd
        if B <= 0.0:
            return 1.0, 0.0
        committed = state.spent + state.reserved
        q = state.budget.expected_queries
        if (
            q is not None
            and self.sliding
            and self.bins > 1
            and state.budget.period.kind != "rolling"
        ):
            W = B / self.bins  # the common case, inlined
            f = state.n_decisions / q
            left = (B if f >= 1.0 else min(B, f * B + W)) - committed
            return 1.0 - left / W, left
        f = self._progress(state) if self.bins > 1 else None
        if f is None:
            return committed / B, math.inf
        N = self.bins
        W = B / N
        if self.sliding:
            left = min(B, f * B + W) - committed
            return 1.0 - left / W, left
        b = min(int(f * N), N - 1)
        memo = self._bins.get(state.user)
        if memo is None or memo[0] != state.period_start or memo[1] != b:
            memo = self._bins[state.user] = (state.period_start, b, committed)
        c0 = memo[2]
        bin_budget = W * (b + 1) - c0
        if bin_budget <= 0.0:
            return 1.0, 0.0
        return (committed - c0) / bin_budget, bin_budget - (committed - c0)

    def spent_share(self, state: AccountState) -> float:
        """``z``: the committed share of the current bin's budget (of the whole one unbinned)."""
        return self._pace(state)[0]

    def reset(self, user: str | None = None) -> None:
        """Forget the discrete-bin bookkeeping of ``user`` (of everyone when None)."""
        if user is None:
            self._bins.clear()
        else:
            self._bins.pop(user, None)

    # ---- the decision -----------------------------------------------------------------
    def choose(
        self,
        policy: Policy,
        scores: ArmScores,
        costs: np.ndarray,
        state: AccountState,
        *,
        max_cost: float | None = None,
        allowed: Iterable[str] | np.ndarray | None = None,
    ) -> Allocation:
        """Pick a model for one query under the user's budget.

        ``scores`` come from ``policy.score(x)``; ``costs`` are the estimated USD per arm,
        shape ``(K,)`` in the order of ``policy.arms`` (``CostModel.estimate`` or a logged
        cost row); ``state`` is ``ledger.state(user)``. The caller reserves
        ``Allocation.cost`` afterwards (``route`` does both).
        """
        c = costs
        if type(c) is not np.ndarray or c.dtype != np.float64:
            c = np.asarray(c, dtype=np.float64)
        value = scores.value
        if c.shape != value.shape:
            raise DimensionMismatchError(
                f"costs have shape {c.shape}, the scores {value.shape}; give one cost per arm "
                "in the order of policy.arms."
            )
        if c is self._c_last:  # a read-only array seen before: its contents are the same
            cheapest, cmin, cmax = self._c_stats
        else:
            cheapest = int(c.argmin())  # the first NaN if any: then the check below refuses
            cmin = c[cheapest]
            cmax = math.inf  # unknown: the candidates are compared one by one
            if not c.flags.writeable and cmin >= 0.0:
                cmax = float(c.max())
                self._c_last, self._c_stats = c, (cheapest, cmin, cmax)
        if not cmin >= 0.0:
            raise InvalidInputError(
                "costs must be USD amounts >= 0 (no NaN); check the cost model."
            )
        remaining = state.budget.amount_usd - state.spent - state.reserved
        if remaining < 0.0:  # settled costs above their estimates (overrun)
            remaining = 0.0
        if cmin > remaining:  # nothing is affordable
            return Allocation(None, 0.0, "exhausted", self.threshold(1.0), 1.0, state.resets_at)
        if self._learn and (self._n_seen & 15) == 0:
            if cmin > 0.0 and cmax < math.inf:  # every cost positive: the bounds are known
                self._learn_bounds(c, float(cmin), cmax)
            else:
                self._learn_bounds(c)
        self._n_seen += 1
        z, bin_left = self._pace(state)
        psi = self.threshold(z)
        # candidates: allowed, and fit what is left of the budget, the bin and max_cost
        cap = remaining if bin_left >= remaining else bin_left
        if max_cost is not None and max_cost < cap:
            cap = float(max_cost)
        price = psi * c
        if self._lo != 0.0:
            price += self._lo
        if allowed is None and cap >= cmax:  # every model fits (the budget is far from binding)
            candidates = self._everyone(c.shape[0])
        else:
            candidates = c <= cap
        mask = None
        if allowed is not None:
            if type(allowed) is np.ndarray and allowed.dtype == bool and allowed.shape == c.shape:
                mask = allowed
            else:
                mask = policy.allowed_mask(allowed)
            if not mask.any():
                policy.allowed_mask(mask)  # raises: no model is allowed
            candidates &= mask
        # the fallback: among the affordable models (the whole budget, not just the bin)
        if max_cost is None and mask is None:
            fb = cheapest if self.fallback == "cheapest" else None
            afford = None
        else:
            fb = None
            afford = c <= remaining
            if max_cost is not None:
                afford &= c <= float(max_cost)
            if mask is not None:
                afford &= mask
            if not afford.any():
                why = "exhausted" if not (c <= remaining).any() else "no_candidate"
                return Allocation(None, 0.0, why, psi, z, state.resets_at)
        if fb is None:
            if afford is None:
                afford = c <= remaining
            fb = self._fallback_index(policy, scores.mean, c, afford)
        sel = Selection(candidates, price, -1 if fb is None else fb, self._surplus)
        value = scores.value
        if fb is None and not sel.admitted(value).any():
            return Allocation(None, 0.0, "no_candidate", psi, z, state.resets_at, sel)
        d = policy.choose(scores, sel)
        k = d.index
        if d.explored:
            reason = "explored"
        else:  # admitted: a candidate worth its price (``Selection.admitted`` for one model)
            reason = "admitted" if candidates[k] and value[k] >= price[k] else "fallback"
        return Allocation(d, float(c[k]), reason, psi, z, state.resets_at, sel)

    def _everyone(self, K: int) -> np.ndarray:
        """A read-only all-True mask ``(K,)``, made once."""
        every = self._every
        if every.shape[0] != K:
            every = self._every = np.ones(K, dtype=bool)
            every.flags.writeable = False
        return every

    def _one_hot(self, K: int, k: int) -> np.ndarray:
        eye = self._eye
        if eye.shape[0] != K:
            eye = self._eye = np.eye(K, dtype=bool)
            eye.flags.writeable = False
        return eye[k]

    def _fallback_index(
        self, policy: Policy, value: np.ndarray, c: np.ndarray, cand: np.ndarray
    ) -> int | None:
        fb = self.fallback
        if fb is None:
            return None
        if fb == "efficient":
            with np.errstate(divide="ignore", invalid="ignore"):
                eff = np.where(c > 0, (value - self.reward_range[0]) / c, np.inf)
            return int(np.where(cand, eff, -np.inf).argmax())
        if fb != "cheapest":
            k = policy.arm_index(fb)
            if cand[k]:
                return k
        return int(np.where(cand, c, np.inf).argmin())

    def route(
        self,
        policy: Policy,
        scores: ArmScores,
        costs: np.ndarray,
        ledger: Ledger,
        user: str,
        decision_id: str,
        *,
        max_cost: float | None = None,
        allowed: Iterable[str] | np.ndarray | None = None,
    ) -> Allocation:
        """``choose`` on ``ledger.state(user)``, then reserve the cost under ``decision_id``."""
        allocation = self.choose(
            policy, scores, costs, ledger.state(user), max_cost=max_cost, allowed=allowed
        )
        if allocation.decision is not None:
            ledger.reserve(user, decision_id, allocation.cost)
        return allocation
