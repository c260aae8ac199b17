"""Catch-up after a late start or downtime: what is still worth sending, and what is not.

A first start on an empty database, or a restart after days down, must not send every
reminder and escalation whose moment has passed. These rules decide, with ``now``
passed in (no clock is read): the service uses them to choose the period to open, the
engine to schedule and fire its timers, and ``m365perf plan --from-now`` to show what a
start would send. See docs/decisions.md ("A safe first start and catch-up").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from m365perf.domain.periods import Period
from m365perf.flows.model import Flow
from m365perf.messages.names import TimerKind
from m365perf.plan.timetable import (
    Timetable,
    calendar_for,
    collected_period,
    sent_back_chase,
    timetable,
    timetable_from,
)

LONDON = ZoneInfo("Europe/London")
#: An escalation follows the reminder of its day by this much.
ESCALATION_AFTER = timedelta(minutes=5)

_REMINDERS = frozenset({TimerKind.REMINDER, TimerKind.CHASE_RETURN})
_ESCALATIONS = frozenset({TimerKind.ESCALATE, TimerKind.ESCALATE_RETURN})


def allowance(flow: Flow) -> timedelta:
    """How late a reminder or escalation may still go as planned (``catch_up_hours``)."""
    return timedelta(hours=flow.reminders.catch_up_hours)


def local_moment(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=LONDON)


def local_day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def passed_long_ago(flow: Flow, moment: datetime, now: datetime) -> bool:
    """Whether ``moment`` passed more than the flow's catch-up allowance before ``now``."""
    return now - moment > allowance(flow)


# --- which period a start opens ------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """The period a start at ``now`` would open for one flow, or why it opens none."""

    flow_id: str
    period: Period
    planned: Timetable
    opens: bool
    reason: str


def opening_now(flow: Flow, now: datetime) -> Opening:
    """The flow's current collected period, and whether the service opens it at ``now``.

    Never a period before ``collect_from``; without ``collect_from``, only a period whose
    planned opening passed less than the catch-up allowance ago (a first start does not
    open a period nobody said to collect).
    """
    period = collected_period(flow, local_day(now))
    planned = timetable(flow, period)
    opens_at = local_moment(planned.opens, flow.schedule.opening_time)
    first = flow.first_period
    if now < opens_at:
        reason = f"{period.label} opens on {opens_at:%Y-%m-%d at %H:%M}"
        return Opening(flow.id, period, planned, False, reason)
    if first is not None and period < first:
        reason = f"{period.label} is before collect_from ({first.label})"
        return Opening(flow.id, period, planned, False, reason)
    if first is None and passed_long_ago(flow, opens_at, now):
        reason = (
            f"{period.label} was due to open on {planned.opens.isoformat()}, longer ago than "
            f"the catch-up allowance ({flow.reminders.catch_up_hours} hours); set "
            f"collect_from: '{period.label}' in the flow to collect it late"
        )
        return Opening(flow.id, period, planned, False, reason)
    if passed_long_ago(flow, opens_at, now):
        reason = f"{period.label} opens late (planned for {planned.opens.isoformat()})"
    else:
        reason = f"{period.label} opens now"
    return Opening(flow.id, period, planned, True, reason)


def before_collect_from(flow: Flow, period: Period) -> bool:
    """Whether ``period`` is one the flow does not collect (before ``collect_from``)."""
    first = flow.first_period
    return first is not None and period < first


# --- the dates of a cycle that opens late --------------------------------------------


@dataclass(frozen=True)
class Chaser:
    """One reminder of a cycle's ladder: its number (the timer's), kind and moment."""

    number: int
    kind: str
    at: datetime


@dataclass(frozen=True)
class Ladder:
    """A cycle's dates as opened at ``asked_at``: what is scheduled and what is not."""

    planned: Timetable
    timetable: Timetable
    reminders: tuple[Chaser, ...]
    skipped: tuple[Chaser, ...]
    """Reminders whose moment had passed when the owners were first asked: the request
    itself says everything they would have said."""
    escalates_at: datetime | None

    @property
    def late(self) -> bool:
        """The cycle opened too late for its planned dates: they are counted from the ask."""
        return self.timetable.due != self.planned.due


