"""In-memory implementations of the ``Router``'s storage Protocols (``bandit_router.stores``).

For tests, simulations (the replay drives a ``Router`` on these) and a router that does not
need to survive a restart. Every store is thread-safe (one lock each); the decision log
holds the ledger and does "store the decision + reserve" and "store the feedback + settle"
under one lock, which is what a database transaction gives the SQL versions.

Contexts are kept by reference (no copy): the ``Router`` never mutates a context after it
has scored it, and a replay saves a copy per query this way.

>>> from bandit_router.budget import Budget
>>> stores = memory_stores()
>>> stores.users.put(UserRecord("alice", Budget(1.0)))
>>> stores.ledger.state("alice").remaining
1.0
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from bandit_router.budget.clock import Clock, system_clock
from bandit_router.budget.ledger import InMemoryLedger, Ledger
from bandit_router.errors import (
    BudgetError,
    FeedbackConflictError,
    InvalidInputError,
    StateError,
    UnknownDecisionError,
)
from bandit_router.records import record_maker
from bandit_router.stores import (
    DecisionRecord,
    FeedbackOutcome,
    FeedbackRecord,
    ModelRecord,
    Snapshot,
    Stores,
    UserRecord,
)

#: a reservation never expires inside the ledger on its own: the decision log's wait time
#: (``DecisionRecord.expires_at``, handled by ``Router.expire``) settles it instead
NEVER = 1e18


def same_feedback(a: FeedbackRecord, b: FeedbackRecord) -> bool:
    """True when two feedback records say the same thing (reward and cost, within 1e-12).

    >>> import numpy as np
    >>> f = FeedbackRecord("d", 1.0, 0.5, 0.0, "m", np.zeros(1))
    >>> same_feedback(f, FeedbackRecord("d", 1.0, 0.5 + 1e-15, 9.0, "m", np.zeros(1)))
    True
    """
    if a.decision_id != b.decision_id or a.is_default != b.is_default:
        return False
    if (a.reward is None) != (b.reward is None):
        return False
    if a.reward is not None and abs(float(a.reward) - float(b.reward)) > 1e-12:
        return False
    return abs(float(a.cost) - float(b.cost)) <= 1e-12 * max(1.0, abs(float(a.cost)))


_make_feedback = record_maker(FeedbackRecord)


class InMemoryDecisionLog:
    """Decisions and feedback in dicts; reserves on ``record`` and settles on ``add_feedback``.

    ``feedback_id`` is assigned 1, 2, 3... in the order feedback is added.

    >>> import numpy as np
    >>> from bandit_router.budget import Budget, InMemoryLedger, ManualClock
    >>> ledger = InMemoryLedger(clock=ManualClock(0.0))
    >>> ledger.set_budget("alice", Budget(1.0))
    >>> log = InMemoryDecisionLog(ledger)
    >>> log.record(DecisionRecord("d1", "alice", 0.0, "m", np.zeros(2), {}, 1.0, 0.25))
    >>> ledger.state("alice").reserved
    0.25
    >>> out = log.add_feedback(FeedbackRecord("d1", 1.0, 0.1, 1.0, "m", np.zeros(2)))
    >>> out.record.feedback_id, out.duplicate, round(ledger.state("alice").spent, 6)
    (1, False, 0.1)
    >>> log.add_feedback(FeedbackRecord("d1", 1.0, 0.1, 2.0, "m", np.zeros(2))).duplicate
    True
    >>> [f.decision_id for f in log.feedback_since(0)]
    ['d1']
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.RLock()
        self._decisions: dict[str, DecisionRecord] = {}
        self._feedback: dict[str, FeedbackRecord] = {}
        self._log: list[FeedbackRecord] = []  # in feedback-id order: _base + 1, _base + 2...
        self._base = 0  # feedback ids up to this one were pruned
        self._open: dict[str, DecisionRecord] = {}  # decisions still waiting for feedback

    def record(self, decision: DecisionRecord) -> None:
        """Store the decision and reserve its estimated cost (nothing stored if that fails)."""
        did = decision.decision_id
        with self._lock:
            if did in self._decisions:
                raise InvalidInputError(f"decision id {did!r} is already used; use a fresh id.")
            if decision.reserved:
                self.ledger.reserve(decision.user, did, decision.estimated_cost)
            self._decisions[did] = decision
            self._open[did] = decision

    def get(self, decision_id: str) -> DecisionRecord | None:
        return self._decisions.get(decision_id)

    def feedback_for(self, decision_id: str) -> FeedbackRecord | None:
        return self._feedback.get(decision_id)

    def add_feedback(self, feedback: FeedbackRecord) -> FeedbackOutcome:
        """Store the feedback and settle the reservation at ``feedback.cost``."""
        did = feedback.decision_id
        with self._lock:
            decision = self._decisions.get(did)
            if decision is None:
                raise UnknownDecisionError(
                    f"no decision has the id {did!r}; give the decision_id that route returned."
                )
            known = self._feedback.get(did)
            if known is not None:
                if same_feedback(known, feedback):
                    return FeedbackOutcome(known, True)
                raise FeedbackConflictError(
                    f"decision {did!r} already has feedback (reward {known.reward}, cost "
                    f"{known.cost}); feedback is accepted once per decision."
                )
            cost = float(feedback.cost)
            if not (cost >= 0 and math.isfinite(cost)):
                raise InvalidInputError(f"cost must be a finite USD amount >= 0, got {cost!r}.")
            if decision.reserved:
                try:
                    self.ledger.settle(did, cost)
                except BudgetError as exc:  # pragma: no cover - the ledger's own checks
                    raise InvalidInputError(str(exc)) from None
            stored = _make_feedback(
                did,
                feedback.reward,
                cost,
                feedback.created_at,
                feedback.model,
                feedback.context,
                feedback.user or decision.user,
                feedback.is_default,
                self._base + len(self._log) + 1,
            )
            self._feedback[did] = stored
            self._log.append(stored)
            self._open.pop(did, None)
            return FeedbackOutcome(stored, False)

    def feedback_since(self, after_id: int, limit: int | None = None) -> list[FeedbackRecord]:
        """Feedback with ``feedback_id > after_id`` in id order (ids are 1..n, no gaps).

        ``StateError`` if some of it was pruned (``prune``): rebuild from the snapshot it
        was folded into instead."""
        with self._lock:
            base = self._base
            start = max(int(after_id), 0)
            if start < base:
                raise StateError(
                    f"feedback up to #{base} was pruned (folded into a snapshot); rebuild "
                    "from the latest snapshot and the feedback after it."
                )
            stop = None if limit is None else start + int(limit) - base
            return self._log[start - base : stop]

    def prune(self, before: float, folded_up_to: int) -> dict[str, int]:
        """Forget what nothing needs any more: the feedback folded into a snapshot
        (``feedback_id <= folded_up_to``) and stored before ``before``, oldest first and
        without gaps, with its decisions and the ledger's settlements of them (``forget``).
        Decisions waiting for feedback, their reservations and every later feedback stay.
        Returns how many records went, per kind."""
        with self._lock:
            log = self._log
            n = 0
            while n < len(log):
                f = log[n]
                if f.feedback_id > folded_up_to or not f.created_at < before:
                    break
                d = self._decisions.get(f.decision_id)
                if d is not None and not d.created_at < before:
                    break
                n += 1
            gone = [f.decision_id for f in log[:n]]
            del log[:n]
            self._base += n
            for did in gone:
                self._feedback.pop(did, None)
                self._decisions.pop(did, None)
            forget = getattr(self.ledger, "forget", None)
            settled = forget(gone) if forget is not None else 0
            return {"decisions": n, "feedback": n, "ledger_settlements": settled}

    def expired(
        self, now: float, limit: int | None = None, after: float | None = None
    ) -> list[DecisionRecord]:
        """Decisions without feedback whose ``expires_at`` is before ``now`` (and not before
        ``after`` when given), oldest first."""
        lo = -math.inf if after is None else float(after)
        with self._lock:
            out = [
                d
                for d in self._open.values()
                if d.expires_at is not None and lo <= d.expires_at < now
            ]
        out.sort(key=lambda d: (d.created_at, d.decision_id))
        return out if limit is None else out[: int(limit)]

    def __len__(self) -> int:
        return len(self._decisions)


