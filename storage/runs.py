"""The repository of simulation runs: metadata in ``runs``, per-step curves in ``run_steps``.

>>> import pandas as pd
>>> from bandit_router.storage import open_store
>>> store = open_store("sqlite://")
>>> run_id = store.runs.create("simulate", "linucb", "synthetic-linear", seed=0)
>>> steps = pd.DataFrame({"step": [0, 1], "reward": [1.0, 0.0], "cost": [0.01, 0.02],
...                       "oracle_reward": [1.0, 1.0], "spend": [0.01, 0.03],
...                       "cumulative_regret": [0.0, 1.0], "model": ["a", "b"]})
>>> store.runs.add_steps(run_id, steps)
2
>>> store.runs.finish(run_id, {"mean_reward": 0.5})
>>> store.runs.get(run_id).status, store.runs.get(run_id).n_steps
('done', 2)
>>> store.runs.steps([run_id])["cumulative_regret"].tolist()
[0.0, 1.0]
>>> store.close()
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bandit_router.storage.engine import SQLITE_BEGIN_MODE
from bandit_router.storage.errors import InvalidRunDataError, StorageError, UnknownRunError
from bandit_router.storage.models import RUN_KINDS, RUN_STATUSES, Run, RunStep

#: Columns ``add_steps`` needs; ``budgeted_regret`` may be absent or NaN.
STEP_COLUMNS = ("step", "reward", "cost", "oracle_reward", "spend", "cumulative_regret", "model")
OPTIONAL_STEP_COLUMNS = ("budgeted_regret",)
_FLOAT_COLUMNS = ("reward", "cost", "oracle_reward", "spend", "cumulative_regret")
_MONEY_COLUMNS = ("cost", "spend")
#: Columns of the DataFrame ``steps`` returns, in order.
STEPS_FRAME_COLUMNS = ("run_id", "step", *STEP_COLUMNS[1:-1], "budgeted_regret", "model")
_LIST_HINT = "see the valid ids with `bandit-router runs list`"


@dataclass(frozen=True)
class RunRecord:
    """A run as read back: its metadata, its summary and how many steps are stored."""

    id: int
    created_at: datetime
    kind: str
    policy: str
    dataset: str
    seed: int | None
    status: str
    dataset_fingerprint: str | None = None
    budget: float | None = None
    budget_fraction: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    finished_at: datetime | None = None
    n_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("created_at", "finished_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays unwrapped, NaN and infinity as None.

    PostgreSQL's JSON type rejects NaN, so every JSON column goes through this.

    >>> to_jsonable({"a": np.float64("nan"), "b": np.arange(2), 3: (np.int64(4), None)})
    {'a': None, 'b': [0, 1], '3': [4, None]}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _aware(ts: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything is written in UTC.
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def _optional_float(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InvalidRunDataError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(f) or f < 0:
        raise InvalidRunDataError(f"{name} must be a finite number >= 0, got {value!r}")
    return f


def _run_ids(run_ids: int | Iterable[int]) -> list[int]:
    if isinstance(run_ids, (numbers.Integral, str)):
        run_ids = [run_ids]  # type: ignore[list-item]
    out: list[int] = []
    for rid in run_ids:  # type: ignore[union-attr]
        try:
            out.append(int(rid))
        except (TypeError, ValueError):
            raise UnknownRunError(f"{rid!r} is not a run id (an integer); {_LIST_HINT}") from None
    return list(dict.fromkeys(out))


class RunRepository:
    """Create, fill, finish, list, read and delete runs. Each call is one transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # On SQLite, writers take the write lock at BEGIN (waiting up to the busy timeout)
        # instead of failing when a read snapshot cannot be upgraded: many simulator
        # processes write to one file at once.
        self._write_sessions = sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"}), expire_on_commit=False
        )

    # -- writing -------------------------------------------------------------------------

    def create(
        self,
        kind: str,
        policy: str,
        dataset: str,
        seed: int | None,
        budget: float | None = None,
        budget_fraction: float | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        dataset_fingerprint: str | None = None,
        notes: str | None = None,
    ) -> int:
        """A new run with status "running"; returns its id.

        ``kind`` is one of ``replay``, ``simulate``, ``evaluate``; ``budget`` is USD,
        ``budget_fraction`` the budget as a share of always using the most expensive model;
        ``params`` any JSON-able settings (numpy values are converted, NaN becomes null).
        """
        if kind not in RUN_KINDS:
            raise InvalidRunDataError(
                f"run kind must be one of {', '.join(RUN_KINDS)}; got {kind!r}"
            )
        for name, value in (("policy", policy), ("dataset", dataset)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidRunDataError(f"{name} must be a non-empty string, got {value!r}")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise InvalidRunDataError(f"seed must be an integer or None, got {seed!r}")
            seed = int(seed)
        run = Run(
            kind=kind,
            policy=policy.strip(),
            dataset=str(dataset).strip(),
            dataset_fingerprint=dataset_fingerprint,
            seed=seed,
            budget=_optional_float(budget, "budget"),
            budget_fraction=_optional_float(budget_fraction, "budget_fraction"),
            params=to_jsonable(dict(params or {})),
            status="running",
            notes=notes,
        )
        with self._write() as session:
            session.add(run)
            session.flush()
            return int(run.id)

    def add_steps(self, run_id: int, steps: pd.DataFrame) -> int:
        """Append the per-step curve of a run in one transaction; returns the rows written.

        ``steps`` has the columns ``step, reward, cost, oracle_reward, spend,
        cumulative_regret, model`` (None where no model was called) and optionally
        ``budgeted_regret`` (NaN -> null). Extra columns are ignored. Either every row is
        written or none (a duplicate step, a NaN reward or a negative cost leaves the run's
        steps as they were).
        """
        run_id = _run_ids(run_id)[0]
        records = self._step_records(run_id, steps)
        with self._write() as session:
            self._require(session, [run_id])
            if records:
                try:
                    session.execute(RunStep.__table__.insert(), records)
                except IntegrityError as exc:
                    raise InvalidRunDataError(
                        f"cannot store the steps of run {run_id}: a step number is already "
                        f"stored or repeated ({type(exc.orig).__name__}); nothing was written"
                    ) from exc
        return len(records)

    def finish(
        self,
        run_id: int,
        summary: Mapping[str, Any],
        status: str = "done",
        *,
        notes: str | None = None,
    ) -> None:
        """Store the run's summary metrics and mark it ``done`` (or ``failed``)."""
        if status not in RUN_STATUSES:
            raise InvalidRunDataError(
                f"status must be one of {', '.join(RUN_STATUSES)}; got {status!r}"
            )
        values: dict[str, Any] = {
            "summary": to_jsonable(dict(summary or {})),
            "status": status,
            "finished_at": datetime.now(UTC),
        }
        if notes is not None:
            values["notes"] = notes
        rid = _run_ids(run_id)[0]
        with self._write() as session:
            self._require(session, [rid])
            session.execute(update(Run).where(Run.id == rid).values(**values))

    def delete(self, run_id: int) -> None:
        """Delete a run and its steps."""
        rid = _run_ids(run_id)[0]
        with self._write() as session:
            self._require(session, [rid])
            session.execute(delete(RunStep).where(RunStep.run_id == rid))
            session.execute(delete(Run).where(Run.id == rid))

    # -- reading -------------------------------------------------------------------------

    def list(self, limit: int | None = 50, kind: str | None = None) -> list[RunRecord]:
        """The newest runs first (at most ``limit``; None for all), optionally of one kind."""
        if kind is not None and kind not in RUN_KINDS:
            raise InvalidRunDataError(
                f"run kind must be one of {', '.join(RUN_KINDS)}; got {kind!r}"
            )
        query = select(Run).order_by(Run.id.desc())
        if kind is not None:
            query = query.where(Run.kind == kind)
        if limit is not None:
            query = query.limit(max(int(limit), 0))
        with self._read() as session:
            runs = list(session.scalars(query))
            counts = self._counts(session, [r.id for r in runs])
        return [self._record(r, counts.get(r.id, 0)) for r in runs]

    def get(self, run_id: int) -> RunRecord:
        """One run; :class:`UnknownRunError` if there is none with this id."""
        rid = _run_ids(run_id)[0]
        with self._read() as session:
            run = session.get(Run, rid)
            if run is None:
                raise self._unknown(session, [rid])
            counts = self._counts(session, [rid])
        return self._record(run, counts.get(rid, 0))

    def count(self, kind: str | None = None) -> int:
        """How many runs are stored."""
        query = select(func.count()).select_from(Run)
        if kind is not None:
            query = query.where(Run.kind == kind)
        with self._read() as session:
            return int(session.scalar(query) or 0)

    def steps(self, run_ids: int | Iterable[int]) -> pd.DataFrame:
        """The per-step curves of the given runs, one row per (run, step), sorted by both.

        Columns: ``run_id, step, reward, cost, oracle_reward, spend, cumulative_regret,
        budgeted_regret, model`` (``budgeted_regret`` is NaN where it was not stored).
        """
        ids = _run_ids(run_ids)
        cols = [getattr(RunStep, c) for c in STEPS_FRAME_COLUMNS]
        with self._read() as session:
            self._require(session, ids)
            frames = []
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start : chunk_start + 500]
                rows = session.execute(
                    select(*cols)
                    .where(RunStep.run_id.in_(chunk))
                    .order_by(RunStep.run_id, RunStep.step)
                ).all()
                frames.append(pd.DataFrame.from_records(rows, columns=list(STEPS_FRAME_COLUMNS)))
        df = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=list(STEPS_FRAME_COLUMNS))
        )
        df = df.astype(
            {"run_id": "int64", "step": "int64", **{c: "float64" for c in _FLOAT_COLUMNS}}
        )
        df["budgeted_regret"] = pd.to_numeric(df["budgeted_regret"], errors="coerce").astype(
            "float64"
        )
        df["model"] = df["model"].astype(object)
        return df

    # -- helpers -------------------------------------------------------------------------

    def _write(self) -> _Transaction:
        return _Transaction(self._write_sessions)

    def _read(self) -> _Transaction:
        return _Transaction(self._sessions)

    def _counts(self, session: Session, ids: Sequence[int]) -> dict[int, int]:
        if not ids:
            return {}
        rows = session.execute(
            select(RunStep.run_id, func.count())
            .where(RunStep.run_id.in_(list(ids)))
            .group_by(RunStep.run_id)
        ).all()
        return {int(rid): int(n) for rid, n in rows}

    def _require(self, session: Session, ids: Sequence[int]) -> None:
        found = set(session.scalars(select(Run.id).where(Run.id.in_(list(ids)))))
        missing = [rid for rid in ids if rid not in found]
        if missing:
            raise self._unknown(session, missing)

    def _unknown(self, session: Session, missing: Sequence[int]) -> UnknownRunError:
        total = session.scalar(select(func.count()).select_from(Run)) or 0
        what = "run id" if len(missing) == 1 else "run ids"
        listed = ", ".join(str(m) for m in missing)
        if total == 0:
            return UnknownRunError(
                f"no {what} {listed}: the database has no runs yet; create some with "
                "`bandit-router replay` or `bandit-router simulate`"
            )
        return UnknownRunError(f"no {what} {listed} in the database; {_LIST_HINT}")

    @staticmethod
    def _record(run: Run, n_steps: int) -> RunRecord:
        return RunRecord(
            id=int(run.id),
            created_at=_aware(run.created_at),
            kind=run.kind,
            policy=run.policy,
            dataset=run.dataset,
            seed=None if run.seed is None else int(run.seed),
            status=run.status,
            dataset_fingerprint=run.dataset_fingerprint,
            budget=None if run.budget is None else float(run.budget),
            budget_fraction=None if run.budget_fraction is None else float(run.budget_fraction),
            params=dict(run.params or {}),
            summary=dict(run.summary or {}),
            notes=run.notes,
            finished_at=_aware(run.finished_at),
            n_steps=int(n_steps),
        )

    @staticmethod
    def _step_records(run_id: int, steps: pd.DataFrame) -> list[dict[str, Any]]:
        if not isinstance(steps, pd.DataFrame):
            raise InvalidRunDataError(
                f"steps must be a pandas DataFrame, got {type(steps).__name__}"
            )
        missing = [c for c in STEP_COLUMNS if c not in steps.columns]
        if missing:
            raise InvalidRunDataError(
                f"the steps of run {run_id} lack the column(s) {', '.join(missing)}; "
                f"needed: {', '.join(STEP_COLUMNS)} (optional: budgeted_regret)"
            )
        n = len(steps)
        data: dict[str, Any] = {"run_id": np.full(n, run_id, dtype=np.int64)}
        try:
            step = pd.to_numeric(steps["step"], errors="raise").to_numpy()
        except (TypeError, ValueError):
            raise InvalidRunDataError(f"step of run {run_id} must be integers") from None
        if n and (not np.all(np.isfinite(step)) or not np.all(step == np.round(step))):
            raise InvalidRunDataError(f"step of run {run_id} must be integers")
        data["step"] = step.astype(np.int64)
        for col in _FLOAT_COLUMNS:
            try:
                values = pd.to_numeric(steps[col], errors="raise").to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidRunDataError(f"{col} of run {run_id} must be numbers") from None
            bad = ~np.isfinite(values)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise InvalidRunDataError(
                    f"{col} of run {run_id} has {int(bad.sum())} NaN or infinite value(s) "
                    f"(first at row {first}); nothing was written"
                )
            if col in _MONEY_COLUMNS and (values < 0).any():
                raise InvalidRunDataError(f"{col} of run {run_id} must be >= 0 (USD)")
            data[col] = values
        if "budgeted_regret" in steps.columns:
            br = pd.to_numeric(steps["budgeted_regret"], errors="coerce").to_numpy(dtype=np.float64)
            data["budgeted_regret"] = br
        models = steps["model"]
        data["model"] = np.where(models.isna(), None, models.astype(str)).astype(object)
        frame = pd.DataFrame(data)
        records = frame.to_dict("records")
        if "budgeted_regret" in frame.columns:
            for rec in records:
                v = rec["budgeted_regret"]
                if v is None or not math.isfinite(v):
                    rec["budgeted_regret"] = None
        else:
            for rec in records:
                rec["budgeted_regret"] = None
        return records


class _Transaction:
    """``with`` block: a session whose work commits at the end or rolls back on any error."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        self.session: Session | None = None

    def __enter__(self) -> Session:
        self.session = self._sessions()
        return self.session

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.session is not None
        try:
            if exc_type is None:
                try:
                    self.session.commit()
                except SQLAlchemyError as err:
                    self.session.rollback()
                    raise StorageError(f"cannot commit to the database: {err}") from err
            else:
                self.session.rollback()
        finally:
            self.session.close()
        if exc is not None and isinstance(exc, SQLAlchemyError):
            raise StorageError(
                f"database error: {type(exc).__name__}: {exc.args[0] if exc.args else exc}"
            ) from exc