def ladder_at_opening(flow: Flow, period: Period, asked_at: datetime) -> Ladder:
    """The dates a cycle for ``period`` gets when its owners are first asked at ``asked_at``.

    Asked with at least the minimum notice (:func:`short_notice`), the cycle keeps the
    planned dates. Later than that, the owners never had the time the flow promises, so
    the whole timetable (due date, reminders, escalation, closing) is counted from the
    day of the ask, with the flow's ``due_working_days``. Reminders already past are
    skipped.
    """
    planned = timetable(flow, period)
    plan = planned
    if short_notice(flow, local_day(asked_at), planned.due):
        plan = timetable_from(flow, period, local_day(asked_at))
    at = flow.schedule.opening_time
    chasers = [
        Chaser(number, r.kind, local_moment(r.on, at))
        for number, r in enumerate(plan.reminders, start=1)
    ]
    escalates_at = None
    if plan.escalates_on is not None:
        escalates_at = local_moment(plan.escalates_on, at) + ESCALATION_AFTER
        if escalates_at <= asked_at:
            escalates_at = None
    return Ladder(
        planned,
        plan,
        tuple(c for c in chasers if c.at > asked_at),
        tuple(c for c in chasers if c.at <= asked_at),
        escalates_at,
    )


# --- timers that come due late -------------------------------------------------------


class TimerAction(StrEnum):
    """What a timer that has come due does."""

    SEND = "send"
    """As planned."""
    FOLD = "fold"
    """Nothing: a later reminder of the same ladder is due too and says it all."""
    PUT_OFF = "put_off"
    """An escalation whose moment passed long ago: the owner gets the (folded) reminder
    first, and the escalation waits one chase interval from now."""
    REMIND_ONLY = "remind_only"
    """An approver timeout long past: remind the approvers, escalate at the next round."""


def timer_action(
    flow: Flow, kind: TimerKind | str, due_at: datetime, now: datetime, *, later_due: bool
) -> TimerAction:
    """What a timer of ``kind`` due at ``due_at`` does when it fires at ``now``.

    ``later_due``: a later reminder of the same ladder (cycle or sent-back return) is
    also due by ``now``, so this one is folded into it: one message, not several.
    """
    kind = TimerKind(kind)
    if kind in _REMINDERS and later_due:
        return TimerAction.FOLD
    if passed_long_ago(flow, due_at, now):
        if kind in _ESCALATIONS:
            return TimerAction.PUT_OFF
        if kind is TimerKind.STEP_TIMEOUT:
            return TimerAction.REMIND_ONLY
    return TimerAction.SEND


def chase_interval(flow: Flow) -> int:
    """Working days between chases (the sent-back ladder's interval)."""
    return sent_back_chase(flow, date(2000, 1, 3)).every_working_days


def put_off_to(flow: Flow, now: datetime) -> datetime:
    """Where an escalation put off at ``now`` goes: one chase interval later, at the
    flow's opening time plus the usual few minutes after that day's reminders."""
    day = calendar_for(flow).add_working_days(local_day(now), chase_interval(flow))
    return local_moment(day, flow.schedule.opening_time) + ESCALATION_AFTER


def next_chase_after_late(flow: Flow, now: datetime) -> date:
    """A sent-back chase that went out long after its moment: the next one is one chase
    interval after it, not the next morning."""
    return calendar_for(flow).add_working_days(local_day(now), chase_interval(flow))


def minimum_notice(flow: Flow) -> int:
    """The working days an owner must have had before a due date to be held to it:
    half the flow's ``due_working_days``, rounded up."""
    return -(-flow.schedule.due_working_days // 2)


def short_notice(flow: Flow, asked_on: date, due: date) -> bool:
    """Whether an owner first asked on ``asked_on`` had too little time before ``due``
    (fewer working days than :func:`minimum_notice`, or none at all)."""
    return calendar_for(flow).add_working_days(asked_on, minimum_notice(flow)) > due


def escalation_withheld(flow: Flow, first_asked: datetime, due: date) -> bool:
    """Whether an owner was first asked so near the cycle's due date (a register row
    fixed later) that it was never really their deadline: they are not escalated."""
    return short_notice(flow, local_day(first_asked), due)
