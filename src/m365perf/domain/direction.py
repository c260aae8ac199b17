"""Direction of travel: is the indicator getting better or worse?

Councils report it against the previous period and the same period last year,
read through the indicator's polarity (a fall in sickness days is improving).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from m365perf.domain.kinds import Polarity

__all__ = ["Direction", "Travel", "direction", "long_trend", "travel"]

_REL_TOL = 1e-9
_ABS_TOL = 1e-12


class Direction(StrEnum):
    """Which way the indicator moved, judged by its polarity."""

    IMPROVING = "improving"
    WORSENING = "worsening"
    NO_CHANGE = "no_change"
    NOT_COMPARABLE = "not_comparable"


@dataclass(frozen=True)
class Travel:
    """The two directions a performance report shows next to a value."""

    vs_previous: Direction
    vs_last_year: Direction


def direction(
    current: float | None,
    previous: float | None,
    polarity: Polarity,
    *,
    threshold: float = 0.0,
) -> Direction:
    """Direction from ``previous`` to ``current``.

    A change no bigger than ``threshold`` (in the indicator's unit) is
    ``NO_CHANGE``. Missing values give ``NOT_COMPARABLE``; so does any change of an
    indicator without polarity, since nobody can say whether it is better (equal
    values still give ``NO_CHANGE``).
    """
    if not _is_number(threshold) or not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a number of 0 or more, got {threshold!r}")
    if current is None or previous is None:
        return Direction.NOT_COMPARABLE
    for name, number in (("current", current), ("previous", previous)):
        if not _is_number(number) or not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number or None, got {number!r}")
    polarity = Polarity(polarity)
    change = current - previous
    if abs(change) <= threshold or math.isclose(
        current, previous, rel_tol=_REL_TOL, abs_tol=_ABS_TOL
    ):
        return Direction.NO_CHANGE
    if polarity is Polarity.NONE:
        return Direction.NOT_COMPARABLE
    better = change > 0 if polarity is Polarity.HIGHER_IS_BETTER else change < 0
    return Direction.IMPROVING if better else Direction.WORSENING


def long_trend(
    current: float | None,
    history: Sequence[float],
    polarity: Polarity,
    n: int,
    *,
    threshold: float = 0.0,
) -> Direction:
    """Direction of ``current`` against the mean of the last ``n`` values of ``history``.

    ``history`` is oldest first and excludes ``current``. With fewer than ``n``
    earlier values the trend is ``NOT_COMPARABLE``: a "long" trend from one or two
    points would mislead.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number of 1 or more, got {n!r}")
    if len(history) < n:
        return direction(current, None, polarity, threshold=threshold)
    recent = history[-n:]
    return direction(current, math.fsum(recent) / n, polarity, threshold=threshold)


def travel(
    current: float | None,
    previous: float | None,
    same_period_last_year: float | None,
    polarity: Polarity,
    *,
    threshold: float = 0.0,
) -> Travel:
    """Direction against the previous period and against the same period last year."""
    return Travel(
        vs_previous=direction(current, previous, polarity, threshold=threshold),
        vs_last_year=direction(current, same_period_last_year, polarity, threshold=threshold),
    )


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
