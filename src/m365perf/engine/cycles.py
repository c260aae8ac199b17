"""Opening a cycle: snapshot the register, create the returns, ask every owner once.

Opening is idempotent (unique flow + period in the store): a second scheduler, a
re-fired trigger or a second ``cycle open`` finds the cycle open and changes nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from m365perf.cards import render_owner_requests, request_subject, summary_text
from m365perf.domain.approvers import Person, Unroutable
from m365perf.domain.periods import Period
from m365perf.engine.closing import schedule_close
from m365perf.engine.context import EngineContext, at_local, local_day
from m365perf.engine.errors import EmptyCycle
from m365perf.engine.outbox import Channel, send_card, send_mail
from m365perf.engine.people import CachedDirectory, StoreDirectory
from m365perf.engine.preload import PreloadedReads
from m365perf.engine.views import owner_request
from m365perf.flows.model import Flow
from m365perf.messages.ids import (
    ROUND_OPEN,
    CardSendKey,
    DigestKey,
    EscalateKey,
    ReminderKey,
    RequestCardId,
    ResyncUnroutableMailKey,
    UnroutableMailKey,
)
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.plan.catchup import Ladder, ladder_at_opening
from m365perf.plan.register import Indicator, RowProblem
from m365perf.plan.routing import route
from m365perf.plan.timetable import calendar_for
from m365perf.store import (
    IndicatorSpec,
    IndicatorTarget,
    NewReturn,
    Return,
    Store,
    Transaction,
)

DIGEST_AT = time(8, 0)


@dataclass(frozen=True)
class CycleOpening:
    """What opening a cycle did (or found already done)."""

    cycle_id: int
    created: bool
    owners: int
    returns: int
    unroutable: tuple[RowProblem, ...]


def snapshot(
    tx: Transaction,
    flow: Flow,
    indicators: Sequence[Indicator],
    now: datetime,
    directory: StoreDirectory | None = None,
) -> None:
    """Copy the register's indicators and their dated targets into the store."""
    directory = directory or CachedDirectory(tx, flow)
    specs = []
    targets: list[IndicatorTarget] = []
    for ind in indicators:
        owner = directory.find(ind.owner)
        first = ind.targets[0] if ind.targets else None
        specs.append(
            IndicatorSpec(
                indicator_key=ind.id,
                name=ind.name,
                unit=ind.unit,
                polarity=ind.polarity,
                frequency=ind.frequency,
                owner_id=owner.id if owner else None,
                owner_email=owner.email if owner else ind.owner,
                comparator=ind.comparator,
                target_value=first.value if first else None,
                tolerance_kind=first.tolerance.kind if first and first.tolerance else None,
                tolerance_amount=first.tolerance.amount if first and first.tolerance else None,
                target_applies_from=first.applies_from.label if first else None,
                raw=dict(ind.row),
            )
        )
        targets.extend(
            IndicatorTarget(
                flow_id=flow.id,
                indicator_key=ind.id,
                applies_from=target.applies_from.label,
                applies_from_start=target.applies_from.start,
                value=target.value,
                tolerance_kind=target.tolerance.kind if target.tolerance else None,
                tolerance_amount=target.tolerance.amount if target.tolerance else None,
                recorded_at=now,
            )
            for target in ind.targets
        )
    tx.upsert_indicators(flow.id, specs, now=now)
    tx.put_targets(flow.id, targets, now=now)


