"""Periods on the UK financial year: labels, boundaries and year-end roll-over."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period, PeriodError

M, Q, A = Frequency.MONTHLY, Frequency.QUARTERLY, Frequency.ANNUAL


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("2026-10", Period(M, 2026, 7)),
        ("2026-04", Period(M, 2026, 1)),
        ("2027-01", Period(M, 2026, 10)),
        ("2027-03", Period(M, 2026, 12)),
        ("2026/27 Q2", Period(Q, 2026, 2)),
        ("2026/27", Period(A, 2026, 1)),
    ],
)
def test_canonical_labels_parse_and_print_back(label: str, expected: Period) -> None:
    assert Period.parse(label) == expected
    assert expected.label == label
    assert str(expected) == label


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("2026/2027 Q2", Period(Q, 2026, 2)),
        ("2026-27 Q2", Period(Q, 2026, 2)),
        ("2026/27 q2", Period(Q, 2026, 2)),
        ("  2026/27   Q2 ", Period(Q, 2026, 2)),
        ("2026/27Q2", Period(Q, 2026, 2)),
        ("2026/2027", Period(A, 2026, 1)),
        ("2026-27", Period(A, 2026, 1)),  # as Coventry writes its years ("2024-25 end of year")
        ("2026-7", Period(M, 2026, 4)),
    ],
)
def test_common_variants_are_accepted(label: str, expected: Period) -> None:
    assert Period.parse(label) == expected


@pytest.mark.parametrize(
    "label",
    ["2026/28", "2026-13", "2026-00", "Q5", "2026/27 Q5", "2026/27 Q0", "", "October", "2026"],
)
def test_nonsense_is_rejected_with_the_accepted_formats(label: str) -> None:
    with pytest.raises(PeriodError) as caught:
        Period.parse(label)
    message = str(caught.value)
    assert "2026-10" in message and "2026/27 Q2" in message and "2026/27" in message


def test_wrong_financial_year_end_says_which_year_follows() -> None:
    with pytest.raises(PeriodError, match="2026/27"):
        Period.parse("2026/28")


def test_invalid_fields_are_refused_at_construction() -> None:
    with pytest.raises(PeriodError):
        Period(M, 2026, 13)
    with pytest.raises(PeriodError):
        Period(Q, 2026, 5)
    with pytest.raises(PeriodError):
        Period(A, 2026, 2)
    with pytest.raises(PeriodError):
        Period(M, 2026, 0)
    with pytest.raises(PeriodError, match="frequency"):
        Period("fortnightly", 2026, 1)  # type: ignore[arg-type]


def test_frequency_given_as_text_is_accepted() -> None:
    assert Period("quarterly", 2026, 2) == Period(Q, 2026, 2)  # type: ignore[arg-type]


def test_parse_for_checks_the_flow_frequency() -> None:
    assert Period.parse_for(Q, "2026/27 Q2") == Period(Q, 2026, 2)
    with pytest.raises(PeriodError, match="monthly") as caught:
        Period.parse_for(M, "2026/27 Q2")
    assert "2026-07" in str(caught.value)  # suggests the month the quarter starts in


def test_march_april_year_boundary() -> None:
    march = Period.parse("2027-03")
    assert march.fy_label == "2026/27"
    assert march.previous() == Period.parse("2027-02")
    assert march.next() == Period(M, 2027, 1)
    assert march.next().label == "2027-04"
    assert march.next().fy_label == "2027/28"
    assert Period(M, 2027, 1).previous() == march


def test_quarters_cover_the_right_months() -> None:
    q2 = Period.parse("2026/27 Q2")
    assert (q2.start, q2.end) == (date(2026, 7, 1), date(2026, 9, 30))
    q4 = Period.parse("2026/27 Q4")
    assert (q4.start, q4.end) == (date(2027, 1, 1), date(2027, 3, 31))
    assert q4.next() == Period.parse("2027/28 Q1")
    assert Period.parse("2027/28 Q1").previous() == q4


def test_month_and_year_bounds() -> None:
    feb = Period.parse("2028-02")  # 2028 is a leap year
    assert (feb.start, feb.end) == (date(2028, 2, 1), date(2028, 2, 29))
    year = Period.parse("2026/27")
    assert (year.start, year.end) == (date(2026, 4, 1), date(2027, 3, 31))
    assert year.previous().label == "2025/26"
    assert year.next().label == "2027/28"


def test_same_period_last_year() -> None:
    assert Period.parse("2027-01").same_period_last_year().label == "2026-01"
    assert Period.parse("2026/27 Q4").same_period_last_year().label == "2025/26 Q4"
    assert Period.parse("2026/27").same_period_last_year().label == "2025/26"


@pytest.mark.parametrize(
    ("day", "monthly", "quarterly", "annual"),
    [
        (date(2026, 4, 1), "2026-04", "2026/27 Q1", "2026/27"),
        (date(2026, 9, 30), "2026-09", "2026/27 Q2", "2026/27"),
        (date(2027, 1, 15), "2027-01", "2026/27 Q4", "2026/27"),
        (date(2027, 3, 31), "2027-03", "2026/27 Q4", "2026/27"),
        (date(2027, 4, 1), "2027-04", "2027/28 Q1", "2027/28"),
    ],
)
def test_containing(day: date, monthly: str, quarterly: str, annual: str) -> None:
    assert Period.containing(M, day).label == monthly
    assert Period.containing(Q, day).label == quarterly
    assert Period.containing(A, day).label == annual


def test_periods_of_one_frequency_sort_in_time_order() -> None:
    labels = ["2027-01", "2026-04", "2027-03", "2026-12"]
    ordered = sorted(Period.parse(label) for label in labels)
    assert [p.label for p in ordered] == ["2026-04", "2026-12", "2027-01", "2027-03"]


_periods = st.builds(
    lambda freq, year, raw: Period(freq, year, raw % {M: 12, Q: 4, A: 1}[freq] + 1),
    st.sampled_from([M, Q, A]),
    st.integers(2000, 2100),
    st.integers(0, 11),
)


@given(_periods)
def test_periods_tile_the_calendar(period: Period) -> None:
    """No gaps or overlaps: each period ends the day before the next one starts."""
    assert (period.next().start - period.end).days == 1
    assert period.next().previous() == period
    assert Period.parse(period.label) == period
    assert Period.containing(period.frequency, period.start) == period
    assert Period.containing(period.frequency, period.end) == period
    assert period.contains(period.end) and not period.contains(period.next().start)
