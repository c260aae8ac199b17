"""Side effects as outbox rows (see docs/outbox.md); the dispatcher sends them.

Every row is a message model from ``m365perf.messages``, queued by :func:`queue`; the
helpers below build the common ones.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from m365perf.domain.approvers import Person
from m365perf.engine.context import EngineContext
from m365perf.messages import (
    CardId,
    CardUser,
    DedupKey,
    Message,
    ReturnForm,
    SendCard,
    SendMail,
    UpdateCard,
)
from m365perf.messages.ids import CardSendKey
from m365perf.messages.names import SubjectType
from m365perf.messages.outbox import Channel
from m365perf.store import Transaction

__all__ = ["Channel", "queue", "send_card", "send_mail", "update_card"]

log = logging.getLogger(__name__)


def queue(
    tx: Transaction, ctx: EngineContext, message: Message, *, dedup_key: DedupKey, now: datetime
) -> bool:
    """Queue ``message`` once per ``dedup_key`` (ever); False when it was queued before."""
    row, created = tx.enqueue(
        message.kind,
        budget=message.budget(ctx.config.service_mailbox),
        payload=message.payload(),
        dedup_key=dedup_key.format(),
        now=now,
    )
    if created:  # under the request's correlation id; the dispatcher logs outbox-<id>
        log.info("queued outbox row %s (%s)", row.id, message.kind)
    return created


def send_card(
    tx: Transaction,
    ctx: EngineContext,
    *,
    card_id: CardId,
    person: Person,
    channel: Channel,
    card: Mapping[str, Any],
    subject: str,
    summary: str,
    subject_type: SubjectType,
    subject_id: int,
    now: datetime,
    link: str = "",
    return_form: ReturnForm | None = None,
    dedup_key: DedupKey | None = None,
    fallback_email: bool = False,
) -> bool:
    """Queue one card for one person; False when the same card was queued before.

    ``link`` is a page behind sign-in; ``return_form`` names the owner's web form, whose
    signed link the dispatcher makes when it sends (never stored).
    """
    message = SendCard(
        card_id=card_id,
        channel=channel,
        user=CardUser(id=person.id, name=person.name, email=person.email),
        card=dict(card),
        subject=subject,
        summary=summary,
        link=link,
        return_form=return_form,
        subject_type=subject_type,
        subject_id=subject_id,
        fallback_email=fallback_email and channel == "teams",
    )
    return queue(tx, ctx, message, dedup_key=dedup_key or CardSendKey(card_id), now=now)


def update_card(
    tx: Transaction,
    ctx: EngineContext,
    *,
    card_id: CardId,
    card: Mapping[str, Any],
    dedup_key: DedupKey,
    now: datetime,
) -> None:
    """Replace a card already delivered (Teams); e-mail cards are left as they are."""
    queue(tx, ctx, UpdateCard(card_id=card_id, card=dict(card)), dedup_key=dedup_key, now=now)


def send_mail(
    tx: Transaction,
    ctx: EngineContext,
    *,
    to: Sequence[str],
    subject: str,
    lines: Sequence[str],
    dedup_key: DedupKey,
    now: datetime,
    cc: Sequence[str] = (),
) -> None:
    """Queue a plain notification (digest, escalation, unroutable report)."""
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "<br>" for line in lines)
    message = SendMail(
        to=sorted({t.lower() for t in to}),
        cc=sorted({c.lower() for c in cc}),
        subject=subject,
        html=f"<html><body>{body}</body></html>",
        text=text,
    )
    queue(tx, ctx, message, dedup_key=dedup_key, now=now)
