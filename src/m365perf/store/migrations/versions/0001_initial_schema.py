"""Initial schema: register snapshot, targets, cycles, returns, approvals, timers, outbox, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written with plain SQLAlchemy types (not the application's decorators) so this revision
keeps meaning the same schema whatever later code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_ENUM = sa.String(32)
_WHEN = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "indicator",
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("name", _TEXT, nullable=False),
        sa.Column("unit", _ENUM, nullable=False),
        sa.Column("polarity", _ENUM, nullable=False),
        sa.Column("frequency", _ENUM, nullable=False),
        sa.Column("owner_id", _TEXT, nullable=True),
        sa.Column("owner_email", _TEXT, nullable=True),
        sa.Column("comparator", _TEXT, nullable=True),
        sa.Column("target_value", sa.Float(), nullable=True),
        sa.Column("tolerance_kind", _TEXT, nullable=True),
        sa.Column("tolerance_amount", sa.Float(), nullable=True),
        sa.Column("target_applies_from", _TEXT, nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        _id(),
        sa.Column("flow_id", _TEXT, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("snapshot_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_indicator"),
        sa.UniqueConstraint("flow_id", "indicator_key", name="uq_indicator_flow_id_indicator_key"),
    )
    op.create_index("ix_indicator_owner_id", "indicator", ["owner_id"])

    op.create_table(
        "indicator_target",
        _id(),
        sa.Column("flow_id", _TEXT, nullable=False),
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("applies_from", _TEXT, nullable=False),
        sa.Column("applies_from_start", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("tolerance_kind", _TEXT, nullable=True),
        sa.Column("tolerance_amount", sa.Float(), nullable=True),
        sa.Column("recorded_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_indicator_target"),
        sa.UniqueConstraint(
            "flow_id",
            "indicator_key",
            "applies_from_start",
            name="uq_indicator_target_flow_id_indicator_key_applies_from_start",
        ),
    )

    op.create_table(
        "cycle",
        _id(),
        sa.Column("flow_id", _TEXT, nullable=False),
        sa.Column("period", _TEXT, nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("frequency", _ENUM, nullable=False),
        sa.Column("opened_at", _WHEN, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", _ENUM, nullable=False),
        sa.Column("closed_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cycle"),
        sa.UniqueConstraint("flow_id", "period", name="uq_cycle_flow_id_period"),
    )
    op.create_index("ix_cycle_status", "cycle", ["status"])

    op.create_table(
        "indicator_return",
        _id(),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("owner_id", _TEXT, nullable=True),
        sa.Column("owner_email", _TEXT, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", _ENUM, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("raw_value", _TEXT, nullable=True),
        sa.Column("no_data_reason", _TEXT, nullable=True),
        sa.Column("commentary", _TEXT, nullable=True),
        sa.Column("rag", _ENUM, nullable=True),
        sa.Column("direction", _TEXT, nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("outlier_confirmed", sa.Boolean(), nullable=False),
        sa.Column("data_quality_flag", sa.Boolean(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("submitted_by", _TEXT, nullable=True),
        sa.Column("submitted_at", _WHEN, nullable=True),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("decided_by", _TEXT, nullable=True),
        sa.Column("decided_at", _WHEN, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"], ["cycle.id"], name="fk_indicator_return_cycle_id_cycle"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_indicator_return"),
        sa.UniqueConstraint(
            "cycle_id", "indicator_key", name="uq_indicator_return_cycle_id_indicator_key"
        ),
    )
    op.create_index(
        "ix_indicator_return_owner_id_status", "indicator_return", ["owner_id", "status"]
    )
    op.create_index("ix_indicator_return_status", "indicator_return", ["status"])

    op.create_table(
        "approval_step",
        _id(),
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("return_version", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("name", _TEXT, nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("any_of", sa.Boolean(), nullable=False),
        sa.Column("status", _ENUM, nullable=False),
        sa.Column("decided_by", _TEXT, nullable=True),
        sa.Column("decided_at", _WHEN, nullable=True),
        sa.Column("reason", _TEXT, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["indicator_return.id"],
            name="fk_approval_step_return_id_indicator_return",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approval_step"),
        sa.UniqueConstraint(
            "return_id",
            "return_version",
            "step_index",
            name="uq_approval_step_return_id_return_version_step_index",
        ),
    )

    op.create_table(
        "timer",
        _id(),
        sa.Column("kind", _TEXT, nullable=False),
        sa.Column("due_at", _WHEN, nullable=False),
        sa.Column("subject_type", _TEXT, nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedup_key", _TEXT, nullable=False),
        sa.Column("status", _ENUM, nullable=False),
        sa.Column("claimed_by", _TEXT, nullable=True),
        sa.Column("claimed_until", _WHEN, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timer"),
        sa.UniqueConstraint("dedup_key", name="uq_timer_dedup_key"),
    )
    op.create_index("ix_timer_status_due_at", "timer", ["status", "due_at"])
    op.create_index("ix_timer_subject_type_subject_id", "timer", ["subject_type", "subject_id"])

    op.create_table(
        "outbox",
        _id(),
        sa.Column("kind", _TEXT, nullable=False),
        sa.Column("budget", _TEXT, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedup_key", _TEXT, nullable=False),
        sa.Column("status", _ENUM, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _WHEN, nullable=False),
        sa.Column("claimed_by", _TEXT, nullable=True),
        sa.Column("claimed_until", _WHEN, nullable=True),
        sa.Column("last_error", _TEXT, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedup_key", name="uq_outbox_dedup_key"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_budget", "outbox", ["budget"])

    op.create_table(
        "audit_event",
        _id(),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("actor", _TEXT, nullable=False),
        sa.Column("action", _TEXT, nullable=False),
        sa.Column("subject_type", _TEXT, nullable=False),
        sa.Column("subject_id", _TEXT, nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_event"),
    )
    op.create_index("ix_audit_event_cycle_id_at", "audit_event", ["cycle_id", "at"])
    op.create_index(
        "ix_audit_event_subject_type_subject_id", "audit_event", ["subject_type", "subject_id"]
    )

    op.create_table(
        "conversation_ref",
        sa.Column("user_id", _TEXT, nullable=False),
        sa.Column("conversation_id", _TEXT, nullable=False),
        sa.Column("service_url", _TEXT, nullable=False),
        sa.Column("tenant_id", _TEXT, nullable=True),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_conversation_ref"),
    )


def downgrade() -> None:
    for table in (
        "conversation_ref",
        "audit_event",
        "outbox",
        "timer",
        "approval_step",
        "indicator_return",
        "cycle",
        "indicator_target",
        "indicator",
    ):
        op.drop_table(table)  # indexes go with their tables
