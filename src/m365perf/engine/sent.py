"""What the dispatcher reports back: deliveries recorded, follow-ups scheduled.

``on_sent`` may be called twice for one row (a crash between sending and marking it
done), so everything here is idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from m365perf.domain.approvers import Person
from m365perf.engine.context import EngineContext
from m365perf.engine.outbox import send_card, send_mail
from m365perf.engine.timers import MAX_POLLS, POLL_EVERY
from m365perf.store import OutboxMessage, Store


def on_sent(
    store: Store,
    ctx: EngineContext,
    message: OutboxMessage,
    outcome: dict[str, Any],
    now: datetime,
) -> None:
    payload = message.payload
    with store.transaction() as tx:
        if message.kind == "send_card":
            user = payload["user"]
            if outcome.get("conversation_id") and payload["channel"] == "teams":
                tx.put_conversation_ref(
                    user["id"],
                    conversation_id=outcome["conversation_id"],
                    service_url=outcome.get("service_url") or "",
                    now=now,
                )
            tx.record_delivery(
                payload["card_id"],
                user_id=user["id"],
                channel=payload["channel"],
                subject_type=payload.get("subject_type", ""),
                subject_id=int(payload.get("subject_id") or 0),
                now=now,
                conversation_id=outcome.get("conversation_id"),
                activity_id=outcome.get("activity_id"),
                service_url=outcome.get("service_url"),
                message_id=outcome.get("message_id"),
            )
        elif message.kind == "update_card" and outcome.get("replaced"):
            tx.mark_replaced(payload["card_id"], now=now)
        elif message.kind == "write_back":
            return_id = payload.get("return_id")
            version = payload["fields"].get("Version")
            done = [
                e
                for e in tx.list_audit(subject_type="return", subject_id=return_id or 0)
                if e.action == "return.written_back" and (e.after or {}).get("version") == version
            ]
            if not done:
                tx.audit(
                    "return.written_back",
                    at=now,
                    actor="dispatcher",
                    subject_type="return",
                    subject_id=return_id or 0,
                    cycle_id=payload.get("cycle_id"),
                    after={
                        "version": version,
                        "item_id": outcome.get("item_id"),
                        "created": outcome.get("created"),
                        "skipped_older": outcome.get("skipped_older", False),
                    },
                )
        elif message.kind == "refresh":
            request_id = outcome["request_id"]
            tx.schedule_timer(
                "refresh_poll",
                due_at=now + POLL_EVERY,
                dedup_key=f"refresh_poll:{request_id}:1",
                subject_type="dataset",
                payload={**payload, "request_id": request_id, "poll": 1},
                now=now,
            )
            tx.audit(
                "powerbi.refresh_requested",
                at=now,
                actor="dispatcher",
                subject_type="dataset",
                subject_id=payload["dataset"],
                after={"request_id": request_id},
            )
        elif message.kind == "check_refresh":
            status = str(outcome.get("status"))
            poll = int(payload.get("poll", 1))
            if status in ("Unknown", "NotStarted", "InProgress") and poll < MAX_POLLS:
                tx.schedule_timer(
                    "refresh_poll",
                    due_at=now + POLL_EVERY,
                    dedup_key=f"refresh_poll:{payload['request_id']}:{poll + 1}",
                    subject_type="dataset",
                    payload={**payload, "poll": poll + 1},
                    now=now,
                )
                return
            action = "powerbi.refreshed" if status == "Completed" else "powerbi.refresh_failed"
            tx.audit(
                action,
                at=now,
                actor="dispatcher",
                subject_type="dataset",
                subject_id=payload["dataset"],
                after={
                    "request_id": payload["request_id"],
                    "status": status,
                    "error": outcome.get("error"),
                },
            )
            if status != "Completed":
                flow = ctx.flow(str(payload.get("flow_id")))
                send_mail(
                    tx,
                    ctx,
                    to=flow.performance_team or [ctx.config.service_mailbox],
                    subject=f"Power BI refresh failed: {flow.name}",
                    lines=[
                        f"The refresh of dataset {payload['dataset']} ended {status}.",
                        str(outcome.get("error") or ""),
                    ],
                    dedup_key=f"refresh_failed:{payload['request_id']}",
                    now=now,
                )


def on_parked(
    store: Store, ctx: EngineContext, message: OutboxMessage, error: str, now: datetime
) -> None:
    """A Teams card that cannot be delivered (bot not installed, user unknown) goes by e-mail.

    Only where the flow names e-mail as a channel too; anything else stays parked for the
    performance team's status page.
    """
    payload = message.payload
    if message.kind != "send_card" or not payload.get("fallback_email"):
        return
    user = payload["user"]
    with store.transaction() as tx:
        created = send_card(
            tx,
            ctx,
            card_id=f"{payload['card_id']}-mail",
            person=Person(id=user["id"], name=user["name"], email=user["email"]),
            channel="email",
            card=payload["card"],
            subject=payload["subject"],
            summary=payload["summary"],
            link=payload["link"],
            subject_type=payload.get("subject_type", ""),
            subject_id=int(payload.get("subject_id") or 0),
            now=now,
        )
        if created:
            tx.audit(
                "card.sent_by_email_instead",
                at=now,
                actor="dispatcher",
                subject_type="person",
                subject_id=user["id"],
                after={"card_id": payload["card_id"], "teams_error": error[:300]},
            )
