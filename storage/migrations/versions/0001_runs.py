"""runs and run_steps: simulation runs and their per-step curves

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 12, asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=200), nullable=False),
        sa.Column("dataset", sa.String(length=500), nullable=False),
        sa.Column("dataset_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("budget", MONEY, nullable=True),
        sa.Column("budget_fraction", sa.Double(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_kind"), "runs", ["kind"], unique=False)
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("reward", sa.Double(), nullable=False),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("oracle_reward", sa.Double(), nullable=False),
        sa.Column("spend", MONEY, nullable=False),
        sa.Column("cumulative_regret", sa.Double(), nullable=False),
        sa.Column("budgeted_regret", sa.Double(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_run_steps_run_id_runs"),
            ondelete="CASCADE",
        ),
        # The primary key (run_id, step) is the index every curve query uses.
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_run_steps")),
    )


def downgrade() -> None:
    op.drop_table("run_steps")
    op.drop_index(op.f("ix_runs_kind"), table_name="runs")
    op.drop_table("runs")
