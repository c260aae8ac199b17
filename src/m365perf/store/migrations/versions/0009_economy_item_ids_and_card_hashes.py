"""Fewer calls: the SharePoint item of each write-back key, the fingerprint of each card.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

``writeback_item`` remembers which SharePoint item holds each results-list key (and the
version last written there), so a later write PATCHes it by id with no look-up of the
list. ``card_delivery.card_hash`` is the fingerprint of the card as last shown, so an
update that would show the same card is not sent. Plain SQLAlchemy types, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "writeback_item",
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("list_title", sa.String(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=False),
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("version", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "list_title", "item_key", name="pk_writeback_item"),
    )
    with op.batch_alter_table("card_delivery") as batch:
        batch.add_column(sa.Column("card_hash", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_delivery") as batch:
        batch.drop_column("card_hash")
    op.drop_table("writeback_item")
