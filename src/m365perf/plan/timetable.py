"""A cycle's dates from the flow's schedule, counted in working days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from m365perf.domain.calendar import WorkingCalendar
from m365perf.domain.periods import Period
from m365perf.flows.model import Flow

#: How many overdue chasers a plan lists when the flow never escalates.
_CHASERS_SHOWN = 3


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
    return WorkingCalendar(flow.calendar)


def timetable(flow: Flow, period: Period) -> Timetable:
    """Dates for the cycle that collects ``period``: opening, due, reminders, escalation."""
    days = calendar_for(flow)
    schedule = flow.schedule
    anchor = period.end if schedule.collects == "previous_period" else period.start - timedelta(1)
    opens = days.add_working_days(anchor, schedule.opens_on_working_day)
    due = days.add_working_days(opens, schedule.due_working_days)
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