class InMemorySnapshotStore:
    """The latest policy snapshot; ids 1, 2, 3...

    Only the latest is kept: nothing reads an older one (``latest`` is the whole protocol),
    and a policy's state is large (21 MB at d = 513 with five models), so a long-lived router
    snapshotting every 100 feedback would otherwise grow by that much each time.

    >>> s = InMemorySnapshotStore()
    >>> _ = s.save(b"state", 7, {"policy": "linucb"})
    >>> _ = s.save(b"newer", 9, {"policy": "linucb"})
    >>> s.latest().snapshot_id, s.latest().last_feedback_id, s.latest().blob
    (2, 9, b'newer')
    """

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None

    def save(self, blob: bytes, last_feedback_id: int, meta: dict[str, Any]) -> Snapshot:
        with self._lock:
            last = self._latest
            snap = Snapshot(
                1 if last is None else last.snapshot_id + 1,
                bytes(blob),
                int(last_feedback_id),
                self.clock(),
                dict(meta),
            )
            self._latest = snap
            return snap

    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._latest


class InMemoryUsers:
    """Users and budgets in a dict; ``put`` also gives the ledger the user's budget.

    >>> from bandit_router.budget import Budget
    >>> users = InMemoryUsers()
    >>> users.put(UserRecord("bob", Budget(2.0, "daily")))
    >>> [u.name for u in users.list()], users.get("bob").budget.amount_usd
    (['bob'], 2.0)
    """

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._users: dict[str, UserRecord] = {}

    def get(self, name: str) -> UserRecord | None:
        return self._users.get(name)

    def put(self, user: UserRecord) -> None:
        with self._lock:
            self._users[user.name] = user
            if user.budget is not None and self.ledger is not None:
                self.ledger.set_budget(user.name, user.budget)

    def list(self) -> Sequence[UserRecord]:
        with self._lock:
            return sorted(self._users.values(), key=lambda u: u.name)


