"""The ledger: per-user budgets, reservations at decision time, settlement at feedback time.

The core states what it needs as the small ``Ledger`` protocol; ``InMemoryLedger`` serves
tests, simulations and a single process (a later issue adds a durable, concurrent one).

Accounting rules
----------------
- ``reserve`` holds the estimated cost of a decision; it refuses (``BudgetExhaustedError``)
  an amount larger than what is left, so the hard guarantee holds in the ledger too.
- ``settle`` replaces the hold with the actual cost. It is idempotent per decision.
  Actual costs above the estimate can push the spend past the budget; that excess is the
  estimation error and is reported separately (``AccountState.overrun``).
- A reservation not settled within ``reservation_ttl`` seconds expires: it is charged at
  its estimate (``on_expiry="charge"``, the default: the call probably happened) or
  released (``"release"``). A late settlement still corrects the charge.
- Calendar periods (daily, monthly, UTC) reset the spend at the period boundary; a charge
  belongs to the period of its decision. Rolling windows count charges by settlement time
  and hold open reservations until they settle or expire.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from bandit_router.budget.clock import Clock, system_clock
from bandit_router.budget.periods import Budget
from bandit_router.errors import BudgetError, BudgetExhaustedError, ConfigurationError
from bandit_router.records import record_maker

#: float slack when comparing sums of money (USD)
EPS_USD = 1e-12


@dataclass(frozen=True, slots=True)
class AccountState:
    """A snapshot of one user's budget at time ``now`` (what the allocator reads).

    >>> from bandit_router.budget.periods import Budget
    >>> s = AccountState("u", Budget(10.0), now=0.0, spent=3.0, reserved=1.0)
    >>> s.remaining, s.committed_share
    (6.0, 0.4)
    """

    user: str
    budget: Budget
    now: float
    spent: float = 0.0
    reserved: float = 0.0
    period_start: float = -math.inf
    period_end: float | None = None
    resets_at: float | None = None
    n_decisions: int = 0
    previous_decisions: int | None = None
    overrun: float = 0.0

    @property
    def amount(self) -> float:
        return self.budget.amount_usd

    @property
    def committed(self) -> float:
        """Spent plus held, USD."""
        return self.spent + self.reserved

    @property
    def remaining(self) -> float:
        """What is left to commit, USD, never negative."""
        return max(self.budget.amount_usd - self.spent - self.reserved, 0.0)

    @property
    def committed_share(self) -> float:
        """Share of the budget committed, in [0, 1] (1 for a zero budget)."""
        a = self.budget.amount_usd
        return 1.0 if a <= 0 else min(max(self.committed / a, 0.0), 1.0)

    @property
    def elapsed(self) -> float | None:
        """Share of a calendar period elapsed, in [0, 1]; None for total and rolling."""
        if self.period_end is None or self.budget.period.kind == "rolling":
            return None
        span = self.period_end - self.period_start
        return min(max((self.now - self.period_start) / span, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The estimated cost held for one decision."""

    decision_id: str
    user: str
    amount: float
    created_at: float
    period_start: float


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of settling a decision: ``error = actual - estimated`` (USD)."""

    decision_id: str
    user: str
    estimated: float
    actual: float
    late: bool = False

    @property
    def error(self) -> float:
        return self.actual - self.estimated


# positional constructors of the records made on every routed query (``record_maker``)
_make_state = record_maker(AccountState)
_make_reservation = record_maker(Reservation)
_make_settlement = record_maker(Settlement)


@runtime_checkable
class Ledger(Protocol):
    """What the router and the allocator need from a ledger."""

    def set_budget(self, user: str, budget: Budget) -> None: ...

    def state(self, user: str) -> AccountState: ...

    def reserve(self, user: str, decision_id: str, amount: float) -> Reservation: ...

    def settle(self, decision_id: str, actual_cost: float) -> Settlement: ...

    def release(self, decision_id: str) -> None: ...

    def expire(self) -> int: ...


def check_expiry_options(reservation_ttl: float, on_expiry: str) -> None:
    """Validate a ledger's expiry options (every ``Ledger`` implementation takes them).

    >>> check_expiry_options(600.0, "release")
    >>> check_expiry_options(0.0, "charge")
    Traceback (most recent call last):
    ...
    bandit_router.errors.ConfigurationError: reservation_ttl must be > 0 seconds, got 0.0.
    """
    if not (reservation_ttl > 0):
        raise ConfigurationError(f"reservation_ttl must be > 0 seconds, got {reservation_ttl}.")
    if on_expiry not in ("charge", "release"):
        raise ConfigurationError(f"on_expiry must be 'charge' or 'release', got {on_expiry!r}.")


def _usd(amount: float, what: str) -> float:
    a = float(amount)
    if not (a >= 0 and math.isfinite(a)):
        raise BudgetError(f"{what} must be a finite amount of USD >= 0, got {amount!r}.")
    return a


@dataclass
class _Account:
    budget: Budget
    period_start: float = -math.inf
    period_end: float | None = None
    spent: float = 0.0
    reserved: float = 0.0
    overrun: float = 0.0
    n_decisions: int = 0
    previous_decisions: int | None = None
    lifetime_spent: float = 0.0
    # rolling windows: (time, amount) of charges and times of decisions, oldest first
    charges: deque[tuple[float, float]] = field(default_factory=deque)
    charged: float = 0.0
    decisions: deque[float] = field(default_factory=deque)


class InMemoryLedger:
    """A ledger in a dict, for tests, simulations and a single process.

    Parameters
    ----------
    clock
        Returns the time in seconds since the epoch (inject a ``ManualClock`` in tests).
    reservation_ttl
        Seconds after which an unsettled reservation expires.
    on_expiry
        ``"charge"`` (keep the estimate as spent) or ``"release"`` (give it back).
    default_budget
        Budget of users that were never given one (None: such users are an error).

    >>> from bandit_router.budget.clock import ManualClock
    >>> clock = ManualClock(0.0)
    >>> ledger = InMemoryLedger(clock=clock, reservation_ttl=60)
    >>> ledger.set_budget("alice", Budget(1.0, "daily"))
    >>> _ = ledger.reserve("alice", "d1", 0.25)
    >>> ledger.state("alice").remaining
    0.75
    >>> round(ledger.settle("d1", 0.20).error, 6)
    -0.05
    >>> _ = clock.advance(86_400)          # a new day
    >>> ledger.state("alice").remaining
    1.0
    """

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        reservation_ttl: float = 3600.0,
        on_expiry: str = "charge",
        default_budget: Budget | None = None,
    ) -> None:
        check_expiry_options(reservation_ttl, on_expiry)
        self.clock = clock
        self.reservation_ttl = float(reservation_ttl)
        self.on_expiry = on_expiry
        self.default_budget = default_budget
        self._accounts: dict[str, _Account] = {}
        self._open: dict[str, Reservation] = {}
        self._queue: deque[Reservation] = deque()  # open reservations by creation time
        self._expired: dict[str, Reservation] = {}
        self._settled: dict[str, Settlement] = {}

    # ---- budgets --------------------------------------------------------------------
    def set_budget(self, user: str, budget: Budget) -> None:
        """Give ``user`` a budget (replacing any earlier one; the spend so far is kept)."""
        if not isinstance(budget, Budget):
            raise BudgetError(f"expected a Budget, got {type(budget).__name__}.")
        now = self.clock()
        acc = self._accounts.get(user)
        if acc is None:
            self._accounts[user] = _Account(budget)
        elif acc.budget.period == budget.period:
            acc.budget = budget
        else:  # a new kind of period: keep what is spent now, re-stamp the open holds
            self._refresh(acc, now)
            spent = acc.spent
            acc.budget = budget
            acc.charges.clear()
            acc.decisions.clear()
            acc.charged = 0.0
            acc.period_start, acc.period_end = -math.inf, None
            if budget.period.kind == "rolling":
                acc.charges.append((now, spent))
                acc.charged = spent
            acc.spent = spent
            self._refresh(acc, now)
            for did, r in list(self._open.items()):
                if r.user == user:
                    self._open[did] = replace(r, period_start=acc.period_start)
        self._refresh(self._accounts[user], now)

    def _account(self, user: str) -> _Account:
        acc = self._accounts.get(user)
        if acc is None:
            if self.default_budget is None:
                raise BudgetError(
                    f"user {user!r} has no budget; call set_budget(user, Budget(...)) first "
                    "or give the ledger a default_budget."
                )
            acc = self._accounts[user] = _Account(self.default_budget)
        return acc

    # ---- time -----------------------------------------------------------------------
    def _refresh(self, acc: _Account, now: float) -> None:
        period = acc.budget.period
        if period.kind == "rolling":
            horizon = now - period.window_seconds
            while acc.charges and acc.charges[0][0] <= horizon:
                acc.charged -= acc.charges.popleft()[1]
            while acc.decisions and acc.decisions[0] <= horizon:
                acc.decisions.popleft()
            if not acc.charges:
                acc.charged = 0.0
            acc.spent = max(acc.charged, 0.0)
            acc.n_decisions = len(acc.decisions)
            return
        if period.kind == "total":
            return
        if acc.period_end is None or now >= acc.period_end or now < acc.period_start:
            start, end = period.bounds(now)
            if acc.period_end is not None and start != acc.period_start:
                acc.previous_decisions = acc.n_decisions
                acc.spent = acc.reserved = acc.overrun = 0.0
                acc.n_decisions = 0
            acc.period_start, acc.period_end = start, end

    def _expire(self, now: float) -> int:
        n = 0
        limit = now - self.reservation_ttl
        while self._queue and self._queue[0].created_at <= limit:
            r = self._open.pop(self._queue.popleft().decision_id, None)
            if r is None:
                continue  # settled or released already
            acc = self._accounts[r.user]
            self._refresh(acc, now)
            current = self._in_current_period(acc, r)
            if current:
                acc.reserved = max(acc.reserved - r.amount, 0.0)
            if self.on_expiry == "charge":
                self._charge(acc, r, r.amount, now)
            self._expired[r.decision_id] = r
            n += 1
        return n

    def expire(self) -> int:
        """Expire reservations older than ``reservation_ttl``; returns how many expired."""
        return self._expire(self.clock())

    @staticmethod
    def _in_current_period(acc: _Account, r: Reservation) -> bool:
        kind = acc.budget.period.kind
        return kind in ("total", "rolling") or r.period_start == acc.period_start

    def _charge(self, acc: _Account, r: Reservation, amount: float, now: float) -> None:
        """Add ``amount`` (may be negative: a correction) to the spend of ``r``'s period."""
        acc.lifetime_spent += amount
        kind = acc.budget.period.kind
        if kind == "rolling":
            acc.charges.append((now, amount))
            acc.charged += amount
            acc.spent = max(acc.charged, 0.0)
        elif self._in_current_period(acc, r):
            acc.spent = max(acc.spent + amount, 0.0)

    # ---- the protocol ---------------------------------------------------------------
    def state(self, user: str) -> AccountState:
        """The user's budget, spend and holds now."""
        now = self.clock()
        queue = self._queue
        if queue and queue[0].created_at <= now - self.reservation_ttl:
            self._expire(now)
        acc = self._accounts.get(user)
        if acc is None:
            acc = self._account(user)
        self._refresh(acc, now)
        kind = acc.budget.period.kind
        if kind == "rolling":
            w = acc.budget.period.window_seconds
            resets_at = acc.charges[0][0] + w if acc.charges else None
            start, end = now - w, now
        else:
            start, end = acc.period_start, acc.period_end
            resets_at = end
        return _make_state(  # every field, positionally (every query)
            user,
            acc.budget,
            now,
            acc.spent,
            acc.reserved,
            start,
            end,
            resets_at,
            acc.n_decisions,
            acc.previous_decisions,
            acc.overrun,
        )

    def reserve(self, user: str, decision_id: str, amount: float) -> Reservation:
        """Hold ``amount`` USD for a decision; refuses more than what is left.

        Repeating the same reservation returns the first one (idempotent).
        """
        amount = _usd(amount, "a reservation")
        decision_id = str(decision_id)
        now = self.clock()
        queue = self._queue
        if queue and queue[0].created_at <= now - self.reservation_ttl:
            self._expire(now)
        known = self._open.get(decision_id) or self._expired.get(decision_id)
        if known is None and decision_id in self._settled:
            known_user = self._settled[decision_id].user
            raise BudgetError(f"decision {decision_id!r} of {known_user!r} is already settled.")
        if known is not None:
            if known.user == user and known.amount == amount:
                return known
            raise BudgetError(
                f"decision {decision_id!r} already holds {known.amount} USD for {known.user!r}; "
                "use a fresh decision id."
            )
        acc = self._accounts.get(user)
        if acc is None:
            acc = self._account(user)
        self._refresh(acc, now)
        left = acc.budget.amount_usd - acc.spent - acc.reserved
        if amount > left + EPS_USD * max(1.0, acc.budget.amount_usd):
            raise BudgetExhaustedError(
                f"user {user!r} has {max(left, 0.0):.6g} USD left of {acc.budget.amount_usd:.6g}; "
                f"cannot hold {amount:.6g}. Choose a cheaper model or wait for the budget to reset."
            )
        r = _make_reservation(decision_id, user, amount, now, acc.period_start)
        self._open[decision_id] = r
        self._queue.append(r)
        acc.reserved += amount
        acc.n_decisions += 1
        if acc.budget.period.kind == "rolling":
            acc.decisions.append(now)
        return r

    def settle(self, decision_id: str, actual_cost: float) -> Settlement:
        """Replace the hold of a decision by its actual cost (idempotent per decision)."""
        actual = _usd(actual_cost, "an actual cost")
        decision_id = str(decision_id)
        done = self._settled.get(decision_id)
        if done is not None:
            if done.actual == actual:
                return done
            raise BudgetError(
                f"decision {decision_id!r} was already settled at {done.actual} USD, "
                f"not {actual}; feedback is accepted once per decision."
            )
        now = self.clock()
        queue = self._queue
        if queue and queue[0].created_at <= now - self.reservation_ttl:
            self._expire(now)
        r = self._open.pop(decision_id, None)
        late = False
        if r is None:
            r = self._expired.pop(decision_id, None)
            if r is None:
                raise BudgetError(
                    f"unknown decision {decision_id!r}: reserve before settling, and settle "
                    "each decision once."
                )
            late = True
        acc = self._account(r.user)
        self._refresh(acc, now)
        current = self._in_current_period(acc, r)
        if not late:
            if current:
                acc.reserved = max(acc.reserved - r.amount, 0.0)
            self._charge(acc, r, actual, now)
        elif self.on_expiry == "charge":
            self._charge(acc, r, actual - r.amount, now)  # correct the charged estimate
        else:
            self._charge(acc, r, actual, now)
        if current:
            acc.overrun += max(actual - r.amount, 0.0)
        s = _make_settlement(decision_id, r.user, r.amount, actual, late)
        self._settled[decision_id] = s
        return s

    def release(self, decision_id: str) -> None:
        """Drop an open hold without charging (the call was never made)."""
        r = self._open.pop(str(decision_id), None)
        if r is None:
            raise BudgetError(
                f"decision {decision_id!r} holds nothing (unknown, settled or expired)."
            )
        acc = self._accounts[r.user]
        self._refresh(acc, self.clock())
        if self._in_current_period(acc, r):
            acc.reserved = max(acc.reserved - r.amount, 0.0)

    def forget(self, decision_ids: Iterable[str]) -> int:
        """Drop the settlements of these decisions (history: spend, holds and rolling
        windows are kept apart from them) and every closed reservation still queued for
        expiry; open reservations stay. Returns how many settlements went."""
        n = 0
        settled = self._settled
        for did in decision_ids:
            if settled.pop(str(did), None) is not None:
                n += 1
        is_open = self._open
        self._queue = deque(r for r in self._queue if r.decision_id in is_open)
        return n

    def lifetime_spent(self, user: str) -> float:
        """Everything settled or charged for ``user`` since the ledger started, USD."""
        return self._account(user).lifetime_spent
