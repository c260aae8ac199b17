"""The lifecycle: versions on cycles and steps, the current step as a state, sent-back reasons.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

* ``cycle.version`` and ``approval_step.version``: every transition is guarded by the
  expected version, as returns already were.
* The current step of a chain is the one step ``asked`` (or ``escalated``): existing chains
  get their first undecided step of a returned return marked ``asked``, and the
  ``indicator_return.current_step`` column (never advanced) goes.
* ``indicator_return.sent_back_*``: who sent a return back, when and why, for the owner's
  reminders.
* Cycles with a return in become ``collecting``; ``no_data`` returns (never written) none.

Plain SQLAlchemy types, like 0001, so this revision keeps meaning the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cycle") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("closed_by", _TEXT, nullable=True))
        batch.add_column(sa.Column("close_reason", _TEXT, nullable=True))
        batch.add_column(sa.Column("unroutable", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("approval_step") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("indicator_return") as batch:
        batch.add_column(sa.Column("sent_back_by", _TEXT, nullable=True))
        batch.add_column(sa.Column("sent_back_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("sent_back_reason", _TEXT, nullable=True))
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy of the table would have
    # to drop it, which its approval steps' foreign key refuses.
    op.execute("ALTER TABLE indicator_return DROP COLUMN current_step")
    # The current step: the first undecided step of a returned return's latest chain.
    op.execute(
        """
        UPDATE approval_step SET status = 'asked'
        WHERE status = 'pending'
          AND return_id IN (SELECT id FROM indicator_return WHERE status = 'returned')
          AND return_version = (
              SELECT MAX(s2.return_version) FROM approval_step s2
              WHERE s2.return_id = approval_step.return_id)
          AND NOT EXISTS (
              SELECT 1 FROM approval_step e
              WHERE e.return_id = approval_step.return_id
                AND e.return_version = approval_step.return_version
                AND e.step_index < approval_step.step_index
                AND e.status NOT IN ('approved', 'skipped'))
        """
    )
    # Steps still open on a return no longer in approval (or on an older chain) were left
    # over by the out-of-order bug; they are no one's turn now.
    op.execute(
        """
        UPDATE approval_step SET status = 'skipped', decided_by = 'm365perf',
               reason = 'no longer needed: the return is not in approval (migration 0003)'
        WHERE status IN ('pending', 'escalated')
          AND (return_id NOT IN (SELECT id FROM indicator_return WHERE status = 'returned')
               OR return_version < (SELECT MAX(s2.return_version) FROM approval_step s2
                                    WHERE s2.return_id = approval_step.return_id))
        """
    )
    op.execute(
        """
        UPDATE cycle SET status = 'collecting'
        WHERE status = 'open'
          AND EXISTS (SELECT 1 FROM indicator_return r
                      WHERE r.cycle_id = cycle.id AND r.status <> 'awaiting')
        """
    )


def downgrade() -> None:
    op.execute("UPDATE approval_step SET status = 'pending' WHERE status = 'asked'")
    op.execute("UPDATE cycle SET status = 'open' WHERE status = 'collecting'")
    op.execute("UPDATE indicator_return SET status = 'awaiting' WHERE status = 'missed'")
    with op.batch_alter_table("indicator_return") as batch:
        batch.add_column(
            sa.Column("current_step", sa.Integer(), nullable=False, server_default="0")
        )
        batch.drop_column("sent_back_reason")
        batch.drop_column("sent_back_at")
        batch.drop_column("sent_back_by")
    with op.batch_alter_table("approval_step") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("cycle") as batch:
        batch.drop_column("unroutable")
        batch.drop_column("close_reason")
        batch.drop_column("closed_by")
        batch.drop_column("version")
