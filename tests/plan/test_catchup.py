"""The catch-up rules: which period a start opens, the dates a late cycle gets, and what a
timer that comes due late does. Pure: every moment is passed in."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365perf.cli import main
from m365perf.domain.periods import Period
from m365perf.flows import load_flow
from m365perf.messages.names import TimerKind
from m365perf.plan.catchup import (
    TimerAction,
    escalation_withheld,
    ladder_at_opening,
    opening_now,
    put_off_to,
    short_notice,
    timer_action,
)
from m365perf.plan.timetable import timetable

ROOT = Path(__file__).resolve().parents[2]
ANNUAL = load_flow(ROOT / "flows" / "annual-statutory-returns.yaml")
MONTHLY = load_flow(ROOT / "flows" / "monthly-corporate-kpis.yaml")
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"
DEC_1 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # Tuesday


def test_a_start_months_late_opens_the_period_collected_from_with_dates_from_today() -> None:
    opening = opening_now(ANNUAL, DEC_1)
    assert opening.opens and opening.period.label == "2025/26"
    assert opening.reason == "2025/26 opens late (planned for 2026-04-16)"
    ladder = ladder_at_opening(ANNUAL, opening.period, DEC_1)
    assert ladder.late and ladder.planned.due == date(2026, 5, 8)
    # 15 working days from Tuesday 1 December: Tuesday 22nd, as a cycle opened today.
    assert ladder.timetable.due == date(2026, 12, 22)
    assert [c.kind for c in ladder.reminders] == [
        "5 working day(s) before due",
        "2 working day(s) before due",
        "due today",
        "overdue chaser 1",
    ]
    assert all(c.at > DEC_1 for c in ladder.reminders) and ladder.skipped == ()
    assert ladder.escalates_at == datetime(2026, 12, 24, 9, 5, tzinfo=UTC)


def test_no_period_before_collect_from_and_none_long_overdue_without_it() -> None:
    later = ANNUAL.model_copy(update={"collect_from": "2026/27"})
    refused = opening_now(later, DEC_1)
    assert not refused.opens
    assert refused.reason == "2025/26 is before collect_from (2026/27)"
    unset = opening_now(ANNUAL.model_copy(update={"collect_from": None}), DEC_1)
    assert not unset.opens and "set collect_from: '2025/26'" in unset.reason


def test_without_collect_from_a_period_opens_within_the_allowance() -> None:
    flow = MONTHLY.model_copy(update={"collect_from": None})
    opens = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)  # 2026-10's planned opening
    assert opening_now(flow, opens - timedelta(minutes=1)).opens is False
    assert opening_now(flow, opens + timedelta(hours=23)).opens is True
    assert opening_now(flow, opens + timedelta(hours=25)).opens is False


def test_a_cycle_opened_a_day_late_keeps_its_dates_when_the_notice_is_enough() -> None:
    period = Period.parse("2026-10")
    planned = timetable(MONTHLY, period)
    a_day_late = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
    ladder = ladder_at_opening(MONTHLY, period, a_day_late)
    assert not ladder.late and ladder.timetable == planned
    # Asked on Monday 9th, two days before the due date: fewer than half the five days.
    ladder = ladder_at_opening(MONTHLY, period, datetime(2026, 11, 9, 10, 0, tzinfo=UTC))
    assert ladder.late and ladder.timetable.due == date(2026, 11, 16)


def test_short_notice_is_half_the_working_days_to_due() -> None:
    due = date(2026, 11, 11)  # Wednesday; the monthly flow gives 5 working days
    assert not short_notice(MONTHLY, date(2026, 11, 6), due)  # 9, 10, 11: three days
    assert short_notice(MONTHLY, date(2026, 11, 9), due)  # 10, 11: two
    assert short_notice(MONTHLY, date(2026, 11, 12), due)  # after it
    asked_late = datetime(2026, 11, 10, 14, 0, tzinfo=UTC)
    assert escalation_withheld(MONTHLY, asked_late, due)
    assert not escalation_withheld(MONTHLY, datetime(2026, 11, 4, 9, 0, tzinfo=UTC), due)


@pytest.mark.parametrize(
    ("kind", "late_by", "later_due", "action"),
    [
        (TimerKind.REMINDER, timedelta(minutes=5), False, TimerAction.SEND),
        (TimerKind.REMINDER, timedelta(days=9), False, TimerAction.SEND),  # the one left
        (TimerKind.REMINDER, timedelta(days=9), True, TimerAction.FOLD),
        (TimerKind.CHASE_RETURN, timedelta(hours=1), True, TimerAction.FOLD),
        (TimerKind.ESCALATE, timedelta(hours=23), False, TimerAction.SEND),
        (TimerKind.ESCALATE, timedelta(hours=25), False, TimerAction.PUT_OFF),
        (TimerKind.ESCALATE_RETURN, timedelta(days=3), False, TimerAction.PUT_OFF),
        (TimerKind.STEP_TIMEOUT, timedelta(hours=2), False, TimerAction.SEND),
        (TimerKind.STEP_TIMEOUT, timedelta(days=2), False, TimerAction.REMIND_ONLY),
        (TimerKind.DIGEST, timedelta(days=9), False, TimerAction.SEND),
    ],
)
def test_what_a_timer_due_late_does(
    kind: TimerKind, late_by: timedelta, later_due: bool, action: TimerAction
) -> None:
    due_at = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    assert timer_action(MONTHLY, kind, due_at, due_at + late_by, later_due=later_due) is action


def test_a_put_off_escalation_waits_one_chase_interval() -> None:
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert put_off_to(MONTHLY, friday) == datetime(2026, 11, 24, 9, 5, tzinfo=UTC)  # Tuesday
    tighter = MONTHLY.model_copy(
        update={"reminders": MONTHLY.reminders.model_copy(update={"catch_up_hours": 0})}
    )
    due_at = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    assert (
        timer_action(
            tighter, TimerKind.ESCALATE, due_at, due_at + timedelta(minutes=1), later_due=False
        )
        is TimerAction.PUT_OFF
    )


def test_plan_from_now_shows_per_person_what_a_start_would_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    sources = ["--register", str(REGISTER), "--directory", str(DIRECTORY)]
    result = CliRunner().invoke(
        main,
        [
            "plan",
            "annual-statutory-returns",
            "--from-now",
            "--now",
            "2026-12-01T09:30",
            "--json",
            *sources,
        ],
    )
    assert result.exit_code == 0, result.output
    started = json.loads(result.stdout)
    assert (started["period"], started["opens"], started["late"]) == ("2025/26", True, True)
    assert (started["planned_due"], started["due"]) == ("2026-05-08", "2026-12-22")
    at_start = {
        person: [m for m in messages if m["at"] == started["now"]]
        for person, messages in started["people"].items()
    }
    assert at_start and all(len(found) <= 1 for found in at_start.values())
    requests = [m for found in at_start.values() for m in found if m["kind"] == "request"]
    assert requests and all(
        "This was due on Friday 8 May 2026. This request reaches you late, so you have until "
        "Tuesday 22 December 2026." in m["wording"]
        for m in requests
    )
    escalations = [
        m for messages in started["people"].values() for m in messages if m["kind"] == "escalation"
    ]
    assert escalations and {m["at"] for m in escalations} == {"2026-12-24T09:05:00+00:00"}
    assert all(
        m["wording"].startswith("Overdue: ")
        and "'s Annual statutory returns for 2025/26" in m["wording"]  # not "returns returns"
        for m in escalations
    )

    text = CliRunner().invoke(
        main,
        ["plan", "annual-statutory-returns", "--from-now", "--now", "2026-12-01T09:30", *sources],
    )
    assert text.exit_code == 0, text.output
    assert "Opens 2025/26: 2025/26 opens late (planned for 2026-04-16)" in text.output
    assert "1 message(s) at the start" in text.output

    none = CliRunner().invoke(
        main,
        ["plan", "monthly-corporate-kpis", "--from-now", "--now", "2026-12-01T09:30", *sources],
    )
    assert none.exit_code == 0, none.output
    assert "Opens nothing: 2026-11 opens on 2026-12-03 at 09:00" in none.output.splitlines()


def test_plan_wants_a_period_or_from_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        main, ["plan", "monthly-corporate-kpis", "--register", str(REGISTER)]
    )
    assert result.exit_code == 2
    assert "give --period PERIOD, or --from-now (not both)" in result.output
    bad = CliRunner().invoke(
        main,
        [
            "plan",
            "monthly-corporate-kpis",
            "--from-now",
            "--now",
            "1 Dec",
            "--register",
            str(REGISTER),
        ],
    )
    assert bad.exit_code == 2 and "'1 Dec' is not a moment" in bad.output
