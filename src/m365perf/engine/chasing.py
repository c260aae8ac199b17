"""Chasing a return sent back to its owner, on a ladder of its own.

An approver can reject a return, and the performance team reopen one for a correction,
at any time: after the cycle's reminders have run out, or after the cycle closed (the
approvals under way go on). So a return sent back is chased from the day it was sent
back, with the flow's intervals (:func:`~m365perf.plan.timetable.sent_back_chase`): a
request card for that return at each reminder, then one e-mail to the owner's line
manager (or the performance team). The cycle's own reminders chase only returns still
awaiting a first figure, so nobody is chased twice for one return on one day.

Each chase schedules the next. A chase or escalation whose return has moved on (it was
resubmitted, missed, or sent back again as a newer version) does nothing, so a
resubmission stops the ladder.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from m365perf.cards import format_date
from m365perf.cards.formatting import one_line
from m365perf.domain.approvers import Person
from m365perf.domain.lifecycle import ReturnStatus
from m365perf.engine.audit import audit_caught_up
from m365perf.engine.context import EngineContext, at_local, local_day
from m365perf.engine.cycles import ask_owner
from m365perf.engine.outbox import send_mail
from m365perf.engine.people import StoreDirectory
from m365perf.engine.returns import owner_person
from m365perf.engine.views import sent_back
from m365perf.flows.model import Flow
from m365perf.messages.ids import (
    ChaseReturnKey,
    DedupKeyError,
    EscalateReturnKey,
    PutOffEscalateReturnKey,
    ReturnEscalationMailKey,
    chase_round,
    parse_timer_key,
)
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.plan.catchup import (
    TimerAction,
    next_chase_after_late,
    passed_long_ago,
    put_off_to,
    timer_action,
)
from m365perf.plan.timetable import SentBackChase, calendar_for, sent_back_chase
from m365perf.store import Return, Timer, Transaction

#: The escalation follows the last reminder by this much, as the cycle's does.
ESCALATION_AFTER = timedelta(minutes=5)


def schedule_chase(tx: Transaction, flow: Flow, ret: Return, *, now: datetime) -> None:
    """Start the ladder of a return just sent back (``ret`` as it was sent back)."""
    _schedule(tx, flow, ret, 1, now=now)


def escalation_recipients(directory: StoreDirectory, flow: Flow, owner: Person) -> list[str]:
    """Who hears that an owner has not returned: as the flow's ``escalate.to`` says, the
    owner's line manager (the performance team when there is none)."""
    escalate = flow.reminders.escalate
    if escalate is not None and escalate.to == "line_manager":
        manager = directory.line_manager(owner)
        if manager:
            return [manager.email]
    return list(flow.performance_team)


def _ladder(flow: Flow, ret: Return) -> SentBackChase:
    return sent_back_chase(flow, local_day(ret.sent_back_at or ret.updated_at))


def _schedule(
    tx: Transaction,
    flow: Flow,
    ret: Return,
    number: int,
    *,
    now: datetime,
    after: date | None = None,
    caught_up: bool = False,
) -> None:
    """The ``number``-th chase of ``ret`` (the escalation after the last), if there is one.

    ``after`` is the day of the chase before: a chase that fired late (the scheduler was
    down) pushes the next to a later working day rather than sending two on one day.
    ``caught_up``: that chase went long after its moment (catch-up), so the ladder goes
    on one chase interval after it, the escalation included.
    """
    ladder = _ladder(flow, ret)
    opens_at = flow.schedule.opening_time
    return_id = ret.id or 0
    resume = next_chase_after_late(flow, now) if caught_up else None
    if number <= len(ladder.reminders):
        day = ladder.reminders[number - 1]
        if after is not None:
            day = max(day, calendar_for(flow).add_working_days(after, 1))
        if resume is not None:
            day = max(day, resume)
        tx.schedule_timer(
            TimerKind.CHASE_RETURN,
            due_at=max(at_local(day, opens_at), now),
            dedup_key=ChaseReturnKey(return_id, ret.version, number).format(),
            subject_type=SubjectType.RETURN,
            subject_id=return_id,
            payload={"number": number},
            now=now,
        )
    elif ladder.escalates_on is not None:
        # Never before the owner's figures were due: until then they still have time.
        due = tx.get_cycle(ret.cycle_id).due_date
        day = max(ladder.escalates_on, calendar_for(flow).add_working_days(due, 1))
        if resume is not None:
            day = max(day, resume)
        tx.schedule_timer(
            TimerKind.ESCALATE_RETURN,
            due_at=max(at_local(day, opens_at) + ESCALATION_AFTER, now),
            dedup_key=EscalateReturnKey(return_id, ret.version).format(),
            subject_type=SubjectType.RETURN,
            subject_id=return_id,
            payload={"after_reminders": len(ladder.reminders)},
            now=now,
        )


