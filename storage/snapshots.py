"""Policy snapshots: ``SqlSnapshotStore`` implements ``bandit_router.stores.SnapshotStore``.

Each snapshot is a policy state blob, its SHA-256 (checked on every read), the id of the
last feedback folded into it and a JSON ``meta``. ``latest()`` returns the newest snapshot
whose checksum matches: a corrupted one (a truncated write, a damaged disk) is reported
with a ``CorruptSnapshotWarning`` naming it and the previous snapshot is used, so a
restart replays a little more feedback instead of failing. ``get(id)`` of a corrupted
snapshot raises ``StateError``.

Only the newest ``keep`` snapshots (3) are kept: each save deletes the older ones in its
own transaction. Nothing reads them but ``latest()``'s fallback past a corrupted blob, and
a policy state is large (0.4 MB for the demo prior's 65-d contexts and five models, 21 MB
at 513-d without a prior): snapshotting every 100 feedback, a database kept every one
would grow by 3.4-210 KB per feedback, more than the decisions themselves.

>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> first = stores.snapshots.save(b"state-1", 10, {"policy": "linucb"})
>>> stores.snapshots.save(b"state-2", 25, {}).last_feedback_id
25
>>> stores.snapshots.latest().blob
b'state-2'
>>> for n in range(3, 6):
...     _ = stores.snapshots.save(f"state-{n}".encode(), 10 * n, {})
>>> stores.snapshots.count(), stores.snapshots.latest().blob
(3, b'state-5')
>>> stores.close()
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from typing import Any

from sqlalchemy import Engine, delete, func, select

from bandit_router.budget.clock import Clock
from bandit_router.errors import InvalidInputError, StateError
from bandit_router.storage.models import PolicySnapshot
from bandit_router.storage.runs import to_jsonable
from bandit_router.storage.transactions import Sessions
from bandit_router.stores import Snapshot

log = logging.getLogger(__name__)


class CorruptSnapshotWarning(UserWarning):
    """A stored snapshot does not match its checksum; an older one is used instead."""


def checksum(blob: bytes) -> str:
    """The SHA-256 of ``blob`` as 64 hex digits."""
    return hashlib.sha256(blob).hexdigest()


class SqlSnapshotStore:
    """Versioned, checksummed policy snapshots in the ``policy_snapshots`` table."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time, keep: int | None = 3):
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise InvalidInputError(
                f"keep must be a number of snapshots >= 1 (None: keep all), got {keep!r}."
            )
        self.engine = engine
        self.sessions = Sessions(engine)
        self.clock = clock
        #: how many of the newest snapshots are kept (None: every one)
        self.keep = keep

    def save(
        self, blob: bytes, last_feedback_id: int, meta: dict[str, Any] | None = None
    ) -> Snapshot:
        """Store ``blob`` with the id of the last feedback folded into it."""
        if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) == 0:
            raise InvalidInputError("a snapshot is a non-empty bytes blob (Policy.get_state()).")
        last = int(last_feedback_id)
        if last < 0:
            raise InvalidInputError(f"last_feedback_id must be >= 0, got {last_feedback_id}.")
        blob = bytes(blob)
        row = PolicySnapshot(
            blob=blob,
            sha256=checksum(blob),
            last_feedback_id=last,
            created_at=float(self.clock()),
            meta=to_jsonable(dict(meta or {})),
        )
        with self.sessions.write() as s:
            s.add(row)
            s.flush()
            if self.keep is not None:  # the newest ``keep`` stay, this one among them
                oldest_kept = s.execute(
                    select(PolicySnapshot.id)
                    .order_by(PolicySnapshot.id.desc())
                    .offset(self.keep - 1)
                    .limit(1)
                ).scalar()
                if oldest_kept is not None:
                    s.execute(
                        delete(PolicySnapshot)
                        .where(PolicySnapshot.id < oldest_kept)
                        .execution_options(synchronize_session=False)
                    )
            return _snapshot(row)

    def latest(self) -> Snapshot | None:
        """The newest snapshot whose checksum matches (older ones when it does not)."""
        with self.sessions.read() as s:
            ids = s.execute(select(PolicySnapshot.id).order_by(PolicySnapshot.id.desc())).scalars()
            for sid in ids:
                row = s.get(PolicySnapshot, sid)
                if row is None:  # deleted by a newer save meanwhile
                    continue
                if checksum(row.blob) == row.sha256:
                    return _snapshot(row)
                message = (
                    f"policy snapshot #{sid} is corrupted (its SHA-256 does not match); "
                    "using the previous snapshot and replaying the feedback after it. Remove "
                    "it with `bandit-router db prune` once a newer snapshot is written."
                )
                log.warning(message)
                warnings.warn(message, CorruptSnapshotWarning, stacklevel=2)
        return None

    def get(self, snapshot_id: int) -> Snapshot:
        """One snapshot by id; ``StateError`` if it is missing or corrupted."""
        with self.sessions.read() as s:
            row = s.get(PolicySnapshot, int(snapshot_id))
            if row is None:
                raise StateError(f"no policy snapshot #{snapshot_id}.")
            if checksum(row.blob) != row.sha256:
                raise StateError(
                    f"policy snapshot #{snapshot_id} is corrupted (its SHA-256 does not match "
                    "the stored checksum); use an older snapshot."
                )
            return _snapshot(row)

    def count(self) -> int:
        with self.sessions.read() as s:
            return int(s.execute(select(func.count()).select_from(PolicySnapshot)).scalar_one())


def _snapshot(row: PolicySnapshot) -> Snapshot:
    return Snapshot(
        snapshot_id=int(row.id),
        blob=bytes(row.blob),
        last_feedback_id=int(row.last_feedback_id),
        created_at=float(row.created_at),
        meta=dict(row.meta or {}),
    )


__all__ = ["CorruptSnapshotWarning", "SqlSnapshotStore", "checksum"]
