"""Improvement actions: what will be done about a red figure, by whom, by when.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02

One row per return (a resubmission revises it), with its own small lifecycle
(``not_started`` → ``in_progress`` → ``done``, see ``docs/lifecycle.md``). Plain
SQLAlchemy types, like 0001, so this revision keeps meaning the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "improvement_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", _TEXT, nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("owner_id", _TEXT, nullable=False),
        sa.Column("what", _TEXT, nullable=False),
        sa.Column("who_id", _TEXT, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("raised_for", _TEXT, nullable=False),
        sa.Column("status", _TEXT, nullable=False),
        sa.Column("note", _TEXT, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", _TEXT, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_by", _TEXT, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"], ["cycle.id"], name="fk_improvement_action_cycle_id_cycle"
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["indicator_return.id"],
            name="fk_improvement_action_return_id_indicator_return",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_improvement_action"),
        sa.UniqueConstraint("return_id", name="uq_improvement_action_return_id"),
    )
    op.create_index(
        "ix_improvement_action_owner_id_status", "improvement_action", ["owner_id", "status"]
    )
    op.create_index(
        "ix_improvement_action_flow_id_indicator_key",
        "improvement_action",
        ["flow_id", "indicator_key"],
    )


def downgrade() -> None:
    op.drop_index("ix_improvement_action_flow_id_indicator_key", table_name="improvement_action")
    op.drop_index("ix_improvement_action_owner_id_status", table_name="improvement_action")
    op.drop_table("improvement_action")
