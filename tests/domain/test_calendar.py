"""Working days by UK nation. Dates checked against gov.uk's published bank holidays."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m365perf.domain.calendar import WorkingCalendar
from m365perf.domain.kinds import HolidayCalendar

ENGLAND = WorkingCalendar()
SCOTLAND = WorkingCalendar(HolidayCalendar.SCOTLAND)
NORTHERN_IRELAND = WorkingCalendar(HolidayCalendar.NORTHERN_IRELAND)


def test_christmas_2026_boxing_day_substitute_is_monday_28th() -> None:
    # 25 Dec 2026 is a Friday, so Boxing Day (Saturday) moves to Monday 28 December.
    assert ENGLAND.holiday_name(date(2026, 12, 25)) == "Christmas Day"
    assert not ENGLAND.is_working_day(date(2026, 12, 28))
    assert "Boxing Day" in (ENGLAND.holiday_name(date(2026, 12, 28)) or "")
    assert ENGLAND.is_working_day(date(2026, 12, 29))
    # Thursday 24th + 1 working day skips Fri 25, the weekend and Mon 28.
    assert ENGLAND.add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 29)
    assert ENGLAND.add_working_days(date(2026, 12, 29), -1) == date(2026, 12, 24)


def test_christmas_2027_on_a_saturday_gives_two_substitute_days() -> None:
    assert not ENGLAND.is_working_day(date(2027, 12, 27))
    assert not ENGLAND.is_working_day(date(2027, 12, 28))
    assert ENGLAND.next_working_day(date(2027, 12, 25)) == date(2027, 12, 29)


def test_council_closure_days_between_christmas_and_new_year() -> None:
    shut = WorkingCalendar(extra_closures=(date(2026, 12, d) for d in (29, 30, 31)))
    assert shut.holiday_name(date(2026, 12, 30)) == "Council closure"
    assert not shut.is_working_day(date(2026, 12, 30))
    # Then New Year's Day 2027 (Friday) and the weekend: back on Monday 4 January.
    assert shut.add_working_days(date(2026, 12, 24), 1) == date(2027, 1, 4)
    assert shut.working_days_between(date(2026, 12, 24), date(2027, 1, 4)) == 1
    # The bank holiday keeps its own name even if also listed as a closure.
    both = WorkingCalendar(extra_closures=[date(2026, 12, 25)])
    assert both.holiday_name(date(2026, 12, 25)) == "Christmas Day"


def test_easter_2027() -> None:
    assert ENGLAND.holiday_name(date(2027, 3, 26)) == "Good Friday"
    assert ENGLAND.holiday_name(date(2027, 3, 29)) == "Easter Monday"
    assert ENGLAND.add_working_days(date(2027, 3, 25), 1) == date(2027, 3, 30)
    # Easter Monday is not a bank holiday in Scotland.
    assert SCOTLAND.is_working_day(date(2027, 3, 29))
    assert SCOTLAND.add_working_days(date(2027, 3, 25), 1) == date(2027, 3, 29)


def test_early_may_bank_holiday_2027() -> None:
    assert not ENGLAND.is_working_day(date(2027, 5, 3))
    assert ENGLAND.add_working_days(date(2027, 4, 30), 1) == date(2027, 5, 4)


def test_scotland_second_of_january_and_st_andrews_day() -> None:
    # 2 Jan 2027 is a Saturday: Scotland's substitute is Monday 4 January.
    assert not SCOTLAND.is_working_day(date(2027, 1, 4))
    assert ENGLAND.is_working_day(date(2027, 1, 4))
    assert not SCOTLAND.is_working_day(date(2026, 1, 2))  # a Friday
    assert ENGLAND.is_working_day(date(2026, 1, 2))
    assert SCOTLAND.holiday_name(date(2026, 11, 30)) == "Saint Andrew's Day"
    assert ENGLAND.is_working_day(date(2026, 11, 30))


def test_northern_ireland_st_patricks_day() -> None:
    assert NORTHERN_IRELAND.holiday_name(date(2027, 3, 17)) == "Saint Patrick's Day"
    assert ENGLAND.is_working_day(date(2027, 3, 17))


def test_weekends_are_not_working_days_and_have_no_holiday_name() -> None:
    assert not ENGLAND.is_working_day(date(2027, 3, 27))  # Saturday
    assert ENGLAND.holiday_name(date(2027, 3, 27)) is None
    assert ENGLAND.holiday_name(date(2027, 3, 30)) is None


def test_next_working_day_and_adding_zero() -> None:
    assert ENGLAND.next_working_day(date(2027, 3, 30)) == date(2027, 3, 30)
    assert ENGLAND.next_working_day(date(2026, 12, 26)) == date(2026, 12, 29)
    assert ENGLAND.add_working_days(date(2026, 12, 26), 0) == date(2026, 12, 29)


def test_working_days_in_march_2027_by_nation() -> None:
    # March 2027 has 23 weekdays; England loses Good Friday and Easter Monday,
    # Scotland only Good Friday, Northern Ireland also St Patrick's Day.
    start, end = date(2027, 2, 28), date(2027, 3, 31)
    assert ENGLAND.working_days_between(start, end) == 21
    assert SCOTLAND.working_days_between(start, end) == 22
    assert NORTHERN_IRELAND.working_days_between(start, end) == 20


def test_working_days_between_counts_after_start_up_to_end() -> None:
    # April 2027: 22 weekdays, no bank holidays.
    assert ENGLAND.working_days_between(date(2027, 3, 31), date(2027, 4, 30)) == 22
    assert ENGLAND.working_days_between(date(2027, 4, 30), date(2027, 4, 30)) == 0
    # A return due Fri 30 Apr 2027 that arrives Tue 4 May is one working day late.
    assert ENGLAND.working_days_between(date(2027, 4, 30), date(2027, 5, 4)) == 1
    assert ENGLAND.working_days_between(date(2027, 5, 4), date(2027, 4, 30)) == -1


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="england_and_wales"):
        WorkingCalendar("wessex")  # type: ignore[arg-type]


@given(
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    n=st.integers(-40, 40).filter(lambda n: n != 0),
    region=st.sampled_from(list(HolidayCalendar)),
)
def test_adding_and_counting_working_days_agree(day: date, n: int, region: HolidayCalendar) -> None:
    calendar = WorkingCalendar(region)
    later = calendar.add_working_days(day, n)
    assert calendar.is_working_day(later)
    assert calendar.working_days_between(day, later) == n
    # Every day strictly between is skipped or counted, never a working day missed.
    step = timedelta(days=1 if n > 0 else -1)
    between = [day + step * i for i in range(1, abs((later - day).days))]
    assert sum(calendar.is_working_day(d) for d in between) == abs(n) - 1
