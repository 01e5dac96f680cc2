"""The durable decision log: ``SqlDecisionLog`` implements ``bandit_router.stores.DecisionLog``.

- ``record(decision)`` inserts the decision and reserves its estimated cost in the user's
  ledger account in ONE transaction: a reservation that no longer fits raises
  ``BudgetExhaustedError`` and nothing is stored; invalid input (NaN context, negative
  cost, a model the stored catalogue does not list) raises before anything is written.
- ``add_feedback(feedback)`` inserts the feedback and settles the reservation at the actual
  cost in ONE transaction. The same feedback twice returns the stored record with
  ``duplicate=True``; another reward, cost or kind (real / default) raises
  ``FeedbackConflictError``; an unknown decision ``UnknownDecisionError``. The feedback wait
  time is the ``Router``'s rule: at expiry it adds the default feedback
  (``is_default=True``) through this same call. A decision recorded with
  ``reserved=False`` (a user without a budget) holds and settles nothing.
- ``feedback_id`` is the feedback table's autoincrement key. Ids increase in commit order:
  SQLite serialises writers; on PostgreSQL every feedback insert holds a transaction-scoped
  advisory lock until it commits, so a reader of ``feedback_since(last)`` never sees id
  ``n + 1`` before ``n`` has committed and never skips a row.

>>> import numpy as np
>>> from bandit_router.budget.periods import Budget
>>> from bandit_router.stores import DecisionRecord, FeedbackRecord
>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> stores.ledger.set_budget("alice", Budget(1.0))
>>> d = DecisionRecord("d1", "alice", 0.0, "m", np.ones(2), {}, 1.0, 0.25)
>>> stores.decisions.record(d)
>>> stores.ledger.state("alice").reserved
0.25
>>> out = stores.decisions.add_feedback(FeedbackRecord("d1", 1.0, 0.2, 5.0, "m", np.ones(2)))
>>> out.record.feedback_id, out.duplicate, stores.ledger.state("alice").spent
(1, False, 0.2)
>>> stores.decisions.add_feedback(FeedbackRecord("d1", 1.0, 0.2, 6.0, "m", np.ones(2))).duplicate
True
>>> stores.close()
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, exists, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bandit_router.errors import (
    FeedbackConflictError,
    InvalidInputError,
    UnknownDecisionError,
)
from bandit_router.storage.fast import Fallback
from bandit_router.storage.ledger import _MONEY_TOL, SqlLedger
from bandit_router.storage.models import CatalogueModel, DecisionRow, FeedbackRow
from bandit_router.storage.runs import to_jsonable
from bandit_router.storage.transactions import (
    PG_FEEDBACK_LOCK,
    Sessions,
    context_array,
    context_bytes,
    finite,
    name,
)
from bandit_router.stores import DecisionRecord, FeedbackOutcome, FeedbackRecord

_DECISION_HINT = "check the decision id the route call returned"

#: PostgreSQL NOTIFY channel of new feedback (payload: its id), ``bandit_router.sync`` listens
FEEDBACK_CHANNEL = "bandit_router_feedback"


def _decision_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise InvalidInputError(
            f"a decision id is a non-empty text of at most 64 characters, got {value!r}."
        )
    return value


def _scores(scores: Any) -> dict[str, Any]:
    if not isinstance(scores, Mapping):  # the Router hands a lazy Mapping, not a dict
        raise InvalidInputError(f"scores must map model -> {{mean, width, value}}, got {scores!r}.")
    out: dict[str, Any] = {}
    for k, v in scores.items():
        if type(k) is str and type(v) is dict:  # the router's: {model: {name: float}}, fast
            row: dict[str, Any] | None = {}
            for n, f in v.items():
                if type(n) is not str or type(f) is not float:
                    row = None
                    break
                row[n] = f if math.isfinite(f) else None  # type: ignore[index]
            if row is not None:
                out[k] = row
                continue
        out[str(k)] = to_jsonable(dict(v) if isinstance(v, Mapping) else v)
    return out


def _propensity(p: Any) -> float | None:
    """A probability in [0, 1]; NaN (not computed, e.g. a replay that logs none) is NULL."""
    try:
        if math.isnan(float(p)):
            return None
    except (TypeError, ValueError):
        pass
    return finite(p, "the propensity", low=0.0, high=1.0)


class SqlDecisionLog:
    """Decisions and their feedback in the database; see the module docstring.

    ``ledger`` is the ``SqlLedger`` on the same engine that ``record`` and ``add_feedback``
    reserve in and settle with, inside their own transaction.
    """

    def __init__(self, engine: Engine, ledger: SqlLedger):
        self.engine = engine
        self.sessions = Sessions(engine)
        self.ledger = ledger
        #: the common case in plain SQL (``storage/fast.py``), shared with the ledger
        self.raw = ledger.raw

    # ---- validation -------------------------------------------------------------------
    def _check_decision(self, d: DecisionRecord) -> dict[str, Any]:
        if not isinstance(d, DecisionRecord):
            raise InvalidInputError(f"expected a DecisionRecord, got {type(d).__name__}.")
        expires = d.expires_at
        return {
            "id": _decision_id(d.decision_id),
            "user": name(d.user, "the user"),
            "created_at": finite(d.created_at, "the decision time"),
            "model": name(d.model, "the model"),
            "context": context_bytes(d.context, "the decision's context"),
            "scores": _scores(d.scores),
            "propensity": _propensity(d.propensity),
            "estimated_cost": finite(d.estimated_cost, "the estimated cost (USD)", low=0.0),
            "policy": str(d.policy or ""),
            "policy_version": int(d.policy_version or 0),
            "embedder": str(d.embedder or ""),
            "prior_id": None if d.prior_id is None else str(d.prior_id),
            "reason": str(d.reason or ""),
            "expires_at": None if expires is None else finite(expires, "the expiry time"),
            "reserved": bool(getattr(d, "reserved", True)),
        }

    def _check_model(self, s: Session, model: str) -> None:
        """A stored catalogue (when there is one) must list the model as active."""
        status, any_model = s.execute(
            select(
                select(CatalogueModel.status).where(CatalogueModel.name == model).scalar_subquery(),
                exists().where(CatalogueModel.name.is_not(None)),
            )
        ).one()
        if any_model and status != "active":
            rows = dict(s.execute(select(CatalogueModel.name, CatalogueModel.status)).all())
            active = sorted(n for n, st in rows.items() if st == "active")
            state = "retired" if model in rows else "not in the catalogue"
            raise InvalidInputError(
                f"model {model!r} is {state}; route to one of {', '.join(active) or '(none)'} "
                "or add it with `bandit-router models add`."
            )

    # ---- decisions --------------------------------------------------------------------
    def record(self, decision: DecisionRecord) -> None:
        """Store the decision and reserve ``decision.estimated_cost`` in one transaction."""
        values = self._check_decision(decision)
        if self.raw is not None:
            try:
                return self._record_fast(values)
            except Fallback:
                pass  # a retired model, an account to create or turn over: the ORM path
        with self.sessions.write() as s:
            self._check_model(s, values["model"])
            try:
                s.execute(insert(DecisionRow).values(**values))
            except IntegrityError:
                raise InvalidInputError(
                    f"decision {values['id']!r} is already recorded; use a fresh decision id."
                ) from None
            if values["reserved"]:
                self.ledger.reserve_in(
                    s, values["user"], values["id"], values["estimated_cost"], new=True
                )

    def _record_fast(self, values: dict[str, Any]) -> None:
        raw = self.raw
        assert raw is not None
        with raw.write() as cur:
            cur.execute(raw.sql(_SQL_MODEL), {"m": values["model"]})
            status, any_model = cur.fetchone()
            if any_model and status != "active":
                raise Fallback  # the ORM path says what is wrong
            row = {**values, "scores": json.dumps(values["scores"])}
            try:
                cur.execute(raw.sql(_SQL_DECISION_PG if raw.postgres else _SQL_DECISION), row)
            except raw.integrity_error:
                raise InvalidInputError(
                    f"decision {values['id']!r} is already recorded; use a fresh decision id."
                ) from None
            if values["reserved"]:
                self.ledger.reserve_fast(
                    cur, values["user"], values["id"], values["estimated_cost"], self.ledger.clock()
                )

    def get(self, decision_id: str) -> DecisionRecord | None:
        if self.raw is not None:
            with self.raw.read() as cur:
                cur.execute(self.raw.sql(_SQL_GET), {"id": str(decision_id)})
                got = cur.fetchone()
            return None if got is None else _decision_of(got)
        with self.sessions.read() as s:
            row = s.get(DecisionRow, str(decision_id))
            return None if row is None else _decision(row)

    def expired(
        self, now: float, limit: int | None = None, after: float | None = None
    ) -> list[DecisionRecord]:
        """Decisions without feedback whose ``expires_at`` is before ``now`` (not before
        ``after`` when given: a range of the ``expires_at`` index instead of every old
        decision), oldest first."""
        q = (
            select(DecisionRow)
            .outerjoin(FeedbackRow, FeedbackRow.decision_id == DecisionRow.id)
            .where(
                FeedbackRow.id.is_(None),
                DecisionRow.expires_at.is_not(None),
                DecisionRow.expires_at < float(now),
            )
            .order_by(DecisionRow.created_at, DecisionRow.id)
        )
        if after is not None:
            q = q.where(DecisionRow.expires_at >= float(after))
        if limit is not None:
            q = q.limit(int(limit))
        with self.sessions.read() as s:
            return [_decision(r) for r in s.execute(q).scalars()]

    # ---- feedback ---------------------------------------------------------------------
    def feedback_for(self, decision_id: str) -> FeedbackRecord | None:
        if self.raw is not None:
            with self.raw.read() as cur:
                cur.execute(self.raw.sql(_SQL_FEEDBACK_FOR), {"d": str(decision_id)})
                got = cur.fetchone()
            return None if got is None else _feedback_of(got)
        with self.sessions.read() as s:
            row = s.execute(
                select(FeedbackRow).where(FeedbackRow.decision_id == str(decision_id))
            ).scalar_one_or_none()
            return None if row is None else _feedback(row)

    def feedback_since(self, after_id: int, limit: int | None = None) -> list[FeedbackRecord]:
        """Feedback with ``feedback_id > after_id`` in id order."""
        if self.raw is not None:
            sql = _SQL_FEEDBACK_SINCE + ("" if limit is None else f" LIMIT {int(limit)}")
            with self.raw.read() as cur:
                cur.execute(self.raw.sql(sql), {"after": int(after_id)})
                return [_feedback_of(r) for r in cur.fetchall()]
        q = select(FeedbackRow).where(FeedbackRow.id > int(after_id)).order_by(FeedbackRow.id)
        if limit is not None:
            q = q.limit(int(limit))
        with self.sessions.read() as s:
            return [_feedback(r) for r in s.execute(q).scalars()]

    def add_feedback(self, feedback: FeedbackRecord) -> FeedbackOutcome:
        """Store the feedback and settle the reservation at ``feedback.cost`` atomically."""
        if not isinstance(feedback, FeedbackRecord):
            raise InvalidInputError(f"expected a FeedbackRecord, got {type(feedback).__name__}.")
        decision_id = _decision_id(feedback.decision_id)
        reward = None if feedback.reward is None else finite(feedback.reward, "the reward")
        cost = finite(feedback.cost, "the actual cost (USD)", low=0.0)
        created_at = finite(feedback.created_at, "the feedback time")
        if self.raw is not None:
            try:
                return self._add_feedback_fast(feedback, decision_id, reward, cost, created_at)
            except Fallback:
                pass  # a reservation to expire, an account to turn over: the ORM path
        with self.sessions.write() as s:
            if self.sessions.postgres:  # ids in commit order (see the module docstring)
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_FEEDBACK_LOCK})
            found = s.execute(
                select(DecisionRow, FeedbackRow)
                .outerjoin(FeedbackRow, FeedbackRow.decision_id == DecisionRow.id)
                .where(DecisionRow.id == decision_id)
            ).one_or_none()
            d, old = found if found is not None else (None, None)
            if d is None or (feedback.user and feedback.user != d.user):
                raise UnknownDecisionError(
                    f"no decision {decision_id!r}"
                    + (f" for user {feedback.user!r}" if feedback.user else "")
                    + f"; {_DECISION_HINT}."
                )
            if old is not None:
                same_reward = (old.reward is None and reward is None) or (
                    old.reward is not None and reward is not None and old.reward == reward
                )
                same_kind = bool(old.is_default) == bool(feedback.is_default)
                if same_reward and same_kind and abs(float(old.cost) - cost) <= _MONEY_TOL:
                    return FeedbackOutcome(_feedback(old), True)
                raise FeedbackConflictError(
                    f"decision {decision_id!r} already has feedback (reward {old.reward}, cost "
                    f"{float(old.cost):.6g} USD); feedback is accepted once per decision."
                )
            row = FeedbackRow(
                decision_id=decision_id,
                user=d.user,
                model=d.model,
                context=d.context,
                reward=reward,
                cost=cost,
                created_at=created_at,
                is_default=bool(feedback.is_default),
            )
            s.add(row)
            s.flush()
            if d.reserved:
                self.ledger.settle_in(s, decision_id, cost, user=d.user)
            if self.sessions.postgres:  # wakes the other processes' sync at commit
                s.execute(
                    text("SELECT pg_notify(:channel, :id)"),
                    {"channel": FEEDBACK_CHANNEL, "id": str(row.id)},
                )
            return FeedbackOutcome(_feedback(row), False)

    def _add_feedback_fast(
        self,
        feedback: FeedbackRecord,
        decision_id: str,
        reward: float | None,
        cost: float,
        created_at: float,
    ) -> FeedbackOutcome:
        raw = self.raw
        assert raw is not None
        with raw.write() as cur:
            if raw.postgres:  # ids in commit order (see the module docstring)
                cur.execute(raw.sql("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_FEEDBACK_LOCK})
            cur.execute(raw.sql(_SQL_DECISION_FEEDBACK), {"d": decision_id})
            got = cur.fetchone()
            if got is None or (feedback.user and feedback.user != got[0]):
                raise UnknownDecisionError(
                    f"no decision {decision_id!r}"
                    + (f" for user {feedback.user!r}" if feedback.user else "")
                    + f"; {_DECISION_HINT}."
                )
            user, model, context, reserved = got[0], got[1], got[2], bool(got[3])
            if got[4] is not None:
                old = _feedback_of(got[4:])
                same_reward = (old.reward is None and reward is None) or (
                    old.reward is not None and reward is not None and old.reward == reward
                )
                same_kind = bool(old.is_default) == bool(feedback.is_default)
                if same_reward and same_kind and abs(old.cost - cost) <= _MONEY_TOL:
                    return FeedbackOutcome(old, True)
                raise FeedbackConflictError(
                    f"decision {decision_id!r} already has feedback (reward {old.reward}, cost "
                    f"{old.cost:.6g} USD); feedback is accepted once per decision."
                )
            is_default = bool(feedback.is_default)
            now = self.ledger.clock()
            checked = self.ledger.settle_check(cur, decision_id, user, now) if reserved else None
            cur.execute(
                raw.sql(_SQL_INSERT_FEEDBACK),
                {"d": decision_id, "user": user, "model": model, "context": context,
                 "reward": reward, "cost": cost, "t": created_at, "default": is_default},
            )  # fmt: skip
            fid = int(cur.fetchone()[0])
            if checked is not None:
                self.ledger.settle_fast(cur, checked, decision_id, cost, user, now)
            if raw.postgres:  # wakes the other processes' sync at commit
                cur.execute(
                    raw.sql("SELECT pg_notify(:channel, :id)"),
                    {"channel": FEEDBACK_CHANNEL, "id": str(fid)},
                )
        record = FeedbackRecord(
            decision_id=decision_id, reward=reward, cost=cost, created_at=created_at,
            model=model, context=context_array(context), user=user, is_default=is_default,
            feedback_id=fid,
        )  # fmt: skip
        return FeedbackOutcome(record, False)


_DECISION_COLUMNS = (
    'id, "user", created_at, model, context, scores, propensity, estimated_cost, policy, '
    "policy_version, embedder, prior_id, reason, expires_at"
)
_SQL_MODEL = "SELECT (SELECT status FROM models WHERE name = :m), EXISTS (SELECT 1 FROM models)"
_SQL_DECISION = (
    f"INSERT INTO decisions ({_DECISION_COLUMNS}, reserved) VALUES (:id, :user, :created_at, "
    ":model, :context, :scores, :propensity, :estimated_cost, :policy, :policy_version, "
    ":embedder, :prior_id, :reason, :expires_at, :reserved)"
)
_SQL_DECISION_PG = _SQL_DECISION.replace(":scores", "CAST(:scores AS JSON)")
_SQL_GET = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE id = :id"
_FEEDBACK_COLUMNS = 'decision_id, reward, cost, created_at, model, context, "user", is_default, id'
_SQL_FEEDBACK_FOR = f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE decision_id = :d"
_SQL_FEEDBACK_SINCE = f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE id > :after ORDER BY id"
_SQL_DECISION_FEEDBACK = (
    'SELECT d."user", d.model, d.context, d.reserved, f.decision_id, f.reward, f.cost, '
    'f.created_at, f.model, f.context, f."user", f.is_default, f.id FROM decisions d '
    "LEFT JOIN feedback f ON f.decision_id = d.id WHERE d.id = :d"
)
_SQL_INSERT_FEEDBACK = (
    'INSERT INTO feedback (decision_id, "user", model, context, reward, cost, created_at, '
    "is_default) VALUES (:d, :user, :model, :context, :reward, :cost, :t, :default) "
    "RETURNING id"
)


def _decision_of(r: Any) -> DecisionRecord:
    """A ``DecisionRecord`` from a row of ``_DECISION_COLUMNS``."""
    scores = r[5]
    if isinstance(scores, str | bytes):
        scores = json.loads(scores)
    return DecisionRecord(
        decision_id=r[0],
        user=r[1],
        created_at=float(r[2]),
        model=r[3],
        context=context_array(r[4]),
        scores=dict(scores or {}),
        propensity=math.nan if r[6] is None else float(r[6]),
        estimated_cost=float(r[7]),
        policy=r[8],
        policy_version=int(r[9]),
        embedder=r[10],
        prior_id=r[11],
        reason=r[12],
        expires_at=None if r[13] is None else float(r[13]),
    )


def _feedback_of(r: Any) -> FeedbackRecord:
    """A ``FeedbackRecord`` from a row of ``_FEEDBACK_COLUMNS``."""
    return FeedbackRecord(
        decision_id=r[0],
        reward=None if r[1] is None else float(r[1]),
        cost=float(r[2]),
        created_at=float(r[3]),
        model=r[4],
        context=context_array(r[5]),
        user=r[6],
        is_default=bool(r[7]),
        feedback_id=int(r[8]),
    )


def _decision(row: DecisionRow) -> DecisionRecord:
    return DecisionRecord(
        decision_id=row.id,
        user=row.user,
        created_at=float(row.created_at),
        model=row.model,
        context=context_array(row.context),
        scores=dict(row.scores or {}),
        propensity=math.nan if row.propensity is None else float(row.propensity),
        estimated_cost=float(row.estimated_cost),
        policy=row.policy,
        policy_version=int(row.policy_version),
        embedder=row.embedder,
        prior_id=row.prior_id,
        reason=row.reason,
        expires_at=None if row.expires_at is None else float(row.expires_at),
    )


def _feedback(row: FeedbackRow) -> FeedbackRecord:
    return FeedbackRecord(
        decision_id=row.decision_id,
        reward=None if row.reward is None else float(row.reward),
        cost=float(row.cost),
        created_at=float(row.created_at),
        model=row.model,
        context=context_array(row.context),
        user=row.user,
        is_default=bool(row.is_default),
        feedback_id=int(row.id),
    )


__all__ = ["FEEDBACK_CHANNEL", "SqlDecisionLog"]
