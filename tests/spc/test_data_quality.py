"""Outliers and probable missing data: what the officer confirms and the approver sees."""

from __future__ import annotations

import pytest

from m365perf.domain.quality import outlier_check, probable_missing_data

STEADY = [10.0, 12.0] * 6  # mean 11, process limits 5.68 to 16.32


def test_a_value_outside_the_process_limits_of_its_history_is_an_outlier() -> None:
    verdict = outlier_check(17, STEADY)
    assert verdict.is_outlier
    assert verdict.reason == (
        "17 is above the upper process limit (5.68 to 16.32, from 12 previous periods)"
    )
    low = outlier_check(5, STEADY)
    assert low.is_outlier and "below the lower process limit" in low.reason


def test_a_value_within_the_process_limits_is_not_an_outlier() -> None:
    verdict = outlier_check(16, STEADY)
    assert not verdict.is_outlier
    assert "within the process limits" in verdict.reason


def test_the_process_limits_come_from_the_history_not_the_new_value() -> None:
    # a slipped decimal point: 1100 instead of 11.00
    assert outlier_check(1100, STEADY).is_outlier


def test_with_little_history_the_flows_percentage_threshold_applies() -> None:
    history = [100.0, 110.0, 90.0]  # too few points for limits; average 100
    far = outlier_check(160, history)
    assert far.is_outlier
    assert far.reason == (
        "160 is 60% above the average of the 3 previous periods (100); the threshold is 50%"
    )
    assert not outlier_check(140, history).is_outlier
    assert outlier_check(140, history, threshold_percent=30).is_outlier
    assert outlier_check(40, history).is_outlier
    assert "below the average" in outlier_check(40, history).reason


def test_the_number_of_points_needed_for_limits_is_configurable() -> None:
    history = [100.0, 101.0, 100.0, 101.0]
    # by percentage, 140 is only 39% away; by the limits of these steady points it is far out
    assert not outlier_check(140, history).is_outlier
    assert outlier_check(140, history, min_points=4).is_outlier


def test_no_history_or_a_zero_average_cannot_make_an_outlier() -> None:
    assert not outlier_check(5, []).is_outlier
    zero = outlier_check(5, [0.0, 0.0])
    assert not zero.is_outlier and "average zero" in zero.reason


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold_percent"):
        outlier_check(1, [1.0], threshold_percent=0)
    with pytest.raises(ValueError, match="finite"):
        outlier_check(float("nan"), [1.0])


def test_a_zero_where_the_history_is_never_zero_is_probably_missing_data() -> None:
    message = probable_missing_data(0, [412.0, 398.0, 405.0])
    assert message is not None
    assert "never been 0 in its 3 previous periods" in message
    assert "'no data'" in message


def test_a_zero_is_fine_where_zero_has_happened_before() -> None:
    assert probable_missing_data(0, [2.0, 0.0, 1.0]) is None
    assert probable_missing_data(0, []) is None
    assert probable_missing_data(3, [412.0, 398.0]) is None


def test_a_placeholder_named_by_the_flow_is_probably_missing_data() -> None:
    message = probable_missing_data(999, [12.0, 14.0], placeholders=[999, -1])
    assert message is not None and "placeholder" in message
    assert probable_missing_data(-1, [], placeholders=[999, -1]) is not None
    # a real 999 has been returned before, so it is believable
    assert probable_missing_data(999, [999.0, 1001.0], placeholders=[999]) is None
