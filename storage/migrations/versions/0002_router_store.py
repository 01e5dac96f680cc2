"""router store: models, users, api_keys, decisions, feedback, ledger, policy_snapshots

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Times of the decision log, the ledger and the snapshots are Unix seconds (float64), as the
core's records carry them; money is Numeric(20, 12); contexts are little-endian float64
bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 12, asdecimal=False)
#: 64-bit sequence on PostgreSQL, the rowid on SQLite
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(length=200)
DECISION_ID = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", NAME, nullable=False),
        sa.Column("input_price_per_mtok", MONEY, nullable=False),
        sa.Column("output_price_per_mtok", MONEY, nullable=False),
        sa.Column("price_per_call", MONEY, nullable=False),
        sa.Column("expected_output_tokens", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_models")),
    )
    op.create_table(
        "users",
        sa.Column("name", NAME, nullable=False),
        sa.Column("budget_usd", MONEY, nullable=True),
        sa.Column("period_kind", sa.String(length=16), nullable=True),
        sa.Column("window_seconds", sa.Double(), nullable=True),
        sa.Column("expected_queries", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user", NAME, nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("kdf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user"], ["users.name"], name=op.f("fk_api_keys_user_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_user"), "api_keys", ["user"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("id", DECISION_ID, nullable=False),
        sa.Column("user", NAME, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("context", sa.LargeBinary(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("propensity", sa.Double(), nullable=True),
        sa.Column("estimated_cost", MONEY, nullable=False),
        sa.Column("policy", NAME, nullable=False),
        sa.Column("policy_version", sa.BigInteger(), nullable=False),
        sa.Column("embedder", NAME, nullable=False),
        sa.Column("prior_id", NAME, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index("ix_decisions_created_at", "decisions", ["created_at"], unique=False)
    op.create_index("ix_decisions_expires_at", "decisions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_decisions_user"), "decisions", ["user"], unique=False)
    op.create_table(
        "feedback",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("decision_id", DECISION_ID, nullable=False),
        sa.Column("user", NAME, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("context", sa.LargeBinary(), nullable=False),
        sa.Column("reward", sa.Double(), nullable=True),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_feedback_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        # at most one feedback per decision
        sa.UniqueConstraint("decision_id", name=op.f("uq_feedback_decision_id")),
    )
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"], unique=False)
    op.create_table(
        "ledger_accounts",
        sa.Column("user", NAME, nullable=False),
        sa.Column("budget_usd", MONEY, nullable=False),
        sa.Column("period_kind", sa.String(length=16), nullable=False),
        sa.Column("window_seconds", sa.Double(), nullable=True),
        sa.Column("expected_queries", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Double(), nullable=True),
        sa.Column("period_end", sa.Double(), nullable=True),
        sa.Column("spent", MONEY, nullable=False),
        sa.Column("reserved", MONEY, nullable=False),
        sa.Column("overrun", MONEY, nullable=False),
        sa.Column("n_decisions", sa.BigInteger(), nullable=False),
        sa.Column("previous_decisions", sa.BigInteger(), nullable=True),
        sa.Column("lifetime_spent", MONEY, nullable=False),
        sa.Column("since_entry", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_reservations",
        sa.Column("decision_id", DECISION_ID, nullable=False),
        sa.Column("user", NAME, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("period_start", sa.Double(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actual", MONEY, nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("closed_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_ledger_reservations")),
    )
    op.create_index(
        "ix_ledger_reservations_state_created",
        "ledger_reservations",
        ["state", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_reservations_user"), "ledger_reservations", ["user"], unique=False
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("decision_id", DECISION_ID, nullable=True),
        sa.Column("user", NAME, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("period_start", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("charge", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        op.f("ix_ledger_entries_decision_id"), "ledger_entries", ["decision_id"], unique=False
    )
    op.create_index(
        "ix_ledger_entries_user_created", "ledger_entries", ["user", "created_at"], unique=False
    )
    op.create_table(
        "policy_snapshots",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("last_feedback_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("policy_snapshots")
    op.drop_index("ix_ledger_entries_user_created", table_name="ledger_entries")
    op.drop_index(op.f("ix_ledger_entries_decision_id"), table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_ledger_reservations_user"), table_name="ledger_reservations")
    op.drop_index("ix_ledger_reservations_state_created", table_name="ledger_reservations")
    op.drop_table("ledger_reservations")
    op.drop_table("ledger_accounts")
    op.drop_index(op.f("ix_feedback_created_at"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_decisions_user"), table_name="decisions")
    op.drop_index("ix_decisions_expires_at", table_name="decisions")
    op.drop_index("ix_decisions_created_at", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_api_keys_user"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("models")