def _escalation_key(text: str) -> EscalateReturnKey:
    """The escalation a timer is for, whether on its planned day or put off (catch-up)."""
    key = parse_timer_key(text)
    if isinstance(key, PutOffEscalateReturnKey):
        return EscalateReturnKey(key.return_id, key.version)
    if isinstance(key, EscalateReturnKey):
        return key
    raise DedupKeyError(f"{text!r} is not the key of a sent-back return's escalation")


def _still_sent_back(tx: Transaction, return_id: int, version: int) -> Return | None:
    """The return, if it is still with its owner as the version that was sent back."""
    ret = tx.get_return(return_id)
    if ret.status is not ReturnStatus.REJECTED or ret.version != version:
        return None
    return ret


def chase_return(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    """Ask the owner again for a return sent back to them, on a card of its own."""
    key = ChaseReturnKey.parse(timer.dedup_key)
    ret = _still_sent_back(tx, key.return_id, key.version)
    if ret is None:
        return
    cycle = tx.get_cycle(ret.cycle_id)
    flow = ctx.flow(cycle.flow_id)
    owner = owner_person(tx, ret)
    round_name = chase_round(timer.id or 0)
    ask_owner(tx, ctx, cycle.id or 0, owner, [ret], now=now, round_name=round_name)
    tx.audit(
        AuditAction.RETURN_CHASED,
        at=now,
        actor="scheduler",
        subject_type=SubjectType.RETURN,
        subject_id=key.return_id,
        cycle_id=cycle.id,
        after={
            "chase": key.number,
            "version": key.version,
            "owner": owner.id,
            "round": round_name,
            "sent_back_on": _ladder(flow, ret).sent_back_on.isoformat(),
        },
    )
    late = passed_long_ago(flow, timer.due_at, now)
    _schedule(tx, flow, ret, key.number + 1, now=now, after=local_day(now), caught_up=late)


def escalate_return(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    """Tell the owner's line manager (or the performance team) the return is not back."""
    key = _escalation_key(timer.dedup_key)
    ret = _still_sent_back(tx, key.return_id, key.version)
    if ret is None:
        return
    cycle = tx.get_cycle(ret.cycle_id)
    flow = ctx.flow(cycle.flow_id)
    if timer_action(flow, TimerKind.ESCALATE_RETURN, timer.due_at, now, later_due=False) is (
        TimerAction.PUT_OFF
    ):
        until = put_off_to(flow, now)
        tx.schedule_timer(
            TimerKind.ESCALATE_RETURN,
            due_at=until,
            dedup_key=str(PutOffEscalateReturnKey(key.return_id, key.version, local_day(until))),
            subject_type=SubjectType.RETURN,
            subject_id=key.return_id,
            payload=dict(timer.payload),
            now=now,
        )
        audit_caught_up(
            tx,
            timer,
            AuditAction.TIMER_PUT_OFF,
            cycle_id=cycle.id,
            now=now,
            to=until.isoformat(),
            why="its moment passed long ago: the owner is chased first",
        )
        return
    owner = owner_person(tx, ret)
    to = escalation_recipients(StoreDirectory(tx, flow), flow, owner)
    indicator = tx.find_indicator(flow.id, ret.indicator_key)
    name = indicator.name if indicator else ret.indicator_key
    why = sent_back(tx, ret)
    how = "reopened for correction" if why and why.correction else "sent back"
    on = format_date(why.at if why else _ladder(flow, ret).sent_back_on)
    chases = len(_ladder(flow, ret).reminders)
    reminders = "1 reminder" if chases == 1 else f"{chases} reminders"
    send_mail(
        tx,
        ctx,
        to=to or [ctx.config.service_mailbox],
        cc=[owner.email],
        subject=one_line(f"Not returned: {owner.name}'s {name} for {cycle.period}, {how} on {on}"),
        lines=[
            f"{owner.name}'s {flow.name} figure for {name}, {cycle.period}, was {how} "
            f"on {on} by {why.by_name if why else 'someone'} for this reason:",
            why.reason if why else "no reason was given",
            "",
            f"It has not been returned after {reminders}.",
        ],
        dedup_key=ReturnEscalationMailKey(key.return_id, key.version),
        now=now,
    )
    tx.audit(
        AuditAction.RETURN_ESCALATED,
        at=now,
        actor="scheduler",
        subject_type=SubjectType.RETURN,
        subject_id=key.return_id,
        cycle_id=cycle.id,
        after={"version": key.version, "owner": owner.id, "to": to},
    )
