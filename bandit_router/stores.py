"""What the ``Router`` needs from storage, as small Protocols, plus the records they hold.

The core never imports SQLAlchemy: ``storage/`` implements these Protocols on a database
(SQLite file or PostgreSQL); ``bandit_router.stores_memory`` (in-memory versions) serves
tests, simulations and a router that does not need to survive a restart.

Records
-------
``DecisionRecord``  one routed query: id (UUIDv7 text, time-ordered), user, time, model,
                    context ``(d,)`` float64, all arm scores, propensity, estimated cost,
                    policy name and state version, embedder, prior id, allocator reason.
``FeedbackRecord``  the feedback on one decision (at most one per decision): reward, actual
                    cost, time, whether it is the configured default reward applied at
                    expiry, and a ``feedback_id`` assigned by the log, strictly increasing in
                    commit order. It repeats the decision's model and context, so the
                    feedback table alone is the log that rebuilds the learned state
                    (``snapshot + feedback_since(snapshot.last_feedback_id)``). An expired
                    decision gets a record with ``is_default=True`` (its reward is the
                    configured default reward, or None: no reward, the policy is not updated).
``Snapshot``        a policy state blob with the id of the last feedback folded into it.
``UserRecord``      a user and their budget.

Atomicity the Router relies on
------------------------------
- ``DecisionLog.record`` stores the decision *and* reserves its estimated cost in the
  user's ledger in one transaction; a reservation that no longer fits raises
  ``BudgetExhaustedError`` and stores nothing.
- ``DecisionLog.add_feedback`` stores the feedback *and* settles the reservation at the
  actual cost in one transaction; identical feedback twice returns the stored record
  (``FeedbackOutcome.duplicate``), a different second one raises ``FeedbackConflictError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from bandit_router.budget.ledger import Ledger
from bandit_router.budget.periods import Budget
from bandit_router.catalogue import ModelSpec


@dataclass(frozen=True)
class DecisionRecord:
    """One routed query as the decision log keeps it.

    ``context`` has shape ``(d,)``; ``scores`` maps model -> {"mean", "width", "value"};
    ``created_at`` and ``expires_at`` are Unix seconds (feedback after ``expires_at`` is
    refused and the reservation settles at the estimate). ``reserved`` is False for a user
    without a budget: ``record`` then stores the decision without a ledger reservation and
    ``add_feedback`` settles nothing.

    >>> r = DecisionRecord("0190", "alice", 0.0, "m", np.zeros(2), {}, 1.0, 0.01)
    >>> r.model, r.context.shape
    ('m', (2,))
    """

    decision_id: str
    user: str
    created_at: float
    model: str
    context: np.ndarray
    scores: dict[str, dict[str, float]]
    propensity: float
    estimated_cost: float
    policy: str = ""
    policy_version: int = 0
    embedder: str = ""
    prior_id: str | None = None
    reason: str = "admitted"
    expires_at: float | None = None
    reserved: bool = True


@dataclass(frozen=True)
class FeedbackRecord:
    """The feedback on one decision; ``feedback_id`` is 0 until the log assigns it.

    >>> FeedbackRecord("0190", 1.0, 0.002, 5.0, "m", np.ones(2)).feedback_id
    0
    """

    decision_id: str
    reward: float | None
    cost: float
    created_at: float
    model: str
    context: np.ndarray
    user: str = ""
    is_default: bool = False
    feedback_id: int = 0


class FeedbackOutcome(NamedTuple):
    """What ``add_feedback`` did: the stored record and whether it was already there."""

    record: FeedbackRecord
    duplicate: bool


@dataclass(frozen=True)
class Snapshot:
    """A policy state blob and the id of the last feedback folded into it."""

    snapshot_id: int
    blob: bytes
    last_feedback_id: int
    created_at: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRecord:
    """A user (tenant) and their budget (None: no budget, never limited)."""

    name: str
    budget: Budget | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A catalogue entry with its status (``active`` or ``retired``)."""

    spec: ModelSpec
    status: str = "active"


@runtime_checkable
class DecisionLog(Protocol):
    """Decisions and their feedback (the replicated log of the learned state)."""

    def record(self, decision: DecisionRecord) -> None:
        """Store the decision and reserve ``decision.estimated_cost`` in one transaction."""
        ...

    def get(self, decision_id: str) -> DecisionRecord | None: ...

    def feedback_for(self, decision_id: str) -> FeedbackRecord | None: ...

    def add_feedback(self, feedback: FeedbackRecord) -> FeedbackOutcome:
        """Store the feedback and settle the reservation at ``feedback.cost`` atomically."""
        ...

    def feedback_since(self, after_id: int, limit: int | None = None) -> list[FeedbackRecord]:
        """Feedback with ``feedback_id > after_id`` in id order."""
        ...

    def expired(
        self, now: float, limit: int | None = None, after: float | None = None
    ) -> list[DecisionRecord]:
        """Decisions without feedback whose ``expires_at`` is before ``now`` (and, with
        ``after``, not before ``after``: a scan of the recent window only)."""
        ...


@runtime_checkable
class SnapshotStore(Protocol):
    """Versioned policy snapshots."""

    def save(self, blob: bytes, last_feedback_id: int, meta: dict[str, Any]) -> Snapshot: ...

    def latest(self) -> Snapshot | None: ...


@runtime_checkable
class UserDirectory(Protocol):
    """Users and their budgets."""

    def get(self, name: str) -> UserRecord | None: ...

    def put(self, user: UserRecord) -> None: ...

    def list(self) -> Sequence[UserRecord]: ...


@runtime_checkable
class ModelStore(Protocol):
    """The catalogue as stored: models, prices and status."""

    def list(self) -> Sequence[ModelRecord]: ...

    def put(self, record: ModelRecord) -> None: ...


@dataclass
class Stores:
    """The bundle a ``Router`` is built with; ``ledger`` is the budget ``Ledger``."""

    decisions: DecisionLog
    ledger: Ledger
    snapshots: SnapshotStore
    users: UserDirectory
    models: ModelStore


def as_context(values: Iterable[float]) -> np.ndarray:
    """A stored context back as a float64 ``(d,)`` array."""
    return np.asarray(list(values) if not isinstance(values, np.ndarray) else values, np.float64)