def open_cycle(
    store: Store,
    ctx: EngineContext,
    flow: Flow,
    period: Period,
    indicators: Sequence[Indicator],
    problems: Sequence[RowProblem],
    *,
    now: datetime,
    actor: str = "scheduler",
    allow_empty: bool = False,
) -> CycleOpening:
    """Open the flow's cycle for ``period`` and queue one request per owner.

    When no indicator can be asked (an unreadable register, a filter that matches
    nothing, every row a problem) it raises :class:`EmptyCycle` and opens nothing,
    unless ``allow_empty``: an empty cycle is usually a bad register read.

    The work is done in batches so neither time nor memory grows with the register
    inside one transaction: the first creates the cycle, its returns and its timers; then
    the owners are asked ``OPEN_BATCH`` returns at a time; the last records the opening
    in the audit. A cycle found without that audit entry was half-opened (a crash, or a
    second opener still at work): opening it again asks the owners not yet asked (each
    card is queued once, by its key) and finishes.
    """
    ladder = ladder_at_opening(flow, period, now)
    plan = ladder.timetable
    with store.transaction() as tx:
        existing = tx.find_cycle(flow.id, period.label)
        if existing is not None:
            half_opened = not _opened(tx, existing.id or 0)
            if half_opened:  # the audit names what nobody could be asked for, as at first
                cannot = route_requests(tx, flow, indicators)[2]
                left = (*problems, *cannot)
    if existing is not None:
        if not half_opened:
            return CycleOpening(existing.id or 0, False, 0, 0, ())
        return _finish_opening(
            store,
            ctx,
            flow,
            period,
            existing.id or 0,
            ladder,
            now=now,
            actor=actor,
            unroutable=left,
            unroutable_ids=[u.indicator_id for u in left],
        )
    with store.transaction() as tx:
        directory = CachedDirectory(tx, flow)
        wanted, _owners, cannot = route_requests(tx, flow, indicators, directory)
        unroutable = [*problems, *cannot]
        if not wanted and not allow_empty:
            raise EmptyCycle(flow.id, period.label, unroutable, what="no cycle was opened")
        snapshot(tx, flow, indicators, now, directory)
        cycle, created = tx.open_cycle(
            flow.id,
            period.label,
            period_start=period.start,
            frequency=flow.frequency,
            due_date=plan.due,
            now=now,
        )
        cycle_id = cycle.id or 0
        if not created:
            return CycleOpening(cycle_id, False, 0, 0, ())
        tx.create_returns(cycle_id, wanted, now=now)
        _schedule_chasers(tx, flow, cycle_id, ladder, now)
        tx.note_unroutable(cycle_id, len(unroutable))
        if unroutable:
            _report_unroutable(tx, ctx, flow, period, cycle_id, unroutable, now)
        unroutable_ids = [u.indicator_id for u in unroutable]
    return _finish_opening(
        store,
        ctx,
        flow,
        period,
        cycle_id,
        ladder,
        now=now,
        actor=actor,
        unroutable=tuple(unroutable),
        unroutable_ids=unroutable_ids,
    )


#: Returns asked for per transaction while a cycle opens (their owners' cards whole).
OPEN_BATCH = 500


def _opened(tx: Transaction, cycle_id: int) -> bool:
    """Whether the cycle's opening finished (its audit entry is the last thing written)."""
    return bool(tx.list_audit(cycle_id=cycle_id, actions=[AuditAction.CYCLE_OPENED]))


def _finish_opening(
    store: Store,
    ctx: EngineContext,
    flow: Flow,
    period: Period,
    cycle_id: int,
    ladder: Ladder,
    *,
    now: datetime,
    actor: str,
    unroutable: tuple[RowProblem, ...],
    unroutable_ids: list[str],
) -> CycleOpening:
    """Ask every owner of the cycle's returns not yet asked, in batches; then audit."""
    with store.transaction() as tx:
        by_owner: dict[str, list[int]] = {}
        for ret in tx.list_returns(cycle_id=cycle_id):
            by_owner.setdefault(ret.owner_id or "", []).append(ret.id or 0)
    batches: list[list[str]] = [[]]
    size = 0
    for owner_id, ids in by_owner.items():
        if size and size + len(ids) > OPEN_BATCH:
            batches.append([])
            size = 0
        batches[-1].append(owner_id)
        size += len(ids)
    for batch in batches:
        with store.transaction() as tx:
            _ask_batch(tx, ctx, flow, cycle_id, batch, now=now)
    returns = sum(len(ids) for ids in by_owner.values())
    with store.transaction() as tx:
        if not _opened(tx, cycle_id):
            tx.audit(
                AuditAction.CYCLE_OPENED,
                at=now,
                actor=actor,
                subject_type=SubjectType.CYCLE,
                subject_id=cycle_id,
                cycle_id=cycle_id,
                after={
                    "flow": flow.id,
                    "period": period.label,
                    "due": ladder.timetable.due.isoformat(),
                    "owners": len(by_owner),
                    "returns": returns,
                    "unroutable": unroutable_ids,
                    **_catch_up(ladder),
                },
            )
    return CycleOpening(cycle_id, True, len(by_owner), returns, unroutable)


