"""Budgets every serve process shares: token buckets, concurrency slots, Retry-After.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

One row per budget (``sharepoint``, ``bot``, ``bot:<conversation>``, ...) and per
concurrency slot (``mailbox:<address>#slot<n>``), so two or more ``serve`` processes on
one database never together exceed a budget nor send inside an open Retry-After window.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_ledger",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_budget_ledger"),
    )


def downgrade() -> None:
    op.drop_table("budget_ledger")
