"""RAG against target, tolerances, and targets that change over time."""

from __future__ import annotations

import pytest

from m365perf.domain.kinds import Polarity, Rag
from m365perf.domain.periods import Period
from m365perf.domain.rag import Target, Tolerance, rag, rag_for_period, target_for

HIGHER, LOWER, NONE = Polarity.HIGHER_IS_BETTER, Polarity.LOWER_IS_BETTER, Polarity.NONE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (92.0, Rag.GREEN),  # better
        (90.0, Rag.GREEN),  # exactly on target
        (88.5, Rag.AMBER),
        (88.0, Rag.AMBER),  # exactly at target - tolerance
        (87.9, Rag.RED),
    ],
)
def test_higher_is_better_absolute_tolerance(value: float, expected: Rag) -> None:
    # e.g. % of council tax collected: target 90, amber down to 88.
    assert rag(value, 90.0, HIGHER, Tolerance("absolute", 2.0)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8.0, Rag.GREEN),
        (10.0, Rag.GREEN),
        (10.5, Rag.AMBER),  # 5% of 10 is 0.5
        (10.6, Rag.RED),
    ],
)
def test_lower_is_better_percent_tolerance(value: float, expected: Rag) -> None:
    # e.g. sickness days per FTE: target 10, amber up to 10.5.
    assert rag(value, 10.0, LOWER, Tolerance("percent", 5.0)) is expected


def test_percent_tolerance_of_a_negative_target_uses_its_size() -> None:
    # A budget variance target of -£200k: 10% tolerance is £20k either way of worse.
    assert rag(-215_000, -200_000, HIGHER, Tolerance("percent", 10)) is Rag.AMBER
    assert rag(-225_000, -200_000, HIGHER, Tolerance("percent", 10)) is Rag.RED


def test_lower_is_better_absolute_boundary_is_amber_despite_float_rounding() -> None:
    # 0.4 - 0.3 is 0.10000000000000003 in floating point; still exactly the tolerance.
    assert rag(0.4, 0.3, LOWER, Tolerance("absolute", 0.1)) is Rag.AMBER
    assert rag(0.1 + 0.2, 0.3, HIGHER, None) is Rag.GREEN


def test_no_tolerance_means_any_shortfall_is_red() -> None:
    assert rag(89.99, 90.0, HIGHER, None) is Rag.RED
    assert rag(89.99, 90.0, HIGHER, Tolerance("absolute", 0)) is Rag.RED


def test_zero_target_with_percent_tolerance_has_no_amber() -> None:
    # e.g. "number of never events", target 0: any occurrence is red.
    assert rag(0, 0, LOWER, Tolerance("percent", 10)) is Rag.GREEN
    assert rag(1, 0, LOWER, Tolerance("percent", 10)) is Rag.RED
    # An absolute tolerance still gives an amber band around zero.
    assert rag(1, 0, LOWER, Tolerance("absolute", 1)) is Rag.AMBER


def test_no_target_or_no_polarity_gives_no_rag() -> None:
    assert rag(50, None, HIGHER, Tolerance("absolute", 1)) is Rag.NONE
    assert rag(50, 60, NONE, Tolerance("absolute", 1)) is Rag.NONE


def test_bad_tolerances_and_values_are_refused() -> None:
    with pytest.raises(ValueError):
        Tolerance("absolute", -1)
    with pytest.raises(ValueError):
        Tolerance("relative", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rag(float("nan"), 90, HIGHER, None)


# --- targets over time ----------------------------------------------------------------

Y2025, Y2026 = Period.parse("2025/26"), Period.parse("2026/27")


def test_target_for_picks_the_latest_that_has_started() -> None:
    old = Target(85.0, Y2025)
    new = Target(90.0, Y2026)
    targets = [new, old]  # order in the list does not matter
    assert target_for(targets, Period.parse("2026-03")) is old  # March 2026 is still 2025/26
    assert target_for(targets, Period.parse("2026-04")) is new
    assert target_for(targets, Period.parse("2026/27 Q3")) is new
    assert target_for(targets, Period.parse("2025/26")) is old
    assert target_for(targets, Period.parse("2024-12")) is None


def test_target_from_a_mid_year_month_applies_to_quarters_that_start_after_it() -> None:
    base = Target(90.0, Y2026)
    from_october = Target(92.0, Period.parse("2026-10"))
    targets = [base, from_october]
    assert target_for(targets, Period.parse("2026/27 Q2")) is base
    assert target_for(targets, Period.parse("2026/27 Q3")) is from_october
    assert target_for(targets, Period.parse("2026/27")) is base  # the year started before it


def test_targets_starting_on_the_same_day_later_entry_wins() -> None:
    first = Target(90.0, Y2026)
    second = Target(95.0, Period.parse("2026/27 Q1"))
    assert target_for([first, second], Period.parse("2026-05")) is second


def test_changing_next_years_target_does_not_recolour_last_year() -> None:
    # 2025/26 target 85; a value of 86 in March 2026 was green.
    march = Period.parse("2026-03")
    before = [Target(85.0, Y2025)]
    assert rag_for_period(86.0, before, march, HIGHER, None) is Rag.GREEN
    # The performance team raises the target to 90 from 2026/27.
    after = [*before, Target(90.0, Y2026)]
    assert rag_for_period(86.0, after, march, HIGHER, None) is Rag.GREEN
    assert rag_for_period(86.0, after, Period.parse("2026-04"), HIGHER, None) is Rag.RED


def test_rag_for_period_tolerances_and_suspension() -> None:
    period = Period.parse("2026/27 Q1")
    default = Tolerance("absolute", 5)
    with_default = [Target(90.0, Y2026)]
    own = [Target(90.0, Y2026, Tolerance("absolute", 1))]
    assert rag_for_period(86.0, with_default, period, HIGHER, default) is Rag.AMBER
    assert rag_for_period(86.0, own, period, HIGHER, default) is Rag.RED  # target's own wins
    assert rag_for_period(86.0, own, period, HIGHER, default, suspended=True) is Rag.NONE
    assert rag_for_period(None, own, period, HIGHER, default) is Rag.NONE  # no-data return


def test_a_later_target_of_none_withdraws_the_target() -> None:
    targets = [Target(90.0, Y2025), Target(None, Y2026)]
    assert rag_for_period(80.0, targets, Period.parse("2026-03"), HIGHER, None) is Rag.RED
    assert rag_for_period(80.0, targets, Period.parse("2026-04"), HIGHER, None) is Rag.NONE
