"""Properties every XmR chart must have, whatever the series.

Values are generated as decimals with one place (what councils type), built exactly
with Decimal before becoming floats, so "add a constant" and "scale" are exact
operations on the typed numbers and the invariance is genuine, not approximate.
"""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from m365perf.domain.kinds import Polarity
from m365perf.domain.spc import SpcResult, Variation, analyse

EXAMPLES = settings(max_examples=60, deadline=None)


@st.composite
def _series(draw: st.DrawFn) -> list[int]:
    """Noise around a level, often with a step change or a slope, so rules do fire."""
    length = draw(st.integers(2, 30))
    noise = draw(st.lists(st.integers(-20, 20), min_size=length, max_size=length))
    level = draw(st.integers(-5000, 5000))
    step_at = draw(st.integers(0, length))
    step = draw(st.integers(-100, 100))
    slope = draw(st.integers(-15, 15))
    return [level + n + (step if i >= step_at else 0) + slope * i for i, n in enumerate(noise)]


tenths = _series()
polarities = st.sampled_from(list(Polarity))
baselines = st.integers(2, 20)
screens = st.booleans()


def typed(tenths_values: list[int]) -> list[float]:
    return [float(Decimal(t) / 10) for t in tenths_values]


def chart(values: list[float], polarity: Polarity, baseline: int, screen: bool) -> SpcResult:
    points = [(f"p{i}", v) for i, v in enumerate(values)]
    return analyse(points, polarity, baseline=baseline, screen=screen)


def judged(result: SpcResult) -> list[tuple[object, ...]]:
    return [(p.rules, p.label) for p in result.points]


def close(a: float | None, b: float | None, scale: float = 1.0) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


@EXAMPLES
@given(tenths, st.integers(-(10**6), 10**6), polarities, baselines, screens)
def test_adding_a_constant_changes_no_rule_or_label(
    values: list[int], shift: int, polarity: Polarity, baseline: int, screen: bool
) -> None:
    before = chart(typed(values), polarity, baseline, screen)
    after = chart(typed([v + shift for v in values]), polarity, baseline, screen)
    assert judged(after) == judged(before)
    moved = shift / 10
    for old, new in zip(before.points, after.points, strict=True):
        assert close(new.mean, old.mean + moved, abs(moved) + 1)
        assert close(new.upper, None if old.upper is None else old.upper + moved, abs(moved) + 1)
        assert close(new.lower, None if old.lower is None else old.lower + moved, abs(moved) + 1)


@EXAMPLES
@given(tenths, st.integers(1, 1000), polarities, baselines, screens)
def test_scaling_by_a_positive_factor_changes_no_rule_or_label(
    values: list[int], factor: int, polarity: Polarity, baseline: int, screen: bool
) -> None:
    before = chart(typed(values), polarity, baseline, screen)
    after = chart(typed([v * factor for v in values]), polarity, baseline, screen)
    assert judged(after) == judged(before)
    for old, new in zip(before.points, after.points, strict=True):
        assert close(new.mean, old.mean * factor)
        assert close(new.upper, None if old.upper is None else old.upper * factor)
        assert close(new.lower, None if old.lower is None else old.lower * factor)


SWAPPED = {
    Variation.IMPROVEMENT: Variation.CONCERN,
    Variation.CONCERN: Variation.IMPROVEMENT,
    Variation.COMMON_CAUSE: Variation.COMMON_CAUSE,
}


@EXAMPLES
@given(tenths, baselines, screens)
def test_reversing_polarity_swaps_improvement_and_concern(
    values: list[int], baseline: int, screen: bool
) -> None:
    higher = chart(typed(values), Polarity.HIGHER_IS_BETTER, baseline, screen)
    lower = chart(typed(values), Polarity.LOWER_IS_BETTER, baseline, screen)
    neither = chart(typed(values), Polarity.NONE, baseline, screen)
    assert [p.rules for p in lower.points] == [p.rules for p in higher.points]
    assert [p.label for p in lower.points] == [SWAPPED[p.label] for p in higher.points]
    assert [p.label is Variation.COMMON_CAUSE for p in neither.points] == [
        p.label is Variation.COMMON_CAUSE for p in higher.points
    ]
    assert {p.label for p in neither.points} <= {Variation.COMMON_CAUSE, Variation.NEITHER}


@EXAMPLES
@given(tenths, polarities, baselines, screens)
def test_turning_the_chart_upside_down_with_the_polarity_keeps_every_label(
    values: list[int], polarity: Polarity, baseline: int, screen: bool
) -> None:
    flipped_polarity = {
        Polarity.HIGHER_IS_BETTER: Polarity.LOWER_IS_BETTER,
        Polarity.LOWER_IS_BETTER: Polarity.HIGHER_IS_BETTER,
        Polarity.NONE: Polarity.NONE,
    }[polarity]
    upright = chart(typed(values), polarity, baseline, screen)
    flipped = chart(typed([-v for v in values]), flipped_polarity, baseline, screen)
    assert judged(flipped) == judged(upright)


@EXAMPLES
@given(tenths, polarities, baselines, screens)
def test_every_point_is_labelled_with_its_colour_and_a_reason(
    values: list[int], polarity: Polarity, baseline: int, screen: bool
) -> None:
    result = chart(typed(values), polarity, baseline, screen)
    for point in result.points:
        assert point.colour == point.label.colour
        assert (point.label is Variation.COMMON_CAUSE) == (point.rules == ())
        assert point.reason
    assert result.summary().startswith(f"{result.latest.label.value}: ")