def _ask_batch(
    tx: Transaction,
    ctx: EngineContext,
    flow: Flow,
    cycle_id: int,
    owner_ids: Sequence[str],
    *,
    now: datetime,
) -> None:
    """Ask these owners for their returns (those not asked before), reading at once."""
    sent = tx.queued_keys(
        [CardSendKey(RequestCardId(cycle_id, o, ROUND_OPEN)).format() for o in owner_ids]
    )
    todo = [
        o
        for o in owner_ids
        if CardSendKey(RequestCardId(cycle_id, o, ROUND_OPEN)).format() not in sent
    ]
    if not todo:
        return
    returns = {o: tx.list_returns(cycle_id=cycle_id, owner_id=o or None) for o in todo}
    cycle = tx.get_cycle(cycle_id)
    keys = [r.indicator_key for rs in returns.values() for r in rs]
    reads = PreloadedReads(tx, flow, cycle, ctx.period_of(cycle), keys)
    directory = CachedDirectory(tx, flow)
    for owner_id in todo:
        owner = directory.find(owner_id) if owner_id else None
        mine = returns[owner_id]
        if owner is None:
            first = mine[0] if mine else None
            email = first.owner_email if first and first.owner_email else owner_id
            owner = Person(id=owner_id, name=email, email=email)
        ask_owner(reads.transaction, ctx, cycle_id, owner, mine, now=now, round_name=ROUND_OPEN)


def route_requests(
    tx: Transaction,
    flow: Flow,
    indicators: Sequence[Indicator],
    directory: StoreDirectory | None = None,
) -> tuple[list[NewReturn], dict[str, Person], list[RowProblem]]:
    """The returns to ask for (with their owners) and the indicators nobody can be asked for."""
    directory = directory or CachedDirectory(tx, flow)
    wanted: list[NewReturn] = []
    owners: dict[str, Person] = {}
    unroutable: list[RowProblem] = []
    for ind in indicators:
        routed = route(flow, directory, ind.owner, ind.row)
        if isinstance(routed, Unroutable):
            unroutable.append(RowProblem(ind.id, ind.name, routed.reason))
            continue
        owners[routed.owner.id] = routed.owner
        wanted.append(
            NewReturn(
                indicator_key=ind.id, owner_id=routed.owner.id, owner_email=routed.owner.email
            )
        )
    return wanted, owners, unroutable


def preferred_channel(flow: Flow) -> Channel:
    return flow.channels[0]


def ask_owner(
    tx: Transaction,
    ctx: EngineContext,
    cycle_id: int,
    owner: Person,
    returns: Sequence[Return],
    *,
    now: datetime,
    round_name: str,
    reminder: int | None = None,
) -> int:
    """Queue the owner's request card(s) for these returns; how many cards were queued.

    ``reminder`` is the reminder's number when this ask is one (the card says so).
    """
    cycle = tx.get_cycle(cycle_id)
    flow = ctx.flow(cycle.flow_id)
    request_id = RequestCardId(cycle_id, owner.id, round_name)
    base_id = str(request_id)
    view = owner_request(
        tx, ctx, cycle, owner.id, owner.name, returns, card_id=base_id, now=now, reminder=reminder
    )
    cards = render_owner_requests(view, max_bytes=ctx.config.max_card_bytes)
    form = ctx.return_form(cycle_id, owner.id)
    first_ask = round_name == ROUND_OPEN or round_name.startswith("resync")
    subject = request_subject(view, reminder=not first_ask)
    for part, card in enumerate(cards, start=1):
        card_id = request_id if len(cards) == 1 else request_id.with_part(part)
        send_card(
            tx,
            ctx,
            card_id=card_id,
            person=owner,
            channel=preferred_channel(flow),
            fallback_email="email" in flow.channels,
            card=card,
            subject=subject,
            summary=summary_text(view, form is not None),
            return_form=form,
            subject_type=SubjectType.CYCLE,
            subject_id=cycle_id,
            now=now,
        )
    return len(cards)


