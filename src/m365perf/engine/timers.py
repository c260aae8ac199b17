"""Timers firing: reminders, escalations, chases of sent-back returns and of overdue
improvement actions, approver timeouts, digests, refreshes.

Each timer is completed first in the transaction that acts on it, so two workers
never both act on one timer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, time, timedelta

from m365perf.cards.summary import overdue_subject
from m365perf.domain.approvers import Person
from m365perf.domain.lifecycle import CURRENT_STEP
from m365perf.engine.actions import chase_action
from m365perf.engine.audit import audit_caught_up
from m365perf.engine.chain import send_approval_cards
from m365perf.engine.chasing import chase_return, escalate_return, escalation_recipients
from m365perf.engine.closing import close_cycle
from m365perf.engine.context import EngineContext, at_local, local_day
from m365perf.engine.cycles import ask_owner, schedule_digest
from m365perf.engine.digest import draw_digest
from m365perf.engine.outbox import queue, send_mail
from m365perf.engine.people import StoreDirectory
from m365perf.engine.publish import refreshes_today
from m365perf.engine.returns import owner_person
from m365perf.messages import CheckRefresh, Refresh
from m365perf.messages.ids import (
    CheckRefreshKey,
    DedupKeyError,
    DeferredRefreshKey,
    DigestKey,
    DigestMailKey,
    EscalationMailKey,
    PutOffEscalateKey,
    RefreshKey,
    RefreshRequestKey,
    StepTimeoutKey,
    parse_timer_key,
    reminder_round,
)
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.plan.catchup import TimerAction, escalation_withheld, put_off_to, timer_action
from m365perf.plan.timetable import calendar_for, close_date
from m365perf.store import (
    DEFAULT_LEASE,
    CycleStatus,
    Return,
    ReturnStatus,
    StepStatus,
    Store,
    Timer,
    TimerStatus,
    Transaction,
)

POLL_EVERY = timedelta(minutes=1)
MAX_POLLS = 120


def fire_due_timers(
    store: Store,
    ctx: EngineContext,
    *,
    worker: str,
    now: datetime,
    limit: int = 50,
    lease: timedelta = DEFAULT_LEASE,
) -> int:
    """Act on every timer due by ``now``; returns how many were acted on."""
    fired = 0
    for timer in store.claim_due_timers(now, limit, worker, lease=lease):
        with store.transaction() as tx:
            if not tx.complete_timer(timer.id or 0, now=now):
                continue
            _HANDLERS[TimerKind(timer.kind)](tx, ctx, timer, now)
            fired += 1
    return fired


def _open_cycle(tx: Transaction, timer: Timer) -> bool:
    cycle = tx.get_cycle(timer.subject_id or 0)
    return cycle.status is not CycleStatus.CLOSED


def _awaiting_by_owner(tx: Transaction, cycle_id: int) -> dict[str, list[Return]]:
    """Returns not returned yet, by owner.

    A return sent back to its owner is left out: it has a ladder of its own from the day
    it was sent back (engine/chasing.py), so it is never chased twice on one day.
    """
    owners: dict[str, list[Return]] = {}
    for ret in tx.list_returns(cycle_id=cycle_id, status=ReturnStatus.AWAITING):
        owners.setdefault(ret.owner_id or "", []).append(ret)
    return owners


def _later_reminder_due(tx: Transaction, timer: Timer, now: datetime) -> bool:
    """Whether a later reminder of the same cycle is due by ``now`` too (after downtime)."""
    number = int(timer.payload.get("number", 0))
    return any(
        t.kind == TimerKind.REMINDER
        and t.id != timer.id
        and t.due_at <= now
        and int(t.payload.get("number", 0)) > number
        for t in tx.list_timers(
            subject_type=SubjectType.CYCLE,
            subject_id=timer.subject_id,
            status=(TimerStatus.PENDING, TimerStatus.CLAIMED),
        )
    )


def _reminder(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    if not _open_cycle(tx, timer):
        return
    cycle_id = timer.subject_id or 0
    number = int(timer.payload.get("number", 0))
    flow = ctx.flow(tx.get_cycle(cycle_id).flow_id)
    later = _later_reminder_due(tx, timer, now)
    if timer_action(flow, TimerKind.REMINDER, timer.due_at, now, later_due=later) is (
        TimerAction.FOLD
    ):
        audit_caught_up(
            tx,
            timer,
            AuditAction.TIMER_FOLDED,
            cycle_id=cycle_id,
            now=now,
            reminder=number,
            kind=timer.payload.get("kind"),
            why="a later reminder was due too: one message instead of several",
        )
        return
    for owner_id, returns in _awaiting_by_owner(tx, cycle_id).items():
        owner = owner_person(tx, returns[0])
        ask_owner(
            tx,
            ctx,
            cycle_id,
            owner,
            returns,
            now=now,
            round_name=reminder_round(number),
            reminder=number or None,
        )
        tx.audit(
            AuditAction.OWNER_REMINDED,
            at=now,
            actor="scheduler",
            subject_type=SubjectType.OWNER,
            subject_id=owner_id,
            cycle_id=cycle_id,
            after={
                "reminder": number,
                "kind": timer.payload.get("kind"),
                "awaiting": [r.indicator_key for r in returns],
            },
        )


def _escalate(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    if not _open_cycle(tx, timer):
        return
    cycle = tx.get_cycle(timer.subject_id or 0)
    flow = ctx.flow(cycle.flow_id)
    if timer_action(flow, TimerKind.ESCALATE, timer.due_at, now, later_due=False) is (
        TimerAction.PUT_OFF
    ):
        until = put_off_to(flow, now)
        tx.schedule_timer(
            TimerKind.ESCALATE,
            due_at=until,
            dedup_key=PutOffEscalateKey(cycle.id or 0, local_day(until)).format(),
            subject_type=SubjectType.CYCLE,
            subject_id=cycle.id,
            payload={"put_off_from": timer.due_at.isoformat()},
            now=now,
        )
        audit_caught_up(
            tx,
            timer,
            AuditAction.TIMER_PUT_OFF,
            cycle_id=cycle.id,
            now=now,
            to=until.isoformat(),
            why="its moment passed long ago: the owners are reminded first",
        )
        return
    directory = StoreDirectory(tx, flow)
    for owner_id, returns in _awaiting_by_owner(tx, cycle.id or 0).items():
        owner = owner_person(tx, returns[0])
        first_asked = min(r.created_at for r in returns)
        if escalation_withheld(flow, first_asked, cycle.due_date):
            tx.audit(
                AuditAction.OWNER_NOT_ESCALATED,
                at=now,
                actor="scheduler",
                subject_type=SubjectType.OWNER,
                subject_id=owner_id,
                cycle_id=cycle.id,
                after={
                    "first_asked": first_asked.isoformat(),
                    "why": "first asked too near the due date: it was never their deadline",
                    "awaiting": [r.indicator_key for r in returns],
                },
            )
            continue
        to = escalation_recipients(directory, flow, owner)
        names = []
        for ret in returns:
            indicator = tx.find_indicator(flow.id, ret.indicator_key)
            names.append(indicator.name if indicator else ret.indicator_key)
        send_mail(
            tx,
            ctx,
            to=to or [ctx.config.service_mailbox],
            cc=[owner.email],
            subject=overdue_subject(owner.name, flow.name, cycle.period),
            lines=[
                f"{owner.name} has not returned these {flow.name} figures for {cycle.period}, "
                f"due {cycle.due_date.isoformat()}, after reminders:",
                "",
                *names,
            ],
            dedup_key=EscalationMailKey(cycle.id or 0, owner_id),
            now=now,
        )
        tx.audit(
            AuditAction.OWNER_ESCALATED,
            at=now,
            actor="scheduler",
            subject_type=SubjectType.OWNER,
            subject_id=owner_id,
            cycle_id=cycle.id,
            after={"to": to, "awaiting": [r.indicator_key for r in returns]},
        )


def _digest(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    if not _open_cycle(tx, timer):
        return
    cycle = tx.get_cycle(timer.subject_id or 0)
    flow = ctx.flow(cycle.flow_id)
    returns = tx.list_returns(cycle_id=cycle.id)
    counts = Counter(r.status for r in returns)
    with_owner = counts[ReturnStatus.AWAITING] + counts[ReturnStatus.REJECTED]
    late = with_owner if local_day(now) > cycle.due_date else 0
    returned = len(returns) - counts[ReturnStatus.AWAITING]
    lines = [
        f"{flow.name} {cycle.period} (due {cycle.due_date.isoformat()}):",
        f"returned {returned} of {len(returns)}",
        f"outstanding {counts[ReturnStatus.AWAITING]}"
        + (f", of which late {late}" if late else ""),
        f"awaiting approval {counts[ReturnStatus.RETURNED]}",
        f"rejected and back with the owner {counts[ReturnStatus.REJECTED]}",
        f"approved {counts[ReturnStatus.APPROVED]}",
    ]
    if flow.performance_team:
        send_mail(
            tx,
            ctx,
            to=flow.performance_team,
            subject=f"Daily digest: {flow.name} {cycle.period}",
            lines=lines,
            dedup_key=DigestMailKey(DigestKey.parse(timer.dedup_key)),
            now=now,
        )
    if counts[ReturnStatus.APPROVED] < len(returns):
        schedule_digest(tx, flow, cycle.id or 0, after=now, now=now)


def _step_timeout(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    step = tx.get_step(timer.subject_id or 0)
    ret = tx.get_return(step.return_id)
    in_approval = ret.status is ReturnStatus.RETURNED and ret.version == step.return_version
    if step.status not in CURRENT_STEP or not in_approval:
        return
    cycle = tx.get_cycle(ret.cycle_id)
    flow = ctx.flow(cycle.flow_id)
    rule = next((s for s in flow.approval.steps if s.name == step.name), None)
    round_number = int(timer.payload.get("round", 1))
    directory = StoreDirectory(tx, flow)
    escalate_to = rule.on_timeout.escalate_to if rule else None
    action = timer_action(flow, TimerKind.STEP_TIMEOUT, timer.due_at, now, later_due=False)
    if escalate_to and step.status is StepStatus.ASKED and action is TimerAction.REMIND_ONLY:
        audit_caught_up(
            tx,
            timer,
            AuditAction.TIMER_PUT_OFF,
            cycle_id=cycle.id,
            now=now,
            step=step.name,
            why="its moment passed long ago: the approvers are reminded; escalation at the "
            "next timeout",
        )
    elif escalate_to and step.status is StepStatus.ASKED:
        people: list[Person] = []
        if escalate_to == "line_manager":
            for approver_id in step.approvers:
                approver = directory.find(approver_id)
                manager = directory.line_manager(approver) if approver else None
                if manager and manager.id != ret.owner_id:
                    people.append(manager)
        else:
            people = [p for p in directory.performance_team() if p.id != ret.owner_id]
        added = [p.id for p in people if p.id not in step.approvers]
        if added:
            step = tx.escalate_step(step.id or 0, step.version, [*step.approvers, *added], at=now)
            tx.audit(
                AuditAction.STEP_ESCALATED,
                at=now,
                actor="scheduler",
                subject_type=SubjectType.RETURN,
                subject_id=ret.id or 0,
                cycle_id=cycle.id,
                after={"step": step.name, "added": added},
            )
    if rule is None or rule.on_timeout.remind or escalate_to or action is TimerAction.REMIND_ONLY:
        chain = tx.list_steps(ret.id or 0, step.return_version)
        send_approval_cards(
            tx, ctx, cycle, ret, chain, step, now=now, round_name=f"timeout{round_number}"
        )
    if rule and rule.timeout_working_days:
        due = calendar_for(flow).add_working_days(local_day(now), rule.timeout_working_days)
        tx.schedule_timer(
            TimerKind.STEP_TIMEOUT,
            due_at=at_local(due, time(9, 0)),
            dedup_key=StepTimeoutKey(step.id or 0, round_number + 1).format(),
            subject_type=SubjectType.STEP,
            subject_id=step.id,
            payload={"round": round_number + 1},
            now=now,
        )


def _refresh(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    flow = ctx.flow(str(timer.payload["flow_id"]))
    if flow.powerbi is None:
        return
    dataset = flow.powerbi.dataset
    used = refreshes_today(tx, dataset, now) + flow.powerbi.scheduled_refreshes_per_day
    if used >= flow.powerbi.daily_budget:
        tomorrow = local_day(now) + timedelta(days=1)
        tx.schedule_timer(
            TimerKind.REFRESH,
            due_at=at_local(tomorrow, time(0, 30)),
            dedup_key=DeferredRefreshKey(dataset, tomorrow).format(),
            subject_type=SubjectType.FLOW,
            payload=dict(timer.payload),
            now=now,
        )
        tx.audit(
            AuditAction.POWERBI_REFRESH_DEFERRED,
            at=now,
            actor="scheduler",
            subject_type=SubjectType.DATASET,
            subject_id=dataset,
            after={"used_today": used, "daily_budget": flow.powerbi.daily_budget},
        )
        return
    queue(
        tx,
        ctx,
        Refresh(workspace=flow.powerbi.workspace, dataset=dataset, flow_id=flow.id),
        dedup_key=RefreshRequestKey(_refresh_timer_key(timer.dedup_key)),
        now=now,
    )


def _refresh_timer_key(text: str) -> RefreshKey | DeferredRefreshKey:
    """A refresh timer's key: debounced (due at a time) or deferred (to a day)."""
    key = parse_timer_key(text)
    if not isinstance(key, RefreshKey | DeferredRefreshKey):
        raise DedupKeyError(f"{text!r} is not the key of a refresh timer")
    return key


