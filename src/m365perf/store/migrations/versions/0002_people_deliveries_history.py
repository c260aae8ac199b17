"""People (a directory snapshot), card deliveries and imported history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Plain SQLAlchemy types, like 0001, so this revision keeps meaning the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_ENUM = sa.String(32)
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", _TEXT, nullable=False),
        sa.Column("name", _TEXT, nullable=False),
        sa.Column("email", _TEXT, nullable=False),
        sa.Column("line_manager_id", _TEXT, nullable=True),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
        sa.UniqueConstraint("email", name="uq_person_email"),
    )

    op.create_table(
        "card_delivery",
        sa.Column("card_id", _TEXT, nullable=False),
        sa.Column("user_id", _TEXT, nullable=False),
        sa.Column("channel", _ENUM, nullable=False),
        sa.Column("conversation_id", _TEXT, nullable=True),
        sa.Column("activity_id", _TEXT, nullable=True),
        sa.Column("service_url", _TEXT, nullable=True),
        sa.Column("message_id", _TEXT, nullable=True),
        sa.Column("subject_type", _TEXT, nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("delivered_at", _WHEN, nullable=False),
        sa.Column("replaced_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("card_id", name="pk_card_delivery"),
    )
    op.create_index(
        "ix_card_delivery_subject_type_subject_id", "card_delivery", ["subject_type", "subject_id"]
    )
    op.create_index("ix_card_delivery_user_id", "card_delivery", ["user_id"])

    op.create_table(
        "history_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", _TEXT, nullable=False),
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("period", _TEXT, nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", _TEXT, nullable=False),
        sa.Column("recorded_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_value"),
        sa.UniqueConstraint(
            "flow_id",
            "indicator_key",
            "period_start",
            name="uq_history_value_flow_id_indicator_key_period_start",
        ),
    )


def downgrade() -> None:
    for table in ("history_value", "card_delivery", "person"):
        op.drop_table(table)  # indexes go with their tables
