"""What the dispatcher reports back: deliveries recorded, follow-ups scheduled.

``on_sent`` may be called twice for one row (a crash between sending and marking it
done), so everything here is idempotent.
"""

from __future__ import annotations

from datetime import datetime

from m365perf.domain.approvers import Person
from m365perf.engine.context import EngineContext
from m365perf.engine.outbox import send_card, send_mail
from m365perf.engine.timers import MAX_POLLS, POLL_EVERY
from m365perf.errors import M365PerfError
from m365perf.messages import (
    CardSent,
    CardUpdated,
    CheckRefresh,
    MailSent,
    MessageError,
    Outcome,
    Refresh,
    RefreshChecked,
    RefreshStarted,
    SendCard,
    SendMail,
    UpdateCard,
    WriteAction,
    WriteBack,
    WrittenBack,
    card_fingerprint,
    parse_message,
)
from m365perf.messages.ids import RefreshFailedMailKey, RefreshPollKey
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.store import CardChannel, OutboxMessage, Store, Transaction

DISPATCHER = "dispatcher"


class OutcomeMismatch(M365PerfError, TypeError):
    """The dispatcher reported an outcome of another kind than the row it sent (a bug)."""


def on_sent(
    store: Store,
    ctx: EngineContext,
    row: OutboxMessage,
    outcome: Outcome,
    now: datetime,
) -> None:
    """Record what sending ``row`` did; raises if ``outcome`` is not of the row's kind."""
    message = parse_message(row.kind, row.payload)
    with store.transaction() as tx:
        match message, outcome:
            case SendCard(), CardSent():
                _card_sent(tx, message, outcome, now)
            case UpdateCard(), CardUpdated():
                if outcome.replaced:
                    shown = card_fingerprint(message.card)
                    tx.mark_replaced(str(message.card_id), now=now, card_hash=shown)
            case WriteAction(), WrittenBack():  # before WriteBack: it is one
                _action_written_back(tx, message, outcome, now)
            case WriteBack(), WrittenBack():
                _written_back(tx, message, outcome, now)
            case Refresh(), RefreshStarted():
                _refresh_started(tx, message, outcome, now)
            case CheckRefresh(), RefreshChecked():
                _refresh_checked(tx, ctx, message, outcome, now)
            case SendMail(), MailSent():
                pass  # nothing to record
            case _:
                raise OutcomeMismatch(
                    f"outbox row {row.id} is {row.kind} but was reported as "
                    f"{type(outcome).__name__}"
                )


def _card_sent(tx: Transaction, message: SendCard, outcome: CardSent, now: datetime) -> None:
    user = message.user
    if outcome.conversation_id and message.channel == "teams":
        tx.put_conversation_ref(
            user.id,
            conversation_id=outcome.conversation_id,
            service_url=outcome.service_url or "",
            now=now,
        )
    tx.record_delivery(
        str(message.card_id),
        user_id=user.id,
        channel=CardChannel(message.channel),
        subject_type=message.subject_type,
        subject_id=message.subject_id,
        now=now,
        conversation_id=outcome.conversation_id,
        activity_id=outcome.activity_id,
        service_url=outcome.service_url,
        message_id=outcome.message_id,
        card_hash=card_fingerprint(message.card),
    )


def _remember_item(
    tx: Transaction, message: WriteBack, outcome: WrittenBack, now: datetime
) -> None:
    """Where the key lives now, so the next write of it PATCHes by id with no look-up."""
    if not outcome.item_id:
        return
    key = [_key_text(message.fields.get(k)) for k in message.key_fields]
    tx.put_writeback_item(
        message.site,
        message.list_title,
        key,
        item_id=outcome.item_id,
        version=None if outcome.skipped_older else _number(message.version),
        now=now,
    )


def _key_text(value: object) -> str:
    """A key value as text, so 3, 3.0 and "3" name the same item (as the dispatcher reads it)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: object) -> float | None:
    """The ``Version`` as a number (the dispatcher compares it so), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _action_written_back(
    tx: Transaction, message: WriteAction, outcome: WrittenBack, now: datetime
) -> None:
    _remember_item(tx, message, outcome, now)
    done = [
        e
        for e in tx.list_audit(subject_type=SubjectType.ACTION, subject_id=message.action_id)
        if e.action == AuditAction.ACTION_WRITTEN_BACK
        and (e.after or {}).get("version") == message.version
    ]
    if done:
        return
    tx.audit(
        AuditAction.ACTION_WRITTEN_BACK,
        at=now,
        actor=DISPATCHER,
        subject_type=SubjectType.ACTION,
        subject_id=message.action_id,
        cycle_id=message.cycle_id,
        after={
            "version": message.version,
            "item_id": outcome.item_id,
            "created": outcome.created,
            "skipped_older": outcome.skipped_older,
        },
    )


