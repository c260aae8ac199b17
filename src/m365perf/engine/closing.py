"""Closing a cycle: by the flow's rule (every return approved, or a date after due) or by hand.

Returns still with their owner become ``missed``; the cycle's chasers stop; approvals
already under way go on, so a figure returned in time is still approved and published.
A figure returned after closing is refused or taken as a late correction, as the flow says.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

from m365perf.domain.lifecycle import OPEN_FOR_OWNER, CycleStatus, ReturnStatus
from m365perf.engine.audit import audit_transition
from m365perf.engine.context import EngineContext, at_local, local_day
from m365perf.engine.outbox import send_mail
from m365perf.flows.model import Flow
from m365perf.messages.ids import ClosedMailKey, CloseKey
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.plan.timetable import calendar_for, close_date
from m365perf.store import Cycle, Transaction

CHASERS = (TimerKind.REMINDER, TimerKind.ESCALATE, TimerKind.DIGEST, TimerKind.CLOSE)
"""The cycle's timers that stop when it closes."""

#: Returns that keep a cycle from closing under the "all approved" rule.
_UNFINISHED = frozenset({ReturnStatus.AWAITING, ReturnStatus.RETURNED, ReturnStatus.REJECTED})


@dataclass(frozen=True)
class CycleClosing:
    """What closing a cycle did, or that it was closed already (``closed`` False)."""

    cycle_id: int
    closed: bool
    closed_at: datetime | None
    closed_by: str | None
    reason: str | None
    missed: tuple[str, ...]
    counts: dict[str, int]


def open_for_owner(flow: Flow, cycle: Cycle) -> frozenset[ReturnStatus]:
    """Returns an owner may still (re)submit: after closing, missed ones only if the flow
    takes late figures as corrections."""
    if cycle.status is CycleStatus.CLOSED and flow.close.late_returns == "correction":
        return OPEN_FOR_OWNER | {ReturnStatus.MISSED}
    return OPEN_FOR_OWNER


def cycle_close_date(flow: Flow, cycle: Cycle) -> date | None:
    """When the flow's date rule closes this cycle.

    Counted from its due date, or, for a cycle opened late (a first start, downtime), from
    the day the owners had as long as the flow gives them: nobody is asked and marked
    missed in the same minute.
    """
    days = calendar_for(flow)
    late_due = days.add_working_days(local_day(cycle.opened_at), flow.schedule.due_working_days)
    return close_date(flow, max(cycle.due_date, late_due))


def schedule_close(tx: Transaction, flow: Flow, cycle: Cycle, *, now: datetime) -> None:
    """The close timer of the flow's date rule, at the opening time of the close day.

    Idempotent (one per cycle), so it is safe to call again for cycles already open.
    """
    day = cycle_close_date(flow, cycle)
    if day is None:
        return
    tx.schedule_timer(
        TimerKind.CLOSE,
        due_at=max(at_local(day, flow.schedule.opening_time), now),
        dedup_key=CloseKey(cycle.id or 0).format(),
        subject_type=SubjectType.CYCLE,
        subject_id=cycle.id,
        now=now,
    )


def close_when_all_approved(
    tx: Transaction, ctx: EngineContext, cycle: Cycle, *, now: datetime
) -> CycleClosing | None:
    """Close the cycle if its flow closes on "all approved" and nothing is left to do:
    every return approved and no register row still waiting to be fixed."""
    flow = ctx.flow(cycle.flow_id)
    if not flow.close.all_approved:
        return None
    current = tx.lock_cycle(cycle.id or 0)  # the last two approvals at once: one closes
    if current.status is CycleStatus.CLOSED or current.unroutable:
        return None
    if tx.has_returns(current.id or 0, _UNFINISHED):
        return None
    return close_cycle(tx, ctx, current, by="m365perf", reason="every return is approved", now=now)


def keep_closing(tx: Transaction, ctx: EngineContext, cycle: Cycle, *, now: datetime) -> None:
    """Make sure a cycle that is still open will close by its flow's rule.

    For cycles from before closing existed (migrated) or opened while a rule was off: the
    close timer is scheduled if missing, and a cycle already all approved closes now.
    """
    if cycle.status is CycleStatus.CLOSED or cycle.flow_id not in ctx.flows:
        return
    schedule_close(tx, ctx.flow(cycle.flow_id), cycle, now=now)
    close_when_all_approved(tx, ctx, cycle, now=now)


def close_cycle(
    tx: Transaction, ctx: EngineContext, cycle: Cycle, *, by: str, reason: str, now: datetime
) -> CycleClosing:
    """Close ``cycle`` now: missing returns become missed, chasers stop, the team is told."""
    flow = ctx.flow(cycle.flow_id)
    if cycle.status is CycleStatus.CLOSED:
        return CycleClosing(
            cycle.id or 0,
            False,
            cycle.closed_at,
            cycle.closed_by,
            cycle.close_reason,
            (),
            _counts(tx, cycle),
        )
    closed = tx.close_cycle(cycle.id or 0, cycle.version, by=by, reason=reason, now=now)
    owed = {r.id: r for r in tx.list_returns(cycle_id=cycle.id, status=OPEN_FOR_OWNER)}
    missed = [(owed[r.id], r) for r in tx.miss_returns(cycle.id or 0, now=now)]
    tx.cancel_timers(SubjectType.CYCLE, cycle.id, kinds=CHASERS, now=now)
    for before, ret in missed:
        audit_transition(tx, AuditAction.RETURN_MISSED, actor=by, before=before, after=ret, at=now)
    counts = _counts(tx, closed)
    audit_transition(
        tx,
        AuditAction.CYCLE_CLOSED,
        actor=by,
        before=cycle,
        after=closed,
        at=now,
        reason=reason,
        **counts,
    )
    keys = tuple(r.indicator_key for _, r in missed)
    late = (
        "A figure returned from now on is taken as a late correction."
        if flow.close.late_returns == "correction"
        else "Figures returned from now on are refused."
    )
    send_mail(
        tx,
        ctx,
        to=flow.performance_team or [ctx.config.service_mailbox],
        subject=f"{flow.name} {cycle.period} closed: {len(keys)} return(s) missed",
        lines=[
            f"{flow.name} {cycle.period} closed ({reason}).",
            ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in counts.items()),
            *([f"Missed: {', '.join(keys)}", late] if keys else []),
        ],
        dedup_key=ClosedMailKey(cycle.id or 0),
        now=now,
    )
    return CycleClosing(cycle.id or 0, True, now, by, reason, keys, counts)


def _counts(tx: Transaction, cycle: Cycle) -> dict[str, int]:
    counts = Counter(r.status for r in tx.list_returns(cycle_id=cycle.id))
    return {status.value: counts[status] for status in ReturnStatus}
