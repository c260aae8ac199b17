"""Data-quality checks on a returned value, before it goes to the approver.

Neither check rejects a return: an unusual value may be true. They produce a message
the officer must confirm and the approver sees, so that a slipped decimal point or a
zero typed for "not available yet" does not reach the published results unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

from m365perf.domain.kinds import Polarity
from m365perf.domain.spc import DEFAULT_BASELINE, analyse

__all__ = ["OutlierVerdict", "outlier_check", "probable_missing_data"]

DEFAULT_THRESHOLD_PERCENT = 50.0


@dataclass(frozen=True)
class OutlierVerdict:
    """Whether a value is far outside its history, and why, in words for the officer."""

    is_outlier: bool
    reason: str


def outlier_check(
    value: float,
    history: Sequence[float],
    *,
    threshold_percent: float = DEFAULT_THRESHOLD_PERCENT,
    min_points: int = DEFAULT_BASELINE,
    screen: bool = False,
) -> OutlierVerdict:
    """Is ``value`` far outside ``history`` (previous periods' values, oldest first)?

    With at least ``min_points`` of history the test is SPC's: outside the process
    limits of the history. With fewer, limits would be too loose to mean much, so the
    test is the flow's ``threshold_percent``: more than that far from the history's
    average. A history averaging zero gives no percentage to measure by, so it never
    flags (the SPC test takes over once there is enough history).
    """
    value = _number("value", value)
    past = [_number("a history value", v) for v in history]
    if not _is_number(threshold_percent) or not threshold_percent > 0:
        raise ValueError(f"threshold_percent must be above 0, got {threshold_percent!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 2:
        raise ValueError(f"min_points must be a whole number, 2 or more, got {min_points!r}")
    shown = _fmt(value)
    if not past:
        return OutlierVerdict(False, "no history to compare with")
    periods = f"{len(past)} previous period{'s' if len(past) != 1 else ''}"
    if len(past) >= min_points:
        chart = analyse(
            [(str(i), v) for i, v in enumerate(past)],
            Polarity.NONE,
            baseline=min_points,
            screen=screen,
        ).latest
        if chart.lower is None or chart.upper is None:  # pragma: no cover - min_points >= 2
            raise AssertionError("limits need two points")
        span = f"{_fmt(chart.lower)} to {_fmt(chart.upper)}, from {periods}"
        if value > chart.upper:
            return OutlierVerdict(True, f"{shown} is above the upper process limit ({span})")
        if value < chart.lower:
            return OutlierVerdict(True, f"{shown} is below the lower process limit ({span})")
        return OutlierVerdict(False, f"{shown} is within the process limits ({span})")
    mean = math.fsum(past) / len(past)
    if mean == 0:
        return OutlierVerdict(False, f"cannot compare by percentage: the {periods} average zero")
    away = abs(value - mean) / abs(mean) * 100
    where = "above" if value > mean else "below"
    detail = (
        f"{shown} is {away:.0f}% {where} the average of the {periods} ({_fmt(mean)}); "
        f"the threshold is {_fmt(threshold_percent)}%"
    )
    return OutlierVerdict(away > threshold_percent, detail)


def probable_missing_data(
    value: float, history: Sequence[float], placeholders: Sequence[float] = ()
) -> str | None:
    """A message when ``value`` looks like "no data" typed as a number, else None.

    A zero is suspicious when the indicator has history and has never been zero; a
    placeholder the flow names (such as 999 or -1) is suspicious unless the history
    has held that very value before.
    """
    value = _number("value", value)
    past = [_number("a history value", v) for v in history]
    marks = [_number("a placeholder", p) for p in placeholders]
    advice = "if there is no data for this period, return 'no data' with a reason instead"
    if value in marks and value not in past:
        return f"{_fmt(value)} is this flow's placeholder for a missing value: {advice}"
    if value == 0 and past and 0 not in past:
        count = len(past)
        return (
            f"0 was returned, but this indicator has never been 0 in its {count} previous "
            f"period{'s' if count != 1 else ''}: is the data missing? ({advice})"
        )
    return None


def _number(name: str, x: object) -> float:
    if not _is_number(x) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return float(x)


def _is_number(x: object) -> TypeGuard[int | float]:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fmt(x: float) -> str:
    """A number as a person would write it: 6840, 5.4, 12.35 (not 12.349999)."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.1f}"
