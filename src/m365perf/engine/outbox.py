"""Side effects as outbox rows (see docs/outbox.md); the dispatcher sends them."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from m365perf.domain.approvers import Person
from m365perf.engine.context import EngineContext
from m365perf.store import Transaction

Channel = Literal["teams", "email"]


def mailbox_budget(ctx: EngineContext) -> str:
    return f"mailbox:{ctx.config.service_mailbox.lower()}"


def send_card(
    tx: Transaction,
    ctx: EngineContext,
    *,
    card_id: str,
    person: Person,
    channel: Channel,
    card: Mapping[str, Any],
    subject: str,
    summary: str,
    link: str,
    subject_type: str,
    subject_id: int,
    now: datetime,
    dedup_key: str | None = None,
    fallback_email: bool = False,
) -> bool:
    """Queue one card for one person; False when the same card was queued before."""
    _, created = tx.enqueue(
        "send_card",
        budget="bot" if channel == "teams" else mailbox_budget(ctx),
        payload={
            "card_id": card_id,
            "channel": channel,
            "user": {"id": person.id, "name": person.name, "email": person.email},
            "card": dict(card),
            "subject": subject,
            "summary": summary,
            "link": link,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "fallback_email": fallback_email and channel == "teams",
        },
        dedup_key=dedup_key or f"send:{card_id}",
        now=now,
    )
    return created


def update_card(
    tx: Transaction, *, card_id: str, card: Mapping[str, Any], dedup_key: str, now: datetime
) -> None:
    """Replace a card already delivered (Teams); e-mail cards are left as they are."""
    tx.enqueue(
        "update_card",
        budget="bot",
        payload={"card_id": card_id, "card": dict(card)},
        dedup_key=dedup_key,
        now=now,
    )


def send_mail(
    tx: Transaction,
    ctx: EngineContext,
    *,
    to: Sequence[str],
    subject: str,
    lines: Sequence[str],
    dedup_key: str,
    now: datetime,
    cc: Sequence[str] = (),
) -> None:
    """Queue a plain notification (digest, escalation, unroutable report)."""
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "<br>" for line in lines)
    tx.enqueue(
        "send_mail",
        budget=mailbox_budget(ctx),
        payload={
            "to": sorted({t.lower() for t in to}),
            "cc": sorted({c.lower() for c in cc}),
            "subject": subject,
            "html": f"<html><body>{body}</body></html>",
            "text": text,
        },
        dedup_key=dedup_key,
        now=now,
    )