def _written_back(tx: Transaction, message: WriteBack, outcome: WrittenBack, now: datetime) -> None:
    _remember_item(tx, message, outcome, now)
    return_id = message.return_id or 0
    done = [
        e
        for e in tx.list_audit(subject_type=SubjectType.RETURN, subject_id=return_id)
        if e.action == AuditAction.RETURN_WRITTEN_BACK
        and (e.after or {}).get("version") == message.version
    ]
    if done:
        return
    tx.audit(
        AuditAction.RETURN_WRITTEN_BACK,
        at=now,
        actor=DISPATCHER,
        subject_type=SubjectType.RETURN,
        subject_id=return_id,
        cycle_id=message.cycle_id,
        after={
            "version": message.version,
            "item_id": outcome.item_id,
            "created": outcome.created,
            "skipped_older": outcome.skipped_older,
        },
    )


def _refresh_started(
    tx: Transaction, message: Refresh, outcome: RefreshStarted, now: datetime
) -> None:
    first = CheckRefresh(
        workspace=message.workspace,
        dataset=message.dataset,
        flow_id=message.flow_id,
        request_id=outcome.request_id,
        poll=1,
    )
    _schedule_poll(tx, first, now)
    tx.audit(
        AuditAction.POWERBI_REFRESH_REQUESTED,
        at=now,
        actor=DISPATCHER,
        subject_type=SubjectType.DATASET,
        subject_id=message.dataset,
        after={"request_id": outcome.request_id},
    )


def _refresh_checked(
    tx: Transaction,
    ctx: EngineContext,
    message: CheckRefresh,
    outcome: RefreshChecked,
    now: datetime,
) -> None:
    if outcome.running and message.poll < MAX_POLLS:
        _schedule_poll(tx, message.model_copy(update={"poll": message.poll + 1}), now)
        return
    completed = outcome.status == "Completed"
    tx.audit(
        AuditAction.POWERBI_REFRESHED if completed else AuditAction.POWERBI_REFRESH_FAILED,
        at=now,
        actor=DISPATCHER,
        subject_type=SubjectType.DATASET,
        subject_id=message.dataset,
        after={"request_id": message.request_id, "status": outcome.status, "error": outcome.error},
    )
    if completed:
        return
    flow = ctx.flow(message.flow_id)
    send_mail(
        tx,
        ctx,
        to=flow.performance_team or [ctx.config.service_mailbox],
        subject=f"Power BI refresh failed: {flow.name}",
        lines=[
            f"The refresh of dataset {message.dataset} ended {outcome.status}.",
            outcome.error or "",
        ],
        dedup_key=RefreshFailedMailKey(message.request_id),
        now=now,
    )


def _schedule_poll(tx: Transaction, check: CheckRefresh, now: datetime) -> None:
    """The timer that queues ``check`` (its payload is the check's payload)."""
    tx.schedule_timer(
        TimerKind.REFRESH_POLL,
        due_at=now + POLL_EVERY,
        dedup_key=RefreshPollKey(check.request_id, check.poll).format(),
        subject_type=SubjectType.DATASET,
        payload=check.payload(),
        now=now,
    )


def on_parked(
    store: Store, ctx: EngineContext, row: OutboxMessage, error: str, now: datetime
) -> None:
    """A Teams card that cannot be delivered (bot not installed, user unknown) goes by e-mail.

    Only where the flow names e-mail as a channel too; anything else stays parked for the
    performance team's status page (a row too malformed to read included).
    """
    try:
        message = parse_message(row.kind, row.payload)
    except MessageError:
        return
    if not isinstance(message, SendCard) or not message.fallback_email:
        return
    user = message.user
    with store.transaction() as tx:
        created = send_card(
            tx,
            ctx,
            card_id=message.card_id.as_email(),
            person=Person(id=user.id, name=user.name, email=user.email),
            channel="email",
            card=message.card,
            subject=message.subject,
            summary=message.summary,
            link=message.link,
            return_form=message.return_form,
            subject_type=message.subject_type,
            subject_id=message.subject_id,
            now=now,
        )
        if created:
            tx.audit(
                AuditAction.CARD_SENT_BY_EMAIL_INSTEAD,
                at=now,
                actor=DISPATCHER,
                subject_type=SubjectType.PERSON,
                subject_id=user.id,
                after={"card_id": str(message.card_id), "teams_error": error[:300]},
            )
