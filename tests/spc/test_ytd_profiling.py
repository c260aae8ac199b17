"""Cumulative (year-to-date) indicators: profiled targets for RAG, increments for SPC."""

from __future__ import annotations

import pytest

from m365perf.domain.kinds import Frequency, Polarity, Rag
from m365perf.domain.periods import Period
from m365perf.domain.profiling import (
    IndicatorKind,
    increment_target,
    periodic_increments,
    profile_target,
    rag_target,
    spc_series,
)
from m365perf.domain.rag import Tolerance, rag
from m365perf.domain.spc import Rule, Variation, analyse


def quarter(year: int, index: int) -> Period:
    return Period(Frequency.QUARTERLY, year, index)


def test_a_ytd_indicator_is_judged_against_its_profiled_target_each_quarter() -> None:
    # homelessness cases prevented, year to date, against 1200 for the year
    returns = [280.0, 610.0, 880.0, 1250.0]
    tolerance = Tolerance("percent", 5)
    seen = []
    for index, value in enumerate(returns, start=1):
        target = rag_target(IndicatorKind.CUMULATIVE, 1200, quarter(2024, index))
        assert target is not None
        seen.append((target, rag(value, target, Polarity.HIGHER_IS_BETTER, tolerance)))
    assert seen == [
        (300, Rag.RED),  # 20 short; 5% of 300 is 15
        (600, Rag.GREEN),
        (900, Rag.AMBER),  # 20 short, within 45
        (1200, Rag.GREEN),
    ]


def test_a_custom_profile_front_loads_the_target() -> None:
    profile = [0.3, 0.28, 0.28, 0.14]  # council tax is mostly collected early
    assert profile_target(96, quarter(2024, 1), profile) == pytest.approx(28.8)
    assert profile_target(96, quarter(2024, 2), profile) == pytest.approx(55.68)
    assert profile_target(96, quarter(2024, 4), profile) == 96
    assert increment_target(96, quarter(2024, 4), profile) == pytest.approx(13.44)


def test_monthly_and_annual_profiles_are_even_by_default() -> None:
    assert profile_target(1200, Period(Frequency.MONTHLY, 2024, 3)) == pytest.approx(300)
    assert profile_target(1200, Period(Frequency.ANNUAL, 2024, 1)) == 1200
    assert increment_target(1200, Period(Frequency.MONTHLY, 2024, 3)) == pytest.approx(100)


def test_a_periodic_indicator_keeps_its_target_as_it_is() -> None:
    assert rag_target(IndicatorKind.PERIODIC, 90, quarter(2024, 1)) == 90
    assert rag_target(IndicatorKind.CUMULATIVE, None, quarter(2024, 1)) is None


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ([0.5, 0.5], "4 fractions"),
        ([0.5, 0.5, 0.5, -0.5], "negative"),
        ([0.25, 0.25, 0.25, 0.2], "add up to 1"),
    ],
)
def test_a_bad_profile_is_refused(profile: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profile_target(100, quarter(2024, 2), profile)


def test_increments_restart_each_financial_year() -> None:
    ytd = [
        (quarter(2024, 3), 880.0),  # given out of order on purpose
        (quarter(2024, 1), 280.0),
        (quarter(2024, 2), 610.0),
        (quarter(2024, 4), 1250.0),
        (quarter(2025, 1), 300.0),
        (quarter(2025, 2), 590.0),
    ]
    assert periodic_increments(ytd) == [
        (quarter(2024, 1), 280.0),
        (quarter(2024, 2), 330.0),
        (quarter(2024, 3), 270.0),
        (quarter(2024, 4), 370.0),
        (quarter(2025, 1), 300.0),
        (quarter(2025, 2), 290.0),
    ]


def test_a_gap_in_a_ytd_series_is_named() -> None:
    with pytest.raises(ValueError, match=r"2024/25 Q2 is missing"):
        periodic_increments([(quarter(2024, 1), 280.0), (quarter(2024, 3), 880.0)])
    with pytest.raises(ValueError, match="more than once"):
        periodic_increments([(quarter(2024, 1), 280.0), (quarter(2024, 1), 290.0)])
    with pytest.raises(ValueError, match="different frequencies"):
        periodic_increments([(quarter(2024, 1), 1.0), (Period(Frequency.MONTHLY, 2024, 4), 2.0)])


def test_spc_runs_on_increments_not_on_the_running_total() -> None:
    # a steady 100-ish cases a month for three years, reported year to date
    monthly = [100, 104, 97, 102, 99, 101, 98, 103, 100, 96, 102, 99] * 3
    ytd: list[tuple[Period, float]] = []
    for year in range(3):
        total = 0.0
        for index in range(1, 13):
            total += monthly[year * 12 + index - 1]
            ytd.append((Period(Frequency.MONTHLY, 2022 + year, index), total))
    naive = analyse([(p.label, v) for p, v in ytd], Polarity.HIGHER_IS_BETTER)
    assert any(Rule.TREND in p.rules for p in naive.points)  # the running total always rises

    points = spc_series(IndicatorKind.CUMULATIVE, ytd)
    assert points[:2] == [("2022-04", 100.0), ("2022-05", 104.0)]
    assert points[12] == ("2023-04", 100.0)
    result = analyse(points, Polarity.HIGHER_IS_BETTER)
    assert {p.label for p in result.points} == {Variation.COMMON_CAUSE}


def test_a_periodic_series_is_charted_as_returned() -> None:
    values = [(quarter(2024, 2), 5.0), (quarter(2024, 1), 4.0)]
    assert spc_series(IndicatorKind.PERIODIC, values) == [("2024/25 Q1", 4.0), ("2024/25 Q2", 5.0)]
