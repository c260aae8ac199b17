"""Numbers by unit and dates in London time, as councils write them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from m365perf.cards import format_date, format_moment, format_time, format_value
from m365perf.domain.kinds import Unit


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (87.5, Unit.PERCENTAGE, "87.5%"),
        (100.0, Unit.PERCENTAGE, "100%"),
        (1234.5, Unit.CURRENCY, "£1,234.50"),
        (35719, Unit.CURRENCY, "£35,719"),
        (-250.75, Unit.CURRENCY, "-£250.75"),
        (1234, Unit.COUNT, "1,234"),
        (11390000, Unit.COUNT, "11,390,000"),
        (12.5, Unit.DAYS, "12.5 days"),
        (1, Unit.DAYS, "1 day"),
        (2.75, Unit.RATIO, "2.75"),
        (0.1 + 0.2, Unit.RATIO, "0.3"),  # float noise is not shown
        (33.33333, Unit.PERCENTAGE, "33.333%"),
        (-4.2, Unit.PERCENTAGE, "-4.2%"),
        (None, Unit.COUNT, "not recorded"),
    ],
)
def test_values_are_formatted_by_unit(value: float | None, unit: Unit, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_unit_may_be_given_as_its_word() -> None:
    assert format_value(87.5, "percentage") == "87.5%"


def test_an_unknown_unit_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unit must be one of count, percentage"):
        format_value(1, "furlongs")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True])
def test_a_value_that_is_not_a_finite_number_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite number"):
        format_value(bad, Unit.COUNT)


def test_dates_are_written_out() -> None:
    assert format_date(date(2027, 1, 13)) == "Wednesday 13 January 2027"


def test_times_are_in_london_time_summer_and_winter() -> None:
    winter = datetime(2026, 11, 3, 14, 5, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)
    assert format_time(winter) == "14:05"
    assert format_time(summer) == "14:05"  # BST
    assert format_moment(winter) == "14:05 on 3 November 2026"


def test_a_datetime_late_in_the_evening_takes_the_london_date() -> None:
    # 23:30 UTC on 30 June is 00:30 on 1 July in London.
    assert format_date(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "Wednesday 1 July 2026"


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        format_time(datetime(2026, 11, 3, 14, 5))
