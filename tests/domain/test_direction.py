"""Direction of travel read through polarity."""

from __future__ import annotations

import pytest

from m365perf.domain.direction import Direction, Travel, direction, long_trend, travel
from m365perf.domain.kinds import Polarity

HIGHER, LOWER, NONE = Polarity.HIGHER_IS_BETTER, Polarity.LOWER_IS_BETTER, Polarity.NONE


def test_values_are_the_stored_words() -> None:
    assert [d.value for d in Direction] == [
        "improving",
        "worsening",
        "no_change",
        "not_comparable",
    ]


@pytest.mark.parametrize(
    ("current", "previous", "polarity", "expected"),
    [
        (92.0, 90.0, HIGHER, Direction.IMPROVING),
        (88.0, 90.0, HIGHER, Direction.WORSENING),
        (8.5, 9.1, LOWER, Direction.IMPROVING),  # sickness days fell
        (9.6, 9.1, LOWER, Direction.WORSENING),
        (90.0, 90.0, HIGHER, Direction.NO_CHANGE),
        (0.1 + 0.2, 0.3, HIGHER, Direction.NO_CHANGE),  # float noise is not a change
        (None, 90.0, HIGHER, Direction.NOT_COMPARABLE),
        (90.0, None, LOWER, Direction.NOT_COMPARABLE),
        (95.0, 90.0, NONE, Direction.NOT_COMPARABLE),
        (90.0, 90.0, NONE, Direction.NO_CHANGE),
    ],
)
def test_direction(
    current: float | None, previous: float | None, polarity: Polarity, expected: Direction
) -> None:
    assert direction(current, previous, polarity) is expected


def test_changes_within_the_threshold_are_no_change() -> None:
    assert direction(90.4, 90.0, HIGHER, threshold=0.5) is Direction.NO_CHANGE
    assert direction(90.5, 90.0, HIGHER, threshold=0.5) is Direction.NO_CHANGE
    assert direction(89.4, 90.0, HIGHER, threshold=0.5) is Direction.WORSENING
    with pytest.raises(ValueError):
        direction(1, 2, HIGHER, threshold=-1)


def test_long_trend_compares_with_the_mean_of_the_last_n() -> None:
    history = [50.0, 80.0, 82.0, 84.0]  # oldest first
    assert long_trend(81.0, history, HIGHER, 3) is Direction.WORSENING  # mean of last 3 is 82
    assert long_trend(83.0, history, HIGHER, 3) is Direction.IMPROVING
    # 78 is below the recent three (mean 82) but above all four (mean 74).
    assert long_trend(78.0, history, HIGHER, 3) is Direction.WORSENING
    assert long_trend(78.0, history, HIGHER, 4) is Direction.IMPROVING
    assert long_trend(78.0, history, LOWER, 4) is Direction.WORSENING


def test_long_trend_needs_n_earlier_values() -> None:
    assert long_trend(83.0, [80.0, 82.0], HIGHER, 3) is Direction.NOT_COMPARABLE
    assert long_trend(None, [80.0, 82.0, 84.0], HIGHER, 3) is Direction.NOT_COMPARABLE
    with pytest.raises(ValueError):
        long_trend(83.0, [80.0], HIGHER, 0)


def test_travel_against_previous_and_last_year() -> None:
    # Better than last month, worse than the same month last year.
    assert travel(88.0, 86.0, 91.0, HIGHER) == Travel(
        vs_previous=Direction.IMPROVING, vs_last_year=Direction.WORSENING
    )
    assert travel(88.0, 86.0, None, HIGHER) == Travel(Direction.IMPROVING, Direction.NOT_COMPARABLE)
