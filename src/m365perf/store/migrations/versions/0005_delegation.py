"""Delegation and out of office: who acts for an approver on which days.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

A new table only; nothing existing changes. Plain SQLAlchemy types, like 0001, so this
revision keeps meaning the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delegation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("approver_id", _TEXT, nullable=False),
        sa.Column("delegate_id", _TEXT, nullable=True),
        sa.Column("flow_id", _TEXT, nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_by", _TEXT, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("ended_by", _TEXT, nullable=True),
        sa.Column("ended_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delegation"),
    )
    op.create_index("ix_delegation_approver_id", "delegation", ["approver_id"])
    op.create_index("ix_delegation_delegate_id", "delegation", ["delegate_id"])


def downgrade() -> None:
    op.drop_index("ix_delegation_delegate_id", table_name="delegation")
    op.drop_index("ix_delegation_approver_id", table_name="delegation")
    op.drop_table("delegation")
