"""The durable budget ledger: ``SqlLedger`` implements ``bandit_router.budget.ledger.Ledger``.

Same accounting as ``InMemoryLedger`` (reserve at decision time, settle at feedback time,
expiry after ``reservation_ttl`` charging or releasing the estimate, calendar periods that
reset, rolling windows, overrun), on three tables:

- ``ledger_accounts``: one row per user with the totals of the current period. Every
  operation on a user's money locks this row first (``SELECT ... FOR UPDATE`` on
  PostgreSQL; the whole transaction holds SQLite's write lock, ``BEGIN IMMEDIATE``), then
  checks and updates the totals: two reservations of one user never both see the same
  money left, in one process or many. Accounts are locked in user-name order, so
  transactions that lock several (an expiry sweep) cannot deadlock.
- ``ledger_reservations``: the hold of each decision and its fate (open, settled, expired,
  released), the queue that expiry walks by creation time.
- ``ledger_entries``: the journal of holds and charges; a rolling budget's spend is the sum
  of the charges inside its window.

The calendar-period arithmetic (when a daily or monthly period turns over, what a charge
of a past period does) is ``InMemoryLedger``'s own, applied to the account loaded from
its row, so the two ledgers cannot drift apart; a property test compares them on random
operation sequences.

>>> from bandit_router.budget.clock import ManualClock
>>> from bandit_router.budget.periods import Budget
>>> from bandit_router.storage import open_store
>>> clock = ManualClock(0.0)
>>> ledger = SqlLedger(open_store("sqlite://").engine, clock=clock, reservation_ttl=60)
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

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bandit_router.budget.clock import Clock, system_clock
from bandit_router.budget.ledger import (
    EPS_USD,
    AccountState,
    InMemoryLedger,
    Reservation,
    Settlement,
    _Account,
    _usd,
    check_expiry_options,
)
from bandit_router.budget.periods import Budget, BudgetPeriod
from bandit_router.errors import BudgetError, BudgetExhaustedError
from bandit_router.storage.fast import Fallback, RawSql
from bandit_router.storage.models import LedgerAccount, LedgerEntry, LedgerReservation, User
from bandit_router.storage.transactions import Sessions, inf_if_none, none_if_inf

#: ``InMemoryLedger``'s period logic (``_refresh`` of calendar periods, ``_in_current_period``)
#: on a bare instance: those methods read only the account they are given.
_PERIODS = InMemoryLedger.__new__(InMemoryLedger)
#: a time to live this long (over 30 million years) means "never": no expiry sweep is run
#: (``open_router_stores`` default, as ``memory_stores``: the decision's wait time rules)
EXPIRY_OFF = 1e15
#: money is stored with 12 decimals: two amounts closer than this are the same
_MONEY_TOL = 1e-11


def budget_of(amount: float, kind: str, window: float | None, expected: int | None) -> Budget:
    """A ``Budget`` from its stored columns."""
    return Budget(amount, BudgetPeriod(kind, window), expected)


def budget_columns(budget: Budget) -> dict[str, object]:
    """The stored columns of a ``Budget`` (``budget_usd``, ``period_kind``, ...)."""
    return {
        "budget_usd": budget.amount_usd,
        "period_kind": budget.period.kind,
        "window_seconds": budget.period.window_seconds,
        "expected_queries": budget.expected_queries,
    }


@dataclass
class _Loaded:
    """A locked account row and the in-memory ``_Account`` it was loaded into."""

    row: LedgerAccount
    acc: _Account
    since_entry: int = 0
    first_charge: float | None = None  # rolling: time of the oldest charge in the window


class SqlLedger:
    """A ledger in the database, exact under concurrency (see the module docstring).

    Parameters are those of ``InMemoryLedger``: ``clock``, ``reservation_ttl`` (seconds),
    ``on_expiry`` (``"charge"`` or ``"release"``), ``default_budget`` (for users never given
    one; None makes such users an error).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = system_clock,
        reservation_ttl: float = 3600.0,
        on_expiry: str = "charge",
        default_budget: Budget | None = None,
    ) -> None:
        check_expiry_options(reservation_ttl, on_expiry)
        self.engine = engine
        self.sessions = Sessions(engine)
        #: the common case in plain SQL (``storage/fast.py``); None: the ORM path only
        self.raw: RawSql | None = RawSql(engine)
        self.clock = clock
        self.reservation_ttl = float(reservation_ttl)
        self.on_expiry = on_expiry
        self.default_budget = default_budget

    # ---- accounts ---------------------------------------------------------------------
    def _insert(self, s: Session, model: type, values: dict[str, object]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING (a row another transaction made wins)."""
        ins = pg_insert if self.sessions.postgres else sqlite_insert
        s.execute(ins(model).values(**values).on_conflict_do_nothing())

    def _lock(self, s: Session, users: Iterable[str], now: float) -> dict:
        """Lock the accounts of ``users`` (sorted by name), creating missing ones with the
        default budget; returns ``{user: _Loaded}`` (without the users that have no account
        and get no default budget). Not refreshed: the callers refresh an account exactly
        when ``InMemoryLedger`` does, because a calendar period's ``previous_decisions``
        depends on which periods were looked at."""
        out: dict[str, _Loaded] = {}
        for user in sorted(set(users)):
            row = self._select_row(s, user)
            if row is None:
                if self.default_budget is None:
                    continue
                self._insert(s, LedgerAccount, self._new_account(user, self.default_budget))
                row = self._select_row(s, user)
            out[user] = self._load(row)
        return out

    def _select_row(self, s: Session, user: str) -> LedgerAccount | None:
        q = select(LedgerAccount).where(LedgerAccount.user == user)
        if self.sessions.postgres:
            q = q.with_for_update()
        return s.execute(q.execution_options(populate_existing=True)).scalar_one_or_none()

    @staticmethod
    def _new_account(user: str, budget: Budget) -> dict[str, object]:
        return {
            "user": user,
            **budget_columns(budget),
            "period_start": None,
            "period_end": None,
            "spent": 0.0,
            "reserved": 0.0,
            "overrun": 0.0,
            "n_decisions": 0,
            "previous_decisions": None,
            "lifetime_spent": 0.0,
            "since_entry": 0,
        }

    @staticmethod
    def _load(row: LedgerAccount) -> _Loaded:
        budget = budget_of(
            row.budget_usd, row.period_kind, row.window_seconds, row.expected_queries
        )
        acc = _Account(
            budget,
            period_start=inf_if_none(row.period_start),
            period_end=row.period_end,
            spent=float(row.spent),
            reserved=float(row.reserved),
            overrun=float(row.overrun),
            n_decisions=int(row.n_decisions),
            previous_decisions=row.previous_decisions,
            lifetime_spent=float(row.lifetime_spent),
        )
        return _Loaded(row, acc, since_entry=int(row.since_entry or 0))

    def _refresh(self, s: Session, loaded: _Loaded, now: float) -> None:
        acc = loaded.acc
        period = acc.budget.period
        if period.kind != "rolling":
            _PERIODS._refresh(acc, now)  # calendar turnover, exactly as in memory
            return
        horizon = now - period.window_seconds
        user = loaded.row.user
        inside = (
            (LedgerEntry.user == user)
            & (LedgerEntry.id > loaded.since_entry)
            & (LedgerEntry.created_at > horizon)
        )
        total, first = s.execute(
            select(func.sum(LedgerEntry.amount), func.min(LedgerEntry.created_at)).where(
                inside & LedgerEntry.charge.is_(True)
            )
        ).one()
        n = s.execute(
            select(func.count())
            .select_from(LedgerEntry)
            .where(inside & (LedgerEntry.kind == "reserve"))
        ).scalar_one()
        acc.charged = float(total or 0.0)
        acc.spent = max(acc.charged, 0.0)
        acc.n_decisions = int(n)
        loaded.first_charge = None if first is None else float(first)

    def _save(self, s: Session, loaded: _Loaded) -> None:
        acc, row = loaded.acc, loaded.row
        row.period_start = none_if_inf(acc.period_start)
        row.period_end = acc.period_end
        row.spent = acc.spent
        row.reserved = max(acc.reserved, 0.0)
        row.overrun = acc.overrun
        row.n_decisions = acc.n_decisions
        row.previous_decisions = acc.previous_decisions
        row.lifetime_spent = acc.lifetime_spent
        row.since_entry = loaded.since_entry
        row.budget_usd = acc.budget.amount_usd
        row.period_kind = acc.budget.period.kind
        row.window_seconds = acc.budget.period.window_seconds
        row.expected_queries = acc.budget.expected_queries
        s.flush()

    # ---- journal ----------------------------------------------------------------------
    def _entry(
        self,
        s: Session,
        loaded: _Loaded,
        kind: str,
        amount: float,
        now: float,
        decision_id: str | None,
        period_start: float,
        *,
        charge: bool,
    ) -> None:
        s.add(
            LedgerEntry(
                decision_id=decision_id,
                user=loaded.row.user,
                kind=kind,
                amount=amount,
                period_start=none_if_inf(period_start),
                created_at=now,
                charge=charge,
            )
        )
        s.flush()

    def _charge(
        self,
        s: Session,
        loaded: _Loaded,
        r: LedgerReservation,
        amount: float,
        now: float,
        kind: str,
    ) -> None:
        """Add ``amount`` (negative: a correction) to the spend of ``r``'s period."""
        acc = loaded.acc
        acc.lifetime_spent += amount
        self._entry(
            s, loaded, kind, amount, now, r.decision_id, inf_if_none(r.period_start), charge=True
        )
        if acc.budget.period.kind == "rolling":
            acc.charged = getattr(acc, "charged", 0.0) + amount
            acc.spent = max(acc.charged, 0.0)
            if loaded.first_charge is None:
                loaded.first_charge = now
        elif self._current(loaded, r):
            acc.spent = max(acc.spent + amount, 0.0)

    @staticmethod
    def _current(loaded: _Loaded, r: LedgerReservation) -> bool:
        kind = loaded.acc.budget.period.kind
        return (
            kind in ("total", "rolling") or inf_if_none(r.period_start) == loaded.acc.period_start
        )

    # ---- expiry -----------------------------------------------------------------------
    def _stale(self, s: Session, now: float, users: Iterable[str] | None = None) -> list:
        q = select(LedgerReservation).where(
            (LedgerReservation.state == "open")
            & (LedgerReservation.created_at <= now - self.reservation_ttl)
        )
        if users is not None:
            q = q.where(LedgerReservation.user.in_(list(users)))
        q = q.order_by(LedgerReservation.created_at, LedgerReservation.decision_id)
        return list(s.execute(q.execution_options(populate_existing=True)).scalars())

    @staticmethod
    def _no_budget(user: str) -> BudgetError:
        return BudgetError(
            f"user {user!r} has no budget; give them one with "
            f"`bandit-router users budget {user} AMOUNT` (or set_budget), or configure a "
            "default budget."
        )

    def _lock_with_expiry(
        self, s: Session, users: Iterable[str], now: float, *, required: bool = True
    ) -> tuple[dict, int]:
        """Lock ``users`` and every user with a reservation past its time to live, then
        expire those reservations (as ``InMemoryLedger`` does on every call). The sweep is
        saved before a user without an account raises (``required``): the public methods
        commit it anyway, as the in-memory ledger keeps its expiries when a call fails."""
        users = set(users)
        stale_users = set()
        if self.reservation_ttl < EXPIRY_OFF:
            stale_users = set(
                s.execute(
                    select(LedgerReservation.user)
                    .where(
                        (LedgerReservation.state == "open")
                        & (LedgerReservation.created_at <= now - self.reservation_ttl)
                    )
                    .distinct()
                ).scalars()
            )
        accounts = self._lock(s, users | stale_users, now)
        n = 0
        for r in self._stale(s, now, accounts) if stale_users else ():
            loaded = accounts[r.user]
            self._refresh(s, loaded, now)
            if self._current(loaded, r):
                loaded.acc.reserved = max(loaded.acc.reserved - float(r.amount), 0.0)
            if self.on_expiry == "charge":
                self._charge(s, loaded, r, float(r.amount), now, "expire")
            r.state, r.closed_at = "expired", now
            n += 1
        for loaded in accounts.values():
            self._save(s, loaded)
        missing = sorted(users - set(accounts))
        if required and missing:
            raise self._no_budget(missing[0])
        return accounts, n

    def _commit_then_raise(self, fn, *args, **kwargs):
        """Run ``fn(session, ...)`` in a write transaction that commits even when ``fn``
        raises a ``BudgetError`` (what it swept before is kept), then re-raise."""
        error: BudgetError | None = None
        with self.sessions.write() as s:
            try:
                return fn(s, *args, **kwargs)
            except BudgetError as exc:
                error = exc
        raise error

    def expire(self) -> int:
        """Expire reservations older than ``reservation_ttl``; returns how many expired."""
        now = self.clock()
        with self.sessions.write() as s:
            return self._lock_with_expiry(s, (), now)[1]

    # ---- budgets ----------------------------------------------------------------------
    def set_budget(self, user: str, budget: Budget) -> None:
        """Give ``user`` a budget (replacing any earlier one; the spend so far is kept).

        The ``users`` row is created or updated in the same transaction."""
        if not isinstance(budget, Budget):
            raise BudgetError(f"expected a Budget, got {type(budget).__name__}.")
        with self.sessions.write() as s:
            self.set_budget_in(s, user, budget)

    def set_budget_in(self, s: Session, user: str, budget: Budget) -> None:
        """``set_budget`` inside the caller's transaction ``s``."""
        now = self.clock()
        self._insert(s, User, {"name": user, "created_at": _utcnow()})
        s.execute(update(User).where(User.name == user).values(**budget_columns(budget)))
        row = self._select_row(s, user)
        if row is None:
            self._insert(s, LedgerAccount, self._new_account(user, budget))
            loaded = self._load(self._select_row(s, user))
        else:
            loaded = self._load(row)
            acc = loaded.acc
            if acc.budget.period == budget.period:
                acc.budget = budget
            else:  # a new kind of period: keep what is spent now, re-stamp the open holds
                self._refresh(s, loaded, now)
                spent = acc.spent
                acc.budget = budget
                acc.period_start, acc.period_end = -math.inf, None
                if budget.period.kind == "rolling":
                    last = s.execute(select(func.max(LedgerEntry.id))).scalar_one()
                    loaded.since_entry = int(last or 0)
                    self._entry(s, loaded, "carry", spent, now, None, -math.inf, charge=True)
                acc.spent = spent
                self._refresh(s, loaded, now)
                s.execute(
                    update(LedgerReservation)
                    .where((LedgerReservation.user == user) & (LedgerReservation.state == "open"))
                    .values(period_start=none_if_inf(acc.period_start))
                )
        self._refresh(s, loaded, now)
        self._save(s, loaded)

    # ---- the protocol -----------------------------------------------------------------
    def state(self, user: str) -> AccountState:
        """The user's budget, spend and holds now."""
        now = self.clock()
        loaded = None
        if self.raw is not None:  # most calls: nothing to expire or turn over
            try:
                with self.raw.read() as cur:
                    loaded = self.fast_account(cur, user, now, lock=False)
            except Fallback:
                pass
        if loaded is None:
            loaded = self._read_state(user, now)
        if loaded is None:
            loaded = self._commit_then_raise(self._state_in, user, now)
        return self._state(user, loaded, now)

    def _state_in(self, s: Session, user: str, now: float) -> _Loaded:
        loaded = self._lock_with_expiry(s, (user,), now)[0][user]
        self._refresh(s, loaded, now)
        self._save(s, loaded)
        return loaded

    def _read_state(self, user: str, now: float) -> _Loaded | None:
        """The account in a read-only transaction, or None when reading it would change
        it (a reservation to expire, a calendar period to turn over, no account yet)."""
        with self.sessions.read() as s:
            if self.reservation_ttl < EXPIRY_OFF:
                stale = s.execute(
                    select(LedgerReservation.decision_id)
                    .where(
                        (LedgerReservation.state == "open")
                        & (LedgerReservation.created_at <= now - self.reservation_ttl)
                    )
                    .limit(1)
                ).first()
                if stale is not None:
                    return None
            row = s.execute(
                select(LedgerAccount).where(LedgerAccount.user == user)
            ).scalar_one_or_none()
            if row is None:
                return None
            loaded = self._load(row)
            kind = loaded.acc.budget.period.kind
            if kind in ("daily", "monthly") and (
                row.period_end is None or not (loaded.acc.period_start <= now < row.period_end)
            ):
                return None
            self._refresh(s, loaded, now)  # rolling: sums the window; total: nothing
            s.expunge_all()
            return loaded

    @staticmethod
    def _state(user: str, loaded: _Loaded, now: float) -> AccountState:
        acc = loaded.acc
        if acc.budget.period.kind == "rolling":
            w = acc.budget.period.window_seconds
            resets_at = loaded.first_charge + w if loaded.first_charge is not None else None
            start, end = now - w, now
        else:
            start, end = acc.period_start, acc.period_end
            resets_at = end
        return AccountState(
            user=user,
            budget=acc.budget,
            now=now,
            spent=acc.spent,
            reserved=max(acc.reserved, 0.0),
            period_start=start,
            period_end=end,
            resets_at=resets_at,
            n_decisions=acc.n_decisions,
            previous_decisions=acc.previous_decisions,
            overrun=acc.overrun,
        )

    def reserve(self, user: str, decision_id: str, amount: float) -> Reservation:
        """Hold ``amount`` USD for a decision; refuses more than what is left.

        Repeating the same reservation returns the first one (idempotent).
        """
        return self._commit_then_raise(self.reserve_in, user, decision_id, amount)

    def reserve_in(
        self, s: Session, user: str, decision_id: str, amount: float, *, new: bool = False
    ) -> Reservation:
        """``reserve`` inside the caller's transaction ``s`` (``new``: the caller knows that
        no reservation has this id, e.g. it has just inserted the decision)."""
        amount = _usd(amount, "a reservation")
        decision_id = str(decision_id)
        now = self.clock()
        accounts, _ = self._lock_with_expiry(s, (user,), now)
        known = None if new else s.get(LedgerReservation, decision_id, populate_existing=True)
        if known is not None and known.state == "settled":
            raise BudgetError(f"decision {decision_id!r} of {known.user!r} is already settled.")
        if known is not None and known.state in ("open", "expired"):
            if known.user == user and abs(float(known.amount) - amount) <= _MONEY_TOL:
                return self._reservation(known)
            raise BudgetError(
                f"decision {decision_id!r} already holds {float(known.amount)} USD for "
                f"{known.user!r}; use a fresh decision id."
            )
        loaded = accounts[user]
        self._refresh(s, loaded, now)
        acc = loaded.acc
        left = acc.budget.amount_usd - acc.spent - acc.reserved
        if amount > left + EPS_USD * max(1.0, acc.budget.amount_usd):
            self._save(s, loaded)  # the refresh above is kept (committed by the caller)
            raise BudgetExhaustedError(
                f"user {user!r} has {max(left, 0.0):.6g} USD left of {acc.budget.amount_usd:.6g}; "
                f"cannot hold {amount:.6g}. Choose a cheaper model or wait for the budget to reset."
            )
        if known is None:
            known = LedgerReservation(decision_id=decision_id)
            s.add(known)
        known.user, known.amount, known.created_at = user, amount, now
        known.period_start = none_if_inf(acc.period_start)
        known.state, known.actual, known.late, known.closed_at = "open", None, False, None
        acc.reserved += amount
        acc.n_decisions += 1
        self._entry(s, loaded, "reserve", amount, now, decision_id, acc.period_start, charge=False)
        for other in accounts.values():
            self._save(s, other)
        return self._reservation(known)

    # ---- the fast path (plain SQL, the common case; see storage/fast.py) ------------------
    def fast_account(self, cur, user: str, now: float, *, lock: bool) -> _Loaded:
        """The user's account read with ``cur`` (locked ``FOR UPDATE`` on PostgreSQL when
        ``lock``), when nothing has to change first: no reservation to expire, an account
        that exists, a total budget or a calendar period that has not turned over (what
        ``_refresh`` would do is then nothing). ``Fallback`` otherwise."""
        raw = self.raw
        assert raw is not None
        if self.reservation_ttl < EXPIRY_OFF:
            cur.execute(raw.sql(_SQL_STALE), {"limit": now - self.reservation_ttl})
            if cur.fetchone() is not None:
                raise Fallback
        q = _SQL_ACCOUNT + (" FOR UPDATE" if lock and raw.postgres else "")
        cur.execute(raw.sql(q), {"user": user})
        got = cur.fetchone()
        if got is None:
            raise Fallback
        row = _AccountRow(user, *got)
        kind = row.period_kind
        if kind == "rolling":
            raise Fallback
        loaded = self._load(row)  # type: ignore[arg-type]
        if kind != "total" and (
            row.period_end is None or not (loaded.acc.period_start <= now < row.period_end)
        ):
            raise Fallback
        return loaded

    def reserve_fast(self, cur, user: str, decision_id: str, amount: float, now: float) -> None:
        """``reserve_in(..., new=True)`` in the common case, inside the caller's
        transaction ``cur`` (``Fallback`` otherwise; ``BudgetExhaustedError`` as there)."""
        raw = self.raw
        assert raw is not None
        amount = _usd(amount, "a reservation")
        loaded = self.fast_account(cur, user, now, lock=True)
        acc = loaded.acc
        left = acc.budget.amount_usd - acc.spent - acc.reserved
        if amount > left + EPS_USD * max(1.0, acc.budget.amount_usd):
            raise BudgetExhaustedError(
                f"user {user!r} has {max(left, 0.0):.6g} USD left of {acc.budget.amount_usd:.6g}; "
                f"cannot hold {amount:.6g}. Choose a cheaper model or wait for the budget to reset."
            )
        start = none_if_inf(acc.period_start)
        row = {"d": decision_id, "user": user, "a": amount, "now": now, "ps": start}
        cur.execute(raw.sql(_SQL_RESERVE), {**row, "no": False})
        cur.execute(raw.sql(_SQL_ENTRY), {**row, "kind": "reserve", "charge": False})
        acc.reserved += amount
        acc.n_decisions += 1
        cur.execute(
            raw.sql(_SQL_ACCOUNT_RESERVE),
            {"user": user, "r": max(acc.reserved, 0.0), "n": acc.n_decisions},
        )

    def settle_check(self, cur, decision_id: str, user: str, now: float) -> tuple:
        """First half of ``settle_fast``: lock the account and read the open reservation
        (``Fallback`` unless it is the common case). Called before anything is written, so
        a fallback wastes no id of a sequence."""
        raw = self.raw
        assert raw is not None
        loaded = self.fast_account(cur, user, now, lock=True)  # lock first, then read
        cur.execute(raw.sql(_SQL_RESERVATION), {"d": decision_id})
        r = cur.fetchone()
        if r is None or r[3] != "open" or r[0] != user:
            raise Fallback
        return loaded, float(r[1]), r[2]

    def settle_fast(
        self, cur, checked: tuple, decision_id: str, actual: float, user: str, now: float
    ) -> None:
        """``settle_in(..., user=user)`` of the open reservation ``settle_check`` found,
        inside the caller's transaction ``cur``."""
        raw = self.raw
        assert raw is not None
        actual = _usd(actual, "an actual cost")
        loaded, amount, start = checked
        acc = loaded.acc
        current = acc.budget.period.kind == "total" or inf_if_none(start) == acc.period_start
        if current:
            acc.reserved = max(acc.reserved - amount, 0.0)
        acc.lifetime_spent += actual
        cur.execute(
            raw.sql(_SQL_ENTRY),
            {"d": decision_id, "user": user, "a": actual, "now": now, "ps": start,
             "kind": "settle", "charge": True},
        )  # fmt: skip
        if current:
            acc.spent = max(acc.spent + actual, 0.0)
            acc.overrun += max(actual - amount, 0.0)
        cur.execute(raw.sql(_SQL_SETTLE), {"d": decision_id, "a": actual, "no": False, "now": now})
        cur.execute(
            raw.sql(_SQL_ACCOUNT_SETTLE),
            {"user": user, "s": acc.spent, "r": max(acc.reserved, 0.0), "o": acc.overrun,
             "l": acc.lifetime_spent},
        )  # fmt: skip

    @staticmethod
    def _reservation(r: LedgerReservation) -> Reservation:
        return Reservation(
            r.decision_id, r.user, float(r.amount), float(r.created_at), inf_if_none(r.period_start)
        )

    def settle(self, decision_id: str, actual_cost: float) -> Settlement:
        """Replace the hold of a decision by its actual cost (idempotent per decision)."""
        return self._commit_then_raise(self.settle_in, decision_id, actual_cost)

    def settle_in(
        self, s: Session, decision_id: str, actual_cost: float, *, user: str | None = None
    ) -> Settlement:
        """``settle`` inside the caller's transaction ``s`` (``user``: the decision's user,
        when the caller knows it)."""
        actual = _usd(actual_cost, "an actual cost")
        decision_id = str(decision_id)
        r = s.get(LedgerReservation, decision_id)
        if r is not None and r.state == "settled":  # final: checked before any expiry
            return self._settled(r, actual)
        if user is None:
            user = None if r is None or r.state == "released" else r.user
        now = self.clock()
        accounts, _ = self._lock_with_expiry(s, () if user is None else (user,), now)
        if user is not None:  # again, under the account's lock
            r = s.get(LedgerReservation, decision_id, populate_existing=True)
        if r is not None and r.state == "settled" and r.user == user:  # settled meanwhile
            return self._settled(r, actual)
        if user is None or r is None or r.state not in ("open", "expired") or r.user != user:
            raise BudgetError(
                f"unknown decision {decision_id!r}: reserve before settling, and settle "
                "each decision once."
            )
        loaded = accounts[r.user]
        self._refresh(s, loaded, now)
        acc = loaded.acc
        late = r.state == "expired"
        current = self._current(loaded, r)
        amount = float(r.amount)
        if not late:
            if current:
                acc.reserved = max(acc.reserved - amount, 0.0)
            self._charge(s, loaded, r, actual, now, "settle")
        elif self.on_expiry == "charge":
            self._charge(s, loaded, r, actual - amount, now, "correct")
        else:
            self._charge(s, loaded, r, actual, now, "settle")
        if current:
            acc.overrun += max(actual - amount, 0.0)
        r.state, r.actual, r.late, r.closed_at = "settled", actual, late, now
        for other in accounts.values():
            self._save(s, other)
        return Settlement(decision_id, r.user, amount, actual, late)

    @staticmethod
    def _settled(r: LedgerReservation, actual: float) -> Settlement:
        if abs(float(r.actual) - actual) <= _MONEY_TOL:
            return Settlement(r.decision_id, r.user, float(r.amount), float(r.actual), r.late)
        raise BudgetError(
            f"decision {r.decision_id!r} was already settled at {float(r.actual)} USD, "
            f"not {actual}; feedback is accepted once per decision."
        )

    def release(self, decision_id: str) -> None:
        """Drop an open hold without charging (the call was never made)."""
        with self.sessions.write() as s:
            r = s.get(LedgerReservation, str(decision_id))
            if r is None or r.state != "open":
                raise BudgetError(
                    f"decision {decision_id!r} holds nothing (unknown, settled or expired)."
                )
            now = self.clock()
            loaded = self._lock(s, (r.user,), now)[r.user]
            self._refresh(s, loaded, now)
            r = s.get(LedgerReservation, str(decision_id), populate_existing=True)
            if r.state != "open":
                raise BudgetError(
                    f"decision {decision_id!r} holds nothing (unknown, settled or expired)."
                )
            if self._current(loaded, r):
                loaded.acc.reserved = max(loaded.acc.reserved - float(r.amount), 0.0)
            r.state, r.closed_at = "released", now
            self._entry(
                s,
                loaded,
                "release",
                float(r.amount),
                now,
                r.decision_id,
                inf_if_none(r.period_start),
                charge=False,
            )
            self._save(s, loaded)

    def lifetime_spent(self, user: str) -> float:
        """Everything settled or charged for ``user`` since the ledger started, USD."""
        with self.sessions.read() as s:
            row = s.get(LedgerAccount, user)
            if row is None:
                if self.default_budget is None:
                    raise BudgetError(f"user {user!r} has no budget.")
                return 0.0
            return float(row.lifetime_spent)


_ACCOUNT_COLUMNS = (
    "budget_usd", "period_kind", "window_seconds", "expected_queries", "period_start",
    "period_end", "spent", "reserved", "overrun", "n_decisions", "previous_decisions",
    "lifetime_spent", "since_entry",
)  # fmt: skip
_SQL_ACCOUNT = f'SELECT {", ".join(_ACCOUNT_COLUMNS)} FROM ledger_accounts WHERE "user" = :user'
_SQL_STALE = (
    "SELECT 1 FROM ledger_reservations WHERE state = 'open' AND created_at <= :limit LIMIT 1"
)
_SQL_RESERVE = (
    'INSERT INTO ledger_reservations (decision_id, "user", amount, created_at, period_start, '
    "state, actual, late, closed_at) VALUES (:d, :user, :a, :now, :ps, 'open', NULL, :no, NULL)"
)
_SQL_ENTRY = (
    'INSERT INTO ledger_entries (decision_id, "user", kind, amount, period_start, created_at, '
    "charge) VALUES (:d, :user, :kind, :a, :ps, :now, :charge)"
)
_SQL_ACCOUNT_RESERVE = (
    'UPDATE ledger_accounts SET reserved = :r, n_decisions = :n WHERE "user" = :user'
)
_SQL_RESERVATION = (
    'SELECT "user", amount, period_start, state FROM ledger_reservations WHERE decision_id = :d'
)
_SQL_SETTLE = (
    "UPDATE ledger_reservations SET state = 'settled', actual = :a, late = :no, "
    "closed_at = :now WHERE decision_id = :d"
)
_SQL_ACCOUNT_SETTLE = (
    "UPDATE ledger_accounts SET spent = :s, reserved = :r, overrun = :o, lifetime_spent = :l "
    'WHERE "user" = :user'
)


class _AccountRow:
    """The columns of a ``ledger_accounts`` row read by plain SQL, money as float (what
    ``SqlLedger._load`` reads from the ORM row)."""

    __slots__ = ("user", *_ACCOUNT_COLUMNS)

    def __init__(self, user: str, *values: object) -> None:
        self.user = user
        for k, v in zip(_ACCOUNT_COLUMNS, values, strict=True):
            setattr(self, k, v)
        for k in ("budget_usd", "spent", "reserved", "overrun", "lifetime_spent"):
            setattr(self, k, float(getattr(self, k)))  # Decimal on PostgreSQL
        for k in ("period_start", "period_end", "window_seconds"):
            v = getattr(self, k)
            setattr(self, k, None if v is None else float(v))


def _utcnow():
    from bandit_router.storage.models.base import utcnow

    return utcnow()
