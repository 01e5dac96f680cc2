"""The stored catalogue: ``SqlModelStore`` implements ``bandit_router.stores.ModelStore``.

>>> from bandit_router.catalogue import ModelSpec
>>> from bandit_router.stores import ModelRecord
>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> stores.models.put(ModelRecord(ModelSpec("tiny", 0.1, 0.4)))
>>> stores.models.retire("tiny")
>>> [(r.spec.name, r.status) for r in stores.models.list()]
[('tiny', 'retired')]
>>> stores.close()
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select, text

from bandit_router.catalogue import ModelSpec
from bandit_router.errors import InvalidInputError
from bandit_router.storage.models import MODEL_STATUSES, CatalogueModel
from bandit_router.storage.models.base import utcnow
from bandit_router.storage.transactions import PG_DIRECTORY_LOCK, Sessions
from bandit_router.stores import ModelRecord


class SqlModelStore:
    """Models, prices and status in the ``models`` table (one transaction per call)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sessions = Sessions(engine)

    def list(self, status: str | None = None) -> list[ModelRecord]:
        """Every stored model (or those with ``status``), in the order they were added."""
        q = select(CatalogueModel).order_by(CatalogueModel.position, CatalogueModel.name)
        if status is not None:
            q = q.where(CatalogueModel.status == status)
        with self.sessions.read() as s:
            return [_record(r) for r in s.execute(q).scalars()]

    def get(self, name: str) -> ModelRecord | None:
        with self.sessions.read() as s:
            row = s.get(CatalogueModel, str(name))
            return None if row is None else _record(row)

    def put(self, record: ModelRecord) -> None:
        """Add a model or replace its prices and status."""
        if not isinstance(record, ModelRecord):
            raise InvalidInputError(f"expected a ModelRecord, got {type(record).__name__}.")
        if record.status not in MODEL_STATUSES:
            raise InvalidInputError(
                f"a model's status is one of {', '.join(MODEL_STATUSES)}, got {record.status!r}."
            )
        spec = record.spec
        if len(spec.name) > 200:
            raise InvalidInputError(f"a model name has at most 200 characters: {spec.name[:40]!r}")
        with self.sessions.write() as s:
            if self.sessions.postgres:  # processes adding the same model at start-up
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_DIRECTORY_LOCK})
            row = s.get(CatalogueModel, spec.name)
            if row is None:
                last = s.execute(select(func.max(CatalogueModel.position))).scalar_one()
                row = CatalogueModel(name=spec.name, position=(last or 0) + 1)
            row.input_price_per_mtok = spec.input_price_per_mtok
            row.output_price_per_mtok = spec.output_price_per_mtok
            row.price_per_call = spec.price_per_call
            row.expected_output_tokens = spec.expected_output_tokens
            row.status = record.status
            row.updated_at = utcnow()
            s.add(row)

    def retire(self, name: str) -> None:
        """Stop routing to ``name`` (its history stays)."""
        record = self.get(name)
        if record is None:
            raise InvalidInputError(
                f"no model {name!r} in the catalogue; see them with `bandit-router models list`."
            )
        self.put(ModelRecord(record.spec, "retired"))


def _record(row: CatalogueModel) -> ModelRecord:
    spec = ModelSpec(
        row.name,
        float(row.input_price_per_mtok),
        float(row.output_price_per_mtok),
        float(row.price_per_call),
        float(row.expected_output_tokens),
    )
    return ModelRecord(spec, row.status)


__all__ = ["SqlModelStore"]