def _schedule_chasers(
    tx: Transaction, flow: Flow, cycle_id: int, ladder: Ladder, now: datetime
) -> None:
    """The reminders and escalation still ahead (a late opening skips those past)."""
    for reminder in ladder.reminders:
        tx.schedule_timer(
            TimerKind.REMINDER,
            due_at=reminder.at,
            dedup_key=ReminderKey(cycle_id, reminder.number).format(),
            subject_type=SubjectType.CYCLE,
            subject_id=cycle_id,
            payload={"number": reminder.number, "kind": reminder.kind},
            now=now,
        )
    if ladder.escalates_at is not None:
        tx.schedule_timer(
            TimerKind.ESCALATE,
            due_at=ladder.escalates_at,
            dedup_key=EscalateKey(cycle_id).format(),
            subject_type=SubjectType.CYCLE,
            subject_id=cycle_id,
            now=now,
        )
    schedule_close(tx, flow, tx.get_cycle(cycle_id), now=now)
    schedule_digest(tx, flow, cycle_id, after=now, now=now)


def _catch_up(ladder: Ladder) -> dict[str, Any]:
    """For the audit: the planned dates a late opening replaced, the reminders it skipped."""
    if not (ladder.late or ladder.skipped):
        return {}
    planned = ladder.planned
    return {
        "late": {
            "planned_opens": planned.opens.isoformat(),
            "planned_due": planned.due.isoformat(),
            "dates_from_opening": ladder.late,
            "skipped_reminders": [c.kind for c in ladder.skipped],
        }
    }


def schedule_digest(
    tx: Transaction, flow: Flow, cycle_id: int, *, after: datetime, now: datetime
) -> None:
    """The performance team's digest on the next working morning after ``after``."""
    days = calendar_for(flow)
    day = days.add_working_days(local_day(after), 1)
    tx.schedule_timer(
        TimerKind.DIGEST,
        due_at=at_local(day, DIGEST_AT),
        dedup_key=DigestKey(cycle_id, day).format(),
        subject_type=SubjectType.CYCLE,
        subject_id=cycle_id,
        now=now,
    )


def _report_unroutable(
    tx: Transaction,
    ctx: EngineContext,
    flow: Flow,
    period: Period,
    cycle_id: int,
    unroutable: Sequence[RowProblem],
    now: datetime,
    *,
    round_name: str = "open",
) -> None:
    """Tell the performance team what nobody was asked for, and how it gets picked up."""
    lines = [
        f"{len(unroutable)} indicator(s) in {flow.name} {period.label} could not be sent "
        "to an owner:",
        "",
        *(f"{u.indicator_id} {u.name}: {u.reason}" for u in unroutable),
        "",
        f"Fix the register: while the cycle is open, the service reads it again each "
        f"weekday at {flow.schedule.opens_at} and asks the owners of those that can then "
        "be routed. To do it at once, run:",
        f"m365perf cycle resync {flow.id} --period {shlex.quote(period.label)}",
    ]
    send_mail(
        tx,
        ctx,
        to=flow.performance_team or [ctx.config.service_mailbox],
        subject=f"{flow.name} {period.label}: {len(unroutable)} indicator(s) cannot be routed",
        lines=lines,
        dedup_key=UnroutableMailKey(cycle_id)
        if round_name == ROUND_OPEN
        else ResyncUnroutableMailKey(cycle_id, round_name),
        now=now,
    )
