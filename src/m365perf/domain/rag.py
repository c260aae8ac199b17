"""Red / amber / green against target, with targets that change over time.

Targets and tolerances carry the period from which they apply, so setting next
year's target never recolours last year's results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from m365perf.domain.kinds import Polarity, Rag
from m365perf.domain.periods import Period

__all__ = ["Target", "Tolerance", "rag", "rag_for_period", "target_for"]

# Values and targets arrive as decimals typed by people (87.5, 0.3); float arithmetic
# must not turn "exactly on target" into "just missed it".
_REL_TOL = 1e-9
_ABS_TOL = 1e-12


@dataclass(frozen=True)
class Tolerance:
    """How far worse than target still counts as amber.

    ``absolute`` is in the indicator's own unit (2 days, 1.5 percentage points);
    ``percent`` is a percentage of the target's size (5 means 5% of |target|).
    """

    kind: Literal["absolute", "percent"]
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in ("absolute", "percent"):
            raise ValueError(f"tolerance kind must be 'absolute' or 'percent', got {self.kind!r}")
        if not _is_number(self.amount) or not math.isfinite(self.amount) or self.amount < 0:
            raise ValueError(f"tolerance amount must be a number of 0 or more, got {self.amount!r}")

    def band(self, target: float) -> float:
        """The width of the amber band for this target, in the indicator's unit.

        A percent tolerance of a zero target is zero wide: there is no amber, only
        green (on target or better) and red.
        """
        if self.kind == "absolute":
            return float(self.amount)
        return abs(target) * self.amount / 100.0


@dataclass(frozen=True)
class Target:
    """A target (None: no target) and its tolerance, from ``applies_from`` onwards.

    It stays in force until a target with a later ``applies_from`` replaces it.
    """

    value: float | None
    applies_from: Period
    tolerance: Tolerance | None = None

    def __post_init__(self) -> None:
        if self.value is not None and (not _is_number(self.value) or not math.isfinite(self.value)):
            raise ValueError(f"a target must be a finite number or None, got {self.value!r}")
        if not isinstance(self.applies_from, Period):
            raise TypeError(f"applies_from must be a Period, got {self.applies_from!r}")


def target_for(targets: Sequence[Target], period: Period) -> Target | None:
    """The target in force for ``period``: the latest one that started on or before it.

    Targets are compared by the start date of their ``applies_from`` period, so a
    target set "from 2026/27" applies to every month and quarter of that year and
    after. If two targets start on the same day, the later one in ``targets`` wins.
    """
    chosen: Target | None = None
    for target in targets:
        starts = target.applies_from.start
        if starts > period.start:
            continue
        if chosen is None or starts >= chosen.applies_from.start:
            chosen = target
    return chosen


def rag(
    value: float,
    target: float | None,
    polarity: Polarity,
    tolerance: Tolerance | None,
) -> Rag:
    """RAG status of ``value`` against ``target``.

    Green: on target or better. Amber: worse, but by no more than the tolerance
    (exactly at target ± tolerance is still amber). Red: worse than that, or any
    amount worse when there is no tolerance. ``Rag.NONE`` when there is no target
    or the indicator has no polarity. A percent tolerance is a share of |target|,
    so with a target of 0 it gives no amber band.
    """
    polarity = Polarity(polarity)
    if target is None or polarity is Polarity.NONE:
        return Rag.NONE
    for name, number in (("value", value), ("target", target)):
        if not _is_number(number) or not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number, got {number!r}")
    shortfall = target - value if polarity is Polarity.HIGHER_IS_BETTER else value - target
    if shortfall <= 0 or _close(value, target):
        return Rag.GREEN
    band = tolerance.band(target) if tolerance is not None else 0.0
    if band > 0 and (shortfall <= band or _close(shortfall, band)):
        return Rag.AMBER
    return Rag.RED


def rag_for_period(
    value: float | None,
    targets: Sequence[Target],
    period: Period,
    polarity: Polarity,
    default_tolerance: Tolerance | None,
    suspended: bool = False,
) -> Rag:
    """RAG for a return in ``period``, using the target in force then.

    ``suspended`` is the flow switching RAG off for the period (as councils did in
    the first COVID year); a no-data return (``value`` None) has no RAG either. The
    target's own tolerance wins over ``default_tolerance``.
    """
    if suspended or value is None:
        return Rag.NONE
    target = target_for(targets, period)
    if target is None or target.value is None:
        return Rag.NONE
    tolerance = target.tolerance if target.tolerance is not None else default_tolerance
    return rag(value, target.value, polarity, tolerance)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