class InMemoryModels:
    """The catalogue in a dict, in the order models were first put.

    >>> from bandit_router.catalogue import ModelSpec
    >>> models = InMemoryModels()
    >>> models.put(ModelRecord(ModelSpec("a", 1.0, 2.0)))
    >>> models.put(ModelRecord(ModelSpec("a", 1.0, 2.0), status="retired"))
    >>> [(m.spec.name, m.status) for m in models.list()]
    [('a', 'retired')]
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelRecord] = {}

    def list(self) -> Sequence[ModelRecord]:
        with self._lock:
            return list(self._models.values())

    def put(self, record: ModelRecord) -> None:
        if record.status not in ("active", "retired"):
            raise InvalidInputError(
                f"model status must be 'active' or 'retired', got {record.status!r}."
            )
        with self._lock:
            self._models[record.spec.name] = record


def memory_stores(
    *, clock: Clock = system_clock, ledger: Ledger | None = None, **ledger_options: Any
) -> Stores:
    """A ``Stores`` bundle in memory. ``ledger_options`` go to ``InMemoryLedger`` (e.g.
    ``default_budget``); its own reservation expiry is off (the decision wait time rules).

    >>> from bandit_router.budget import ManualClock
    >>> s = memory_stores(clock=ManualClock(0.0))
    >>> type(s.decisions).__name__, type(s.ledger).__name__
    ('InMemoryDecisionLog', 'InMemoryLedger')
    """
    if ledger is None:
        ledger_options.setdefault("reservation_ttl", NEVER)
        ledger = InMemoryLedger(clock=clock, **ledger_options)
    elif ledger_options:
        raise InvalidInputError("give ledger options or a ledger, not both.")
    return Stores(
        decisions=InMemoryDecisionLog(ledger),
        ledger=ledger,
        snapshots=InMemorySnapshotStore(clock),
        users=InMemoryUsers(ledger),
        models=InMemoryModels(),
    )
