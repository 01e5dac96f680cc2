"""Maintenance of the router's store: ``status`` (schema revision, row counts) and ``prune``.

``prune(engine, older_than)`` deletes history older than ``older_than`` seconds but never
what the router still needs:

- the latest snapshot whose checksum matches, and every feedback logged after it (the
  learned state is that snapshot plus that feedback: it still rebuilds exactly);
- decisions still waiting for feedback (pending: feedback may come, or the wait time may
  expire and settle them), and the open reservations of the ledger;
- ledger journal entries inside any rolling budget's window (a rolling spend is their sum).

Everything else older than the cutoff goes: decisions with their feedback folded into the
kept snapshot, closed reservations, journal entries, older snapshots. One transaction.

>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> prune(stores.engine, 30 * 86_400)["decisions"]
0
>>> stores.close()
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select

from bandit_router.errors import InvalidInputError
from bandit_router.storage.migrate import current_revisions, head_revisions
from bandit_router.storage.models import (
    DecisionRow,
    FeedbackRow,
    LedgerAccount,
    LedgerEntry,
    LedgerReservation,
    PolicySnapshot,
)
from bandit_router.storage.snapshots import checksum
from bandit_router.storage.transactions import Sessions

#: the tables ``status`` counts, in the order it prints them
COUNTED_TABLES = (
    "models",
    "users",
    "api_keys",
    "decisions",
    "feedback",
    "ledger_accounts",
    "ledger_reservations",
    "ledger_entries",
    "policy_snapshots",
    "runs",
    "run_steps",
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` (or a bare number of seconds).

    >>> parse_duration("30d"), parse_duration("1.5h"), parse_duration("45")
    (2592000.0, 5400.0, 45.0)
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([smhdw]?)\s*", str(text))
    if m is None:
        raise InvalidInputError(
            f"cannot read the duration {text!r}; write a number and a unit: 30d, 12h, 90m, "
            "3600s or 2w."
        )
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def status(engine: Engine) -> dict[str, Any]:
    """The schema revision of the database, the head this code ships, and row counts (None
    for a table that does not exist yet)."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        current = current_revisions(conn)
        tables = set(inspect(conn).get_table_names())
        counts = {
            t: (
                conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                if t in tables
                else None
            )
            for t in COUNTED_TABLES
        }
    heads = head_revisions()
    return {
        "current": list(current),
        "head": list(heads),
        "up_to_date": set(current) == set(heads),
        "counts": counts,
    }


def _latest_valid_snapshot(s) -> tuple[int, int] | None:
    """(id, last_feedback_id) of the newest snapshot whose checksum matches."""
    for sid in s.execute(select(PolicySnapshot.id).order_by(PolicySnapshot.id.desc())).scalars():
        row = s.get(PolicySnapshot, sid)
        if checksum(row.blob) == row.sha256:
            return int(row.id), int(row.last_feedback_id)
    return None


def prune(
    engine: Engine, older_than: float, *, now: float | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Delete what is older than ``older_than`` seconds and no longer needed (see the module
    docstring); returns the number of rows deleted (or that would be, ``dry_run``) per table."""
    older_than = float(older_than)
    if not (older_than >= 0 and math.isfinite(older_than)):
        raise InvalidInputError(f"--older-than must be a duration >= 0, got {older_than}.")
    now = time.time() if now is None else float(now)
    cutoff = now - older_than
    sessions = Sessions(engine)
    out: dict[str, int] = {}
    with sessions.write() as s:
        kept = _latest_valid_snapshot(s)
        # feedback folded into the kept snapshot (none without a snapshot: all of it rebuilds)
        folded = -1 if kept is None else kept[1]
        old_fb = select(FeedbackRow.id, FeedbackRow.decision_id).where(
            FeedbackRow.id <= folded, FeedbackRow.created_at < cutoff
        )
        old_decisions = (
            select(DecisionRow.id)
            .join(FeedbackRow, FeedbackRow.decision_id == DecisionRow.id)
            .where(
                FeedbackRow.id <= folded,
                FeedbackRow.created_at < cutoff,
                DecisionRow.created_at < cutoff,
            )
        )
        decision_ids = list(s.execute(old_decisions).scalars())
        going = set(decision_ids)
        fb_ids = [fid for fid, did in s.execute(old_fb).all() if did in going]
        # closed reservations (never an open one), and expired ones whose decision has
        # feedback or goes now (a late settlement can no longer come for those)
        with_feedback = select(FeedbackRow.decision_id)
        closed = select(LedgerReservation.decision_id).where(
            LedgerReservation.closed_at < cutoff,
            (LedgerReservation.state.in_(("settled", "released")))
            | (
                (LedgerReservation.state == "expired")
                & LedgerReservation.decision_id.in_(with_feedback)
            ),
        )
        reservation_ids = set(s.execute(closed).scalars())
        # journal entries: older than the cutoff and outside every rolling window
        widest = s.execute(
            select(func.max(LedgerAccount.window_seconds)).where(
                LedgerAccount.period_kind == "rolling"
            )
        ).scalar_one()
        entries_before = cutoff if widest is None else min(cutoff, now - float(widest))
        entry_filter = and_(
            LedgerEntry.created_at < entries_before,
            (LedgerEntry.decision_id.is_(None))
            | LedgerEntry.decision_id.not_in(
                select(LedgerReservation.decision_id).where(LedgerReservation.state == "open")
            ),
        )
        snap_filter = PolicySnapshot.created_at < cutoff
        if kept is not None:
            snap_filter = and_(snap_filter, PolicySnapshot.id != kept[0])
        out["feedback"] = len(fb_ids)
        out["decisions"] = len(decision_ids)
        out["ledger_reservations"] = len(reservation_ids)
        out["ledger_entries"] = s.execute(
            select(func.count()).select_from(LedgerEntry).where(entry_filter)
        ).scalar_one()
        out["policy_snapshots"] = s.execute(
            select(func.count()).select_from(PolicySnapshot).where(snap_filter)
        ).scalar_one()
        if dry_run:
            return out
        for chunk in _chunks(fb_ids):
            s.execute(delete(FeedbackRow).where(FeedbackRow.id.in_(chunk)))
        for chunk in _chunks(decision_ids):
            s.execute(delete(DecisionRow).where(DecisionRow.id.in_(chunk)))
        for chunk in _chunks(sorted(reservation_ids)):
            s.execute(delete(LedgerReservation).where(LedgerReservation.decision_id.in_(chunk)))
        s.execute(
            delete(LedgerEntry).where(entry_filter).execution_options(synchronize_session=False)
        )
        s.execute(
            delete(PolicySnapshot).where(snap_filter).execution_options(synchronize_session=False)
        )
    return out


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = ["COUNTED_TABLES", "parse_duration", "prune", "status"]