def _refresh_poll(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    # The timer's payload is the check to queue (see sent.py).
    check = CheckRefresh.model_validate(timer.payload)
    queue(tx, ctx, check, dedup_key=CheckRefreshKey(check.request_id, check.poll), now=now)


def _close(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    cycle = tx.get_cycle(timer.subject_id or 0)
    flow = ctx.flow(cycle.flow_id)
    day = close_date(flow, cycle.due_date)
    days = flow.close.working_days_after_due
    when = f"{days} working day(s) after the due date" if days else "on the due date"
    if day is not None:
        close_cycle(tx, ctx, cycle, by="scheduler", reason=f"the flow closes it {when}", now=now)


Handler = Callable[[Transaction, EngineContext, Timer, datetime], None]

_HANDLERS: dict[TimerKind, Handler] = {
    TimerKind.REMINDER: _reminder,
    TimerKind.ESCALATE: _escalate,
    TimerKind.DIGEST: _digest,
    TimerKind.STEP_TIMEOUT: _step_timeout,
    TimerKind.REFRESH: _refresh,
    TimerKind.REFRESH_POLL: _refresh_poll,
    TimerKind.CLOSE: _close,
    TimerKind.CHASE_RETURN: chase_return,
    TimerKind.ESCALATE_RETURN: escalate_return,
    TimerKind.CHASE_ACTION: chase_action,
    TimerKind.DIGEST_CARD: draw_digest,
}
