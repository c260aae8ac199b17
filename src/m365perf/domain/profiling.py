"""Cumulative (year-to-date) indicators and profiled targets.

Many council indicators are reported as a running total since April ("homelessness
cases prevented, year to date") against an annual target. Two things follow:

- RAG must compare the year-to-date value with the year-to-date share of the annual
  target (the profiled target), not with the whole year's target.
- SPC must run on each period's increment, not on the running total: a running total
  rises every period by construction and would show a "trend" that means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from fractions import Fraction

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period

__all__ = [
    "IndicatorKind",
    "increment_target",
    "periodic_increments",
    "profile_target",
    "rag_target",
    "spc_series",
]

_PERIODS_PER_YEAR = {Frequency.MONTHLY: 12, Frequency.QUARTERLY: 4, Frequency.ANNUAL: 1}
_PROFILE_TOLERANCE = 1e-6  # fractions typed to a few decimals must still sum to 1


class IndicatorKind(StrEnum):
    """Whether a value stands for its own period or for the year so far."""

    PERIODIC = "periodic"
    CUMULATIVE = "cumulative"


def profile_target(
    annual_target: float, period: Period, profile: Sequence[float] | None = None
) -> float:
    """The year-to-date target at ``period``: the annual target's share so far.

    Without a profile the year is even (Q2 of 4 is half the annual target). A
    profile gives each period's fraction of the year, one per period of the
    frequency (12 for months, 4 for quarters), each 0 or more, summing to 1: council
    tax collection, say, is front-loaded.
    """
    fractions = _fractions(period.frequency, profile)
    # dividing by the total makes the year-end target exactly the annual one
    share = math.fsum(fractions[: period.index]) / math.fsum(fractions)
    return _finite("annual target", annual_target) * share


def increment_target(
    annual_target: float, period: Period, profile: Sequence[float] | None = None
) -> float:
    """The target for ``period`` on its own: what SPC's assurance compares increments with."""
    fractions = _fractions(period.frequency, profile)
    share = fractions[period.index - 1] / math.fsum(fractions)
    return _finite("annual target", annual_target) * share


def rag_target(
    kind: IndicatorKind,
    target: float | None,
    period: Period,
    profile: Sequence[float] | None = None,
) -> float | None:
    """The figure RAG should compare a return's value with.

    A periodic indicator's target applies to each period as it stands; a cumulative
    indicator's target is annual, so a year-to-date value is judged against its
    profiled share. None (no target) stays None.
    """
    if target is None:
        return None
    if IndicatorKind(kind) is IndicatorKind.PERIODIC:
        return _finite("target", target)
    return profile_target(target, period, profile)


def periodic_increments(ytd_values: Sequence[tuple[Period, float]]) -> list[tuple[Period, float]]:
    """Each period's own amount, from year-to-date values (in any order).

    The first period of a financial year is its own increment; each later one is its
    year-to-date value less the previous period's. A missing period inside a year
    makes the next increment unknowable (it would hold two periods' worth), so it is
    an error naming the gap rather than a silently wrong point.
    """
    ordered = sorted(ytd_values, key=lambda pair: _period_of(pair).start)
    increments: list[tuple[Period, float]] = []
    previous: tuple[Period, float] | None = None
    for period, value in ordered:
        value = _finite(f"the value for {period.label}", value)
        if previous is not None and previous[0].frequency is not period.frequency:
            raise ValueError(
                f"{previous[0].label} and {period.label} are of different frequencies: "
                "a year-to-date series has one"
            )
        if previous is not None and previous[0] == period:
            raise ValueError(f"{period.label} appears more than once")
        if period.index == 1:
            increments.append((period, value))
        elif previous is None or previous[0] != period.previous():
            missing = period.previous().label
            raise ValueError(
                f"{missing} is missing, so the increment for {period.label} cannot be worked "
                "out from year-to-date values"
            )
        else:
            increments.append((period, value - previous[1]))
        previous = (period, value)
    return increments


def spc_series(
    kind: IndicatorKind, values: Sequence[tuple[Period, float]]
) -> list[tuple[str, float]]:
    """The (period label, value) points SPC should chart for this kind of indicator."""
    if IndicatorKind(kind) is IndicatorKind.CUMULATIVE:
        values = periodic_increments(values)
    else:
        values = sorted(values, key=lambda pair: _period_of(pair).start)
    return [(period.label, value) for period, value in values]


def _period_of(pair: tuple[Period, float]) -> Period:
    if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], Period):
        raise TypeError(f"expected a (Period, value) pair, got {pair!r}")
    return pair[0]


def _fractions(frequency: Frequency, profile: Sequence[float] | None) -> list[float]:
    count = _PERIODS_PER_YEAR[Frequency(frequency)]
    if profile is None:
        return [1 / count] * count
    shares = [_finite("a profile fraction", f) for f in profile]
    if len(shares) != count:
        raise ValueError(
            f"a {Frequency(frequency).value} profile has {count} fractions, one per period; "
            f"got {len(shares)}"
        )
    if any(f < 0 for f in shares):
        raise ValueError(f"profile fractions cannot be negative: {list(profile)}")
    total: Fraction = sum((Fraction(repr(f)) for f in shares), Fraction(0))
    if abs(total - 1) > _PROFILE_TOLERANCE:
        raise ValueError(f"profile fractions must add up to 1; these add up to {float(total):g}")
    return shares


def _finite(name: str, x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return float(x)
