"""The XmR rules of reference/spc-rules.md, each on a hand-made series.

Most series start from the same baseline, 10 and 12 alternating for 12 points: mean 11,
every moving range 2, so the process limits are 11 ± 5.32 (5.68 to 16.32) and the
near limits 11 ± 3.547 (7.453 to 14.547).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from m365perf.domain.kinds import Polarity
from m365perf.domain.spc import Assurance, Rebase, Rule, SpcResult, Variation, analyse

BASE = [10, 12] * 6
HIGHER = Polarity.HIGHER_IS_BETTER
LOWER = Polarity.LOWER_IS_BETTER

COMMON = Variation.COMMON_CAUSE
IMPROVEMENT = Variation.IMPROVEMENT
CONCERN = Variation.CONCERN


def chart(
    values: Sequence[float],
    polarity: Polarity = HIGHER,
    *,
    target: float | None = None,
    baseline: int = 12,
    screen: bool = False,
    rebases: Sequence[Rebase] = (),
) -> SpcResult:
    points = [(f"p{i}", v) for i, v in enumerate(values)]
    return analyse(
        points, polarity, target=target, baseline=baseline, screen=screen, rebases=rebases
    )


def tail_labels(result: SpcResult, count: int) -> list[Variation]:
    return [p.label for p in result.points[-count:]]


def tail_rules(result: SpcResult, count: int) -> list[tuple[Rule, ...]]:
    return [p.rules for p in result.points[-count:]]


# --- limits -------------------------------------------------------------------------


def test_limits_come_from_the_first_twelve_points() -> None:
    result = chart([*BASE, 13, 9, 40])
    for point in result.points:
        assert point.mean == pytest.approx(11)
        assert point.upper == pytest.approx(16.32)
        assert point.lower == pytest.approx(5.68)
        assert point.near_upper == pytest.approx(11 + 2 / 3 * 2.66 * 2)
        assert point.near_lower == pytest.approx(11 - 2 / 3 * 2.66 * 2)
    assert result.baseline == 12
    assert not result.trial_limits


def test_a_stable_series_is_all_common_cause() -> None:
    result = chart([*BASE, 11, 13, 9, 12])
    assert {p.label for p in result.points} == {COMMON}
    assert all(p.rules == () for p in result.points)
    assert all(p.colour == "#a6a6a6" for p in result.points)
    assert result.summary() == "common cause: within normal variation"


def test_fewer_than_twelve_points_give_trial_limits_that_move_with_each_point() -> None:
    eight = chart([10, 12, 10, 12, 10, 12, 10, 12])
    nine = chart([10, 12, 10, 12, 10, 12, 10, 12, 20])
    assert eight.trial_limits and nine.trial_limits
    assert eight.baseline == 8 and nine.baseline == 9
    assert eight.latest.upper == pytest.approx(11 + 2.66 * 2)
    # the ninth point joins the baseline: its jump widens the limits for every point
    assert nine.points[0].upper == nine.latest.upper
    assert nine.latest.upper is not None and eight.latest.upper is not None
    assert nine.latest.upper > eight.latest.upper
    assert "trial limits from 9 points" in nine.summary()


def test_once_the_baseline_is_full_later_points_do_not_move_the_limits() -> None:
    twelve = chart(BASE)
    later = chart([*BASE, 40, -20, 3])
    assert not twelve.trial_limits
    assert later.latest.upper == twelve.latest.upper
    assert later.latest.lower == twelve.latest.lower


def test_the_baseline_length_can_be_chosen() -> None:
    values = [*BASE, 20, 22, 20, 22]
    assert chart(values).latest.mean == 11
    twenty = chart(values, baseline=20)
    assert twenty.trial_limits and twenty.baseline == 16
    assert twenty.latest.mean == pytest.approx(sum(values) / 16)
    four = chart(values, baseline=4)
    assert not four.trial_limits and four.baseline == 4
    assert four.latest.mean == 11 and four.latest.upper == pytest.approx(16.32)


def test_a_single_point_has_no_limits_and_says_so() -> None:
    result = chart([7])
    assert result.latest.upper is None and result.latest.lower is None
    assert result.latest.label is COMMON
    assert result.assurance is None
    assert "no limits yet" in result.summary()


# --- screening ----------------------------------------------------------------------

SPIKED = [10, 11, 10, 11, 10, 30, 10, 11, 10, 11, 10, 11, 16]


def test_screening_off_by_default_keeps_the_spike_in_the_moving_ranges() -> None:
    # moving ranges: nine of 1 and two of 20, so mR-bar = 49/11
    result = chart(SPIKED)
    mean = 145 / 12
    assert result.latest.upper == pytest.approx(mean + 2.66 * 49 / 11)
    assert result.latest.rules == ()
    assert result.points[5].rules[0] is Rule.OUTSIDE_LIMITS


def test_screening_drops_large_moving_ranges_and_narrows_the_limits() -> None:
    # 20 >= 3.267 x 49/11, so both are dropped and mR-bar becomes 1
    result = chart(SPIKED, screen=True)
    assert result.latest.upper == pytest.approx(145 / 12 + 2.66)
    assert result.latest.rules == (Rule.OUTSIDE_LIMITS,)
    assert result.latest.label is IMPROVEMENT


def test_screening_a_flat_baseline_changes_nothing() -> None:
    result = chart([5] * 12 + [6], screen=True)
    assert result.latest.upper == 5
    assert result.latest.rules == (Rule.OUTSIDE_LIMITS,)


# --- rule 1: outside the limits -----------------------------------------------------


def test_a_point_above_the_upper_limit_is_special_cause() -> None:
    result = chart([*BASE, 17])
    assert result.latest.rules == (Rule.OUTSIDE_LIMITS,)
    assert result.latest.label is IMPROVEMENT
    assert result.latest.colour == "#00b0f0"
    assert result.summary() == "special cause — improvement: above the upper process limit"


def test_a_point_below_the_lower_limit_is_a_concern_when_higher_is_better() -> None:
    result = chart([*BASE, 5])
    assert result.latest.rules == (Rule.OUTSIDE_LIMITS,)
    assert result.latest.label is CONCERN
    assert result.latest.colour == "#e46c0a"


def test_a_point_exactly_on_the_process_limit_is_not_outside_it() -> None:
    # 16.32 is exactly 11 + 2.66 x 2 as typed, though not as binary floats
    result = chart([*BASE, 16.32, 5.68])
    assert Rule.OUTSIDE_LIMITS not in result.points[-2].rules
    assert Rule.OUTSIDE_LIMITS not in result.latest.rules


# --- rule 2: trend ------------------------------------------------------------------


def test_seven_rising_points_are_a_trend_labelled_by_direction_not_side_of_mean() -> None:
    # 8, 9, 10 are below the mean, 11 on it, 12-14 above: all improvement
    result = chart([*BASE, 8, 9, 10, 11, 12, 13, 14])
    assert tail_rules(result, 7) == [(Rule.TREND,)] * 7
    assert tail_labels(result, 7) == [IMPROVEMENT] * 7
    assert result.points[-8].rules == ()
    assert result.summary() == "special cause — improvement: a rising trend of 7 points"


def test_seven_falling_points_are_a_trend_too() -> None:
    result = chart([*BASE, 14, 13, 12, 11, 10, 9, 8])
    assert tail_rules(result, 7) == [(Rule.TREND,)] * 7
    # falling is a concern when higher is better, even for the points above the mean
    assert tail_labels(result, 7) == [CONCERN] * 7


def test_a_falling_trend_is_an_improvement_when_lower_is_better() -> None:
    result = chart([*BASE, 14, 13, 12, 11, 10, 9, 8], LOWER)
    assert tail_labels(result, 7) == [IMPROVEMENT] * 7


def test_six_rising_points_are_not_a_trend() -> None:
    result = chart([*BASE, 9, 10, 11, 12, 13, 14])
    assert all(p.rules == () for p in result.points)


def test_a_tie_breaks_a_trend() -> None:
    result = chart([*BASE, 8, 9, 10, 10, 11, 12, 13, 14])
    assert all(Rule.TREND not in p.rules for p in result.points)


def test_a_peak_shared_by_two_trends_takes_the_later_direction() -> None:
    result = chart([*BASE, 8, 9, 10, 11, 12, 13, 14, 13, 12, 11, 10, 9, 8])
    labels = tail_labels(result, 13)
    assert labels[:6] == [IMPROVEMENT] * 6
    assert labels[6] is CONCERN  # 14: end of the rise, start of the fall
    assert labels[7:] == [CONCERN] * 6


# --- rule 3: two in three -----------------------------------------------------------


def test_two_of_three_points_close_to_the_upper_limit_are_flagged() -> None:
    result = chart([*BASE, 15, 12, 15])
    assert tail_rules(result, 3) == [(Rule.TWO_IN_THREE,), (), (Rule.TWO_IN_THREE,)]
    assert tail_labels(result, 3) == [IMPROVEMENT, COMMON, IMPROVEMENT]
    assert result.summary() == (
        "special cause — improvement: 2 of 3 points close to the upper process limit"
    )


def test_two_in_three_does_not_fire_across_opposite_sides_of_the_mean() -> None:
    # 15 is close to the upper limit and 7 close to the lower one
    result = chart([*BASE, 15, 7, 15, 7])
    assert all(p.rules == () for p in result.points)


def test_two_in_three_needs_the_third_point_on_the_same_side_of_the_mean() -> None:
    result = chart([*BASE, 7, 12, 7])
    assert all(p.rules == () for p in result.points)
    same_side = chart([*BASE, 7, 10, 7], LOWER)
    assert tail_rules(same_side, 3) == [(Rule.TWO_IN_THREE,), (), (Rule.TWO_IN_THREE,)]
    assert tail_labels(same_side, 3) == [IMPROVEMENT, COMMON, IMPROVEMENT]


def test_a_point_beyond_the_process_limit_does_not_count_towards_two_in_three() -> None:
    # 17 is outside the limits; 15 alone is then one close point in three
    result = chart([*BASE, 15, 17, 12])
    assert tail_rules(result, 3) == [(), (Rule.OUTSIDE_LIMITS,), ()]


# --- rule 4: shift ------------------------------------------------------------------


def test_seven_points_below_the_mean_are_a_shift() -> None:
    result = chart([*BASE, 10.5, 10, 10.5, 10, 10.5, 10, 10.5])
    assert tail_rules(result, 7) == [(Rule.SHIFT,)] * 7
    assert tail_labels(result, 7) == [CONCERN] * 7
    assert result.points[-8].rules == ()
    assert result.summary() == "special cause — concern: 7 points below the mean"


def test_six_points_below_the_mean_are_not_a_shift() -> None:
    result = chart([*BASE, 10.5, 10, 10.5, 10, 10.5, 10])
    assert all(p.rules == () for p in result.points)


def test_a_point_exactly_on_the_mean_breaks_a_shift() -> None:
    result = chart([*BASE, 10.5, 10, 10.5, 11, 10.5, 10, 10.5, 10])
    assert all(p.rules == () for p in result.points)


def test_a_mean_from_decimals_is_hit_exactly() -> None:
    # mean of 0.1, 0.2 and 0.3 repeated is 0.2 as typed (not 0.20000000000000004)
    values = [0.1, 0.3, 0.2] * 4 + [0.15, 0.1, 0.15, 0.2, 0.15, 0.1, 0.15]
    result = chart(values)
    assert all(Rule.SHIFT not in p.rules for p in result.points)


# --- labelling precedence and polarity ----------------------------------------------


def test_a_trend_outranks_a_shift_on_the_other_side() -> None:
    # a falling run above the mean: falling says concern, above the mean says improvement
    result = chart([*BASE, 14.5, 14, 13.5, 13, 12.5, 12, 11.5])
    assert tail_rules(result, 7) == [(Rule.TREND, Rule.SHIFT)] * 7
    assert tail_labels(result, 7) == [CONCERN] * 7


def test_a_trend_outranks_two_in_three() -> None:
    result = chart([*BASE, 15.5, 15, 14, 13, 12, 11.5, 11.2])
    assert result.points[12].rules == (Rule.TREND, Rule.TWO_IN_THREE, Rule.SHIFT)
    assert result.points[12].label is CONCERN


def test_outside_limits_outranks_a_trend() -> None:
    result = chart([*BASE, 17, 16, 15, 14, 13, 12, 11.5])
    first = result.points[12]
    assert first.rules[:2] == (Rule.OUTSIDE_LIMITS, Rule.TREND)
    assert first.label is IMPROVEMENT  # above the limit, though the trend falls
    assert result.latest.label is CONCERN


def test_no_polarity_labels_special_causes_neither() -> None:
    result = chart([*BASE, 17, 5, 10.5, 10, 10.5, 10, 10.5, 10, 10.5], Polarity.NONE)
    special = [p for p in result.points if p.rules]
    assert special and {p.label for p in special} == {Variation.NEITHER}
    assert {p.colour for p in special} == {"#490092"}
    assert result.summary().startswith("special cause — neither: 8 points below the mean")


# --- assurance ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("polarity", "target", "expected"),
    [
        (HIGHER, 20, Assurance.CONSISTENTLY_FAILS),
        (HIGHER, 3, Assurance.CONSISTENTLY_PASSES),
        (HIGHER, 12, Assurance.HIT_AND_MISS),
        (LOWER, 20, Assurance.CONSISTENTLY_PASSES),
        (LOWER, 3, Assurance.CONSISTENTLY_FAILS),
        (LOWER, 12, Assurance.HIT_AND_MISS),
        (HIGHER, 16.32, Assurance.HIT_AND_MISS),  # on the limit: sometimes met
    ],
)
def test_assurance_of_the_target(polarity: Polarity, target: float, expected: Assurance) -> None:
    result = chart([*BASE, 11], polarity, target=target)
    assert result.assurance is expected
    assert f"target {expected.value}" in result.summary()


def test_no_assurance_without_a_target_or_a_polarity() -> None:
    assert chart(BASE).assurance is None
    assert chart(BASE, Polarity.NONE, target=20).assurance is None


def test_assurance_uses_the_latest_limits_after_a_rebase() -> None:
    values = [*BASE, *[20, 22] * 6]
    before = chart(values, target=15)
    after = chart(values, target=15, rebases=[Rebase("p12", "new service model")])
    assert before.assurance is Assurance.HIT_AND_MISS
    assert after.assurance is Assurance.CONSISTENTLY_PASSES


# --- rebase -------------------------------------------------------------------------


def test_limits_are_never_rebased_automatically() -> None:
    result = chart([*BASE, *[20, 22] * 6])
    assert {p.mean for p in result.points} == {11}
    assert tail_labels(result, 12) == [IMPROVEMENT] * 12


def test_a_recorded_rebase_starts_new_limits_from_its_period() -> None:
    values = [*BASE, *[20, 22] * 6]
    result = chart(values, rebases=[Rebase("p12", "new contractor from April")])
    assert [p.mean for p in result.points] == [11] * 12 + [21] * 12
    assert result.latest.upper == pytest.approx(21 + 5.32)
    assert all(p.label is COMMON for p in result.points)
    assert result.rebases[0].reason == "new contractor from April"
    assert chart(values, rebases=[Rebase(12, "same, by position")]).points == result.points


def test_a_short_rebased_segment_has_trial_limits() -> None:
    result = chart([*BASE, 20, 22, 21], rebases=[Rebase("p12", "new contractor")])
    assert result.trial_limits and result.baseline == 3


def test_rules_start_afresh_after_a_rebase() -> None:
    values = [*BASE, 8, 9, 10, 11, 12, 13, 14]
    assert Rule.TREND in chart(values).latest.rules
    rebased = chart(values, rebases=[Rebase("p15", "new process")])
    assert all(Rule.TREND not in p.rules for p in rebased.points)


@pytest.mark.parametrize(
    ("rebase", "message"),
    [
        (Rebase("2031-02", "x"), "no such period"),
        (Rebase(0, "x"), "changes nothing"),
        (Rebase(99, "x"), "points 0 to 12"),
    ],
)
def test_a_bad_rebase_is_refused(rebase: Rebase, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chart([*BASE, 11], rebases=[rebase])


def test_a_rebase_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        Rebase("p3", "  ")


def test_two_rebases_from_one_period_are_refused() -> None:
    with pytest.raises(ValueError, match="two rebases"):
        chart(BASE, rebases=[Rebase("p5", "a"), Rebase(5, "b")])


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "no points"),
        ([("p1", 1.0), ("p1", 2.0)], "appears more than once"),
        ([("p1", math.nan)], "finite number"),
        ([("p1", "7")], "finite number"),
        ([("", 1.0)], "no period"),
        ([("p1",)], "pair"),
    ],
)
def test_bad_points_are_refused_clearly(points: list[tuple[str, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analyse(points, HIGHER)


def test_bad_options_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="baseline"):
        chart(BASE, baseline=1)
    with pytest.raises(ValueError, match="polarity"):
        analyse([("p1", 1.0)], "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target"):
        chart(BASE, target=math.inf)
