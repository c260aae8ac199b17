"""A cycle's dates from the flow's schedule, counted in working days."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta

from m365perf.domain.calendar import WorkingCalendar
from m365perf.domain.kinds import HolidayCalendar
from m365perf.domain.periods import Period
from m365perf.flows.model import Flow

#: How many overdue chasers a plan lists when the flow never escalates.
_CHASERS_SHOWN = 3
#: Working days between chases of a sent-back return when the flow names no interval.
_CHASE_EVERY = 2
#: How many chases a sent-back return gets when the flow never escalates.
_CHASES_WITHOUT_ESCALATION = 2


@dataclass(frozen=True)
class Reminder:
    """A reminder date and what it is (before due, on due, overdue, escalation)."""

    on: date
    kind: str


@dataclass(frozen=True)
class Timetable:
    """When a cycle for one period opens, is due, and chases."""

    period: Period
    opens: date
    due: date
    reminders: tuple[Reminder, ...]
    escalates_on: date | None
    overdue_every_working_days: int | None
    closes_on: date | None = None
    """The flow's date rule for closing (it may close sooner: when every return is approved)."""


def calendar_for(flow: Flow) -> WorkingCalendar:
    """The flow's working calendar, one per nation: building the bank holidays is the
    costly part, and a cycle's views ask for it once per card."""
    return _calendar(flow.calendar)


@functools.lru_cache(maxsize=8)
def _calendar(region: HolidayCalendar) -> WorkingCalendar:
    return WorkingCalendar(region)


def timetable(flow: Flow, period: Period) -> Timetable:
    """Dates for the cycle that collects ``period``: opening, due, reminders, escalation."""
    days = calendar_for(flow)
    schedule = flow.schedule
    anchor = period.end if schedule.collects == "previous_period" else period.start - timedelta(1)
    opens = days.add_working_days(anchor, schedule.opens_on_working_day)
    return timetable_from(flow, period, opens)


def timetable_from(flow: Flow, period: Period, opens: date) -> Timetable:
    """The flow's dates counted from ``opens``: the planned opening day, or the day a
    cycle that opened late actually asked its owners (see ``plan.catchup``)."""
    days = calendar_for(flow)
    due = days.add_working_days(opens, flow.schedule.due_working_days)
    reminders: list[Reminder] = []
    for before in sorted(flow.reminders.before_due_working_days, reverse=True):
        on = days.add_working_days(due, -before)
        if on > opens:
            reminders.append(Reminder(on, f"{before} working day(s) before due"))
    if flow.reminders.on_due:
        reminders.append(Reminder(due, "due today"))
    escalates_on: date | None = None
    every = flow.reminders.overdue_every_working_days
    if every:
        escalate = flow.reminders.escalate
        count = escalate.after_reminders if escalate else _CHASERS_SHOWN
        on = due
        for chase in range(1, count + 1):
            on = days.add_working_days(on, every)
            reminders.append(Reminder(on, f"overdue chaser {chase}"))
        if escalate:
            escalates_on = on
    return Timetable(
        period, opens, due, tuple(reminders), escalates_on, every, close_date(flow, due)
    )


@dataclass(frozen=True)
class SentBackChase:
    """How a return sent back to its owner is chased: from the day it was sent back, with
    the flow's own intervals, whatever the cycle's reminders have done by then."""

    sent_back_on: date
    every_working_days: int
    reminders: tuple[date, ...]
    escalates_on: date | None
    """The day of the last reminder, when the flow escalates (as the cycle's ladder does)."""


def sent_back_chase(flow: Flow, sent_back_on: date) -> SentBackChase:
    """The chasing ladder of a return sent back on ``sent_back_on``.

    A reminder every ``overdue_every_working_days`` (else the first of
    ``before_due_working_days``, else 2), ``escalate.after_reminders`` of them (else 2),
    then the escalation on the day of the last, if the flow escalates.
    """
    days = calendar_for(flow)
    rules = flow.reminders
    every = rules.overdue_every_working_days or next(
        iter(rules.before_due_working_days), _CHASE_EVERY
    )
    count = rules.escalate.after_reminders if rules.escalate else _CHASES_WITHOUT_ESCALATION
    reminders = tuple(days.add_working_days(sent_back_on, every * n) for n in range(1, count + 1))
    escalates_on = reminders[-1] if rules.escalate else None
    return SentBackChase(sent_back_on, every, reminders, escalates_on)


def close_date(flow: Flow, due: date) -> date | None:
    """The day the flow's date rule closes a cycle due on ``due`` (None: no date rule)."""
    days = flow.close.working_days_after_due
    if days is None:
        return None
    return calendar_for(flow).add_working_days(due, days) if days else due


def collected_period(flow: Flow, opening_day: date) -> Period:
    """Which period a cycle opening on ``opening_day`` collects."""
    current = Period.containing(flow.frequency, opening_day)
    return current.previous() if flow.schedule.collects == "previous_period" else current
