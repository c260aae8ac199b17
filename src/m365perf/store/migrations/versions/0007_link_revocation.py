"""Web-form links signed at send time: revocations, and no live link left in the outbox.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

A signed web-form link is a 30-day credential, so it is no longer stored: a card's
outbox row names the form (``return_form``: cycle and owner) and the dispatcher signs
the link as it sends the e-mail. This revision adds ``link_revocation`` (``m365perf
links revoke``) and rewrites every ``send_card`` row that still holds a signed link in
``link`` into that form, whatever its status, so none is left at rest. Plain SQLAlchemy
types, like 0001, so this revision keeps meaning the same schema.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_WHEN = sa.DateTime(timezone=True)
_RETURNS = "/returns/"


def upgrade() -> None:
    op.create_table(
        "link_revocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", _TEXT, nullable=True),
        sa.Column("cycle_id", sa.Integer(), nullable=True),
        sa.Column("revoked_by", _TEXT, nullable=False),
        sa.Column("revoked_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_link_revocation"),
    )
    op.create_index("ix_link_revocation_owner_id", "link_revocation", ["owner_id"])
    op.create_index("ix_link_revocation_cycle_id", "link_revocation", ["cycle_id"])
    _unstore_signed_links()


def downgrade() -> None:
    # The links are not put back: the dispatcher of 0006 sends such a row without one.
    op.drop_index("ix_link_revocation_cycle_id", table_name="link_revocation")
    op.drop_index("ix_link_revocation_owner_id", table_name="link_revocation")
    op.drop_table("link_revocation")


def _unstore_signed_links() -> None:
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("kind", _TEXT),
        sa.column("payload", sa.JSON()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.kind == "send_card")
    )
    for row_id, payload in rows.fetchall():
        if not isinstance(payload, dict) or _RETURNS not in str(payload.get("link", "")):
            continue
        rewritten = {**payload, "link": ""}
        form = _form_of(str(payload["link"]))
        if form is not None:
            rewritten["return_form"] = form
        conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(payload=rewritten))


def _form_of(link: str) -> dict[str, Any] | None:
    """The cycle and owner a signed link names (its claims, read without the key)."""
    token = link.partition(_RETURNS)[2].split("?")[0]
    body = token.partition(".")[0]
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    cycle_id, owner_id = claims.get("cycle_id"), claims.get("owner_id")
    if isinstance(cycle_id, int) and cycle_id >= 1 and isinstance(owner_id, str) and owner_id:
        return {"cycle_id": cycle_id, "owner_id": owner_id}
    return None
