"""Statistical process control: NHS England "Making Data Count" XmR charts.

RAG says whether this period met the target; SPC says whether the process behind the
numbers has changed, and whether the target will be met reliably. Both are shown side
by side so that "green" cannot hide drift. The rules are those of
``reference/spc-rules.md``; where the two reference implementations (the R package
NHSRplotthedots 0.2.2 and NHS England's Excel tools) differ we say which we follow:

- Screening of moving ranges is off by default (the Excel behaviour); ``screen=True``
  gives the R default: moving ranges of 3.267 x mR-bar or more are dropped, once.
- Two-in-three: all three points must be on the same side of the mean, and only
  points strictly between the near limit and the process limit count towards the two
  and are flagged (R 0.2.2 and the rules text). NHS England's Excel tool changed in
  late 2023 to count points beyond the process limit too; we do not, so a point beyond
  the limit is flagged by ``outside_limits`` only.
- Trend and shift runs are always 7 points (the Excel tool can be set to 6).
- While a baseline has fewer points than asked for, the limits are trial limits from
  every point so far, so each new point moves them (as the R package computes them);
  ``trial_limits`` says so. A caller who asks for a baseline of 5 gets fixed limits
  from 5 points: "trial" means "will still move", not "fewer than 12".
- After a rebase every rule starts afresh: runs do not cross a rebase (R groups its
  rules by rebase group).
- A point shared by a rising and a falling trend (a peak or a trough) takes the
  direction of the later trend, as the R package does.

Values are compared exactly, as the decimals people typed (``5.4`` is 54/10, not the
nearest binary float), so a point "exactly on the mean" or "exactly on a limit" means
what a reader of the table would think, and adding a constant to every value or
scaling them never changes which rules fire.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise
from typing import Any

from m365perf.domain.kinds import Polarity

__all__ = [
    "DEFAULT_BASELINE",
    "MIN_POINTS",
    "Assurance",
    "Rebase",
    "Rule",
    "SpcPoint",
    "SpcResult",
    "Variation",
    "analyse",
]

DEFAULT_BASELINE = 12
MIN_POINTS = 5
"""Fewer points than this are "not enough history": four moving ranges at least, before
limits are worth reading (the chart is still drawn; a card says it cannot judge yet)."""
_LIMIT = Fraction(266, 100)  # 2.66: converts mR-bar to three sigma
_NEAR = _LIMIT * 2 / 3  # two sigma: the "near" limits of the two-in-three rule
_SCREEN = Fraction(3267, 1000)  # moving ranges this many times mR-bar are dropped
_RUN = 7  # points in a trend or a shift
_WHERE = {1: "upper", -1: "lower"}


class Rule(StrEnum):
    """A special-cause rule; declared in labelling precedence, strongest first."""

    OUTSIDE_LIMITS = "outside_limits"
    TREND = "trend"
    TWO_IN_THREE = "two_in_three"
    SHIFT = "shift"


class Variation(StrEnum):
    """The label of one point, in Making Data Count's words."""

    COMMON_CAUSE = "common cause"
    IMPROVEMENT = "special cause — improvement"
    CONCERN = "special cause — concern"
    NEITHER = "special cause — neither"

    @property
    def colour(self) -> str:
        """NHS England's icon colour for this variation."""
        return _COLOURS[self]


_COLOURS = {
    Variation.COMMON_CAUSE: "#a6a6a6",
    Variation.IMPROVEMENT: "#00b0f0",
    Variation.CONCERN: "#e46c0a",
    Variation.NEITHER: "#490092",
}


class Assurance(StrEnum):
    """Whether the process, as it stands, will meet the target."""

    CONSISTENTLY_PASSES = "consistently passes"
    CONSISTENTLY_FAILS = "consistently fails"
    HIT_AND_MISS = "hit and miss"


@dataclass(frozen=True)
class Rebase:
    """A recorded decision that the process changed: new limits from ``from_period``.

    ``from_period`` is a period label from the series, or a 0-based position in it.
    Limits are never rebased automatically; the reason is what the audit trail shows.
    """

    from_period: str | int
    reason: str

    def __post_init__(self) -> None:
        if isinstance(self.from_period, bool) or not isinstance(self.from_period, str | int):
            raise TypeError(
                f"a rebase starts at a period label or position, got {self.from_period!r}"
            )
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError(f"a rebase needs a reason (from {self.from_period!r})")


@dataclass(frozen=True)
class SpcPoint:
    """One period on the chart: its value, the limits it is judged against, its label.

    The limits are None only when the point's baseline has a single point, so there
    is no moving range yet. ``reason`` says in words why the label was given.
    """

    period: str
    value: float
    mean: float
    lower: float | None
    upper: float | None
    near_lower: float | None
    near_upper: float | None
    rules: tuple[Rule, ...]
    label: Variation
    colour: str
    reason: str


@dataclass(frozen=True)
class SpcResult:
    """The whole chart, plus the two facts an approver needs about the latest point.

    ``trial_limits`` and ``baseline`` describe the limits the latest point is judged
    against: trial limits rest on fewer points than the baseline asked for, so they
    will move as points arrive; ``baseline`` is how many points they rest on.
    """

    points: tuple[SpcPoint, ...]
    polarity: Polarity
    target: float | None
    assurance: Assurance | None
    trial_limits: bool
    baseline: int
    rebases: tuple[Rebase, ...]

    @property
    def latest(self) -> SpcPoint:
        return self.points[-1]

    def summary(self) -> str:
        """One line for an approval card next to RAG.

        For example "special cause — concern: 7 points below the mean; target hit and miss".
        """
        latest = self.latest
        parts = [f"{latest.label.value}: {latest.reason}"]
        if self.assurance is not None:
            parts.append(f"target {self.assurance.value}")
        if latest.upper is None:
            parts.append("no limits yet (one point)")
        elif self.trial_limits:
            parts.append(f"trial limits from {self.baseline} points")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready document (the shape ``m365perf spc --json`` prints)."""
        return {
            "points": [
                {
                    "period": p.period,
                    "value": p.value,
                    "mean": p.mean,
                    "lower_limit": p.lower,
                    "upper_limit": p.upper,
                    "near_lower_limit": p.near_lower,
                    "near_upper_limit": p.near_upper,
                    "rules": [r.value for r in p.rules],
                    "label": p.label.value,
                    "colour": p.colour,
                    "reason": p.reason,
                }
                for p in self.points
            ],
            "polarity": self.polarity.value,
            "target": self.target,
            "assurance": self.assurance.value if self.assurance is not None else None,
            "trial_limits": self.trial_limits,
            "baseline": self.baseline,
            "rebases": [{"from_period": r.from_period, "reason": r.reason} for r in self.rebases],
            "summary": self.summary(),
        }


def analyse(
    points: Sequence[tuple[str, float]],
    polarity: Polarity,
    *,
    target: float | None = None,
    baseline: int = DEFAULT_BASELINE,
    screen: bool = False,
    rebases: Sequence[Rebase] = (),
) -> SpcResult:
    """Chart ``points`` (period label, value; oldest first) as an XmR chart.

    ``baseline`` is how many points fix the mean and limits (12 by default; NHS
    England's tools allow 12 to 20; any number from 2 is accepted). ``rebases`` start
    new limits from the periods they name. Raises ValueError on bad input.
    """
    polarity = _polarity(polarity)
    periods, values = _checked_points(points)
    if isinstance(baseline, bool) or not isinstance(baseline, int) or baseline < 2:
        raise ValueError(
            f"the baseline must be a whole number of points, 2 or more, got {baseline!r}"
        )
    if target is not None and (not _is_number(target) or not math.isfinite(target)):
        raise ValueError(f"the target must be a finite number, got {target!r}")
    starts = _segment_starts(periods, rebases)
    sign = {Polarity.HIGHER_IS_BETTER: 1, Polarity.LOWER_IS_BETTER: -1, Polarity.NONE: 0}[polarity]

    charted: list[SpcPoint] = []
    limits = _Limits(Fraction(0), None, 0, True)
    for start, end in zip(starts, [*starts[1:], len(values)], strict=True):
        exact = [_exact(v) for v in values[start:end]]
        limits = _limits(exact, baseline, screen)
        verdicts = _judge(exact, limits, sign)
        for offset, (rules, label, reason) in enumerate(verdicts):
            i = start + offset
            charted.append(
                SpcPoint(
                    period=periods[i],
                    value=values[i],
                    mean=float(limits.mean),
                    lower=limits.float_at(-_LIMIT),
                    upper=limits.float_at(_LIMIT),
                    near_lower=limits.float_at(-_NEAR),
                    near_upper=limits.float_at(_NEAR),
                    rules=rules,
                    label=label,
                    colour=label.colour,
                    reason=reason,
                )
            )
    return SpcResult(
        points=tuple(charted),
        polarity=polarity,
        target=None if target is None else float(target),
        assurance=_assurance(limits, target, polarity),
        trial_limits=limits.trial,
        baseline=limits.used,
        rebases=tuple(rebases),
    )


# --- limits -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    mean: Fraction
    mr_bar: Fraction | None  # None: a single point, no moving range
    used: int
    trial: bool

    def at(self, sigmas: Fraction) -> Fraction | None:
        return None if self.mr_bar is None else self.mean + sigmas * self.mr_bar

    def float_at(self, sigmas: Fraction) -> float | None:
        exact = self.at(sigmas)
        return None if exact is None else float(exact)


def _limits(values: list[Fraction], baseline: int, screen: bool) -> _Limits:
    """Mean and mR-bar from the first ``baseline`` points (all of them while fewer)."""
    base = values[:baseline]
    mean = sum(base, Fraction(0)) / len(base)
    trial = len(values) < baseline
    if len(base) < 2:
        return _Limits(mean, None, len(base), trial)
    ranges = [abs(b - a) for a, b in pairwise(base)]
    mr_bar = sum(ranges, Fraction(0)) / len(ranges)
    if screen and mr_bar > 0:
        kept = [r for r in ranges if r < _SCREEN * mr_bar]
        mr_bar = sum(kept, Fraction(0)) / len(kept)
    return _Limits(mean, mr_bar, len(base), trial)


def _assurance(limits: _Limits, target: float | None, polarity: Polarity) -> Assurance | None:
    upper, lower = limits.at(_LIMIT), limits.at(-_LIMIT)
    if target is None or polarity is Polarity.NONE or upper is None or lower is None:
        return None
    exact = _exact(target)
    higher = polarity is Polarity.HIGHER_IS_BETTER
    if exact > upper:
        return Assurance.CONSISTENTLY_FAILS if higher else Assurance.CONSISTENTLY_PASSES
    if exact < lower:
        return Assurance.CONSISTENTLY_PASSES if higher else Assurance.CONSISTENTLY_FAILS
    return Assurance.HIT_AND_MISS


# --- rules --------------------------------------------------------------------------


@dataclass
class _Flag:
    direction: int  # +1 above the mean or rising, -1 below or falling
    reason: str


def _judge(
    values: list[Fraction], limits: _Limits, sign: int
) -> list[tuple[tuple[Rule, ...], Variation, str]]:
    """Rules, label and reason for each point of one baseline segment."""
    sides = [_sign(v - limits.mean) for v in values]
    found: dict[Rule, dict[int, _Flag]] = {
        Rule.OUTSIDE_LIMITS: _outside(values, limits),
        Rule.TREND: _trends(values),
        Rule.TWO_IN_THREE: _two_in_three(values, limits, sides),
        Rule.SHIFT: _shifts(sides),
    }
    judged: list[tuple[tuple[Rule, ...], Variation, str]] = []
    for i in range(len(values)):
        rules = tuple(rule for rule in Rule if i in found[rule])
        if not rules:
            judged.append(((), Variation.COMMON_CAUSE, "within normal variation"))
            continue
        flag = found[rules[0]][i]
        if sign == 0:
            label = Variation.NEITHER
        elif flag.direction * sign > 0:
            label = Variation.IMPROVEMENT
        else:
            label = Variation.CONCERN
        judged.append((rules, label, flag.reason))
    return judged


def _outside(values: list[Fraction], limits: _Limits) -> dict[int, _Flag]:
    upper, lower = limits.at(_LIMIT), limits.at(-_LIMIT)
    flags: dict[int, _Flag] = {}
    if upper is None or lower is None:
        return flags
    for i, v in enumerate(values):
        if v > upper:
            flags[i] = _Flag(1, "above the upper process limit")
        elif v < lower:
            flags[i] = _Flag(-1, "below the lower process limit")
    return flags


def _runs(signs: list[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of one non-zero sign: (first index, last index, sign)."""
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(signs):
        j = i
        while j + 1 < len(signs) and signs[j + 1] == signs[i]:
            j += 1
        if signs[i] != 0:
            runs.append((i, j, signs[i]))
        i = j + 1
    return runs


def _trends(values: list[Fraction]) -> dict[int, _Flag]:
    """Seven or more points each strictly higher (or lower) than the one before."""
    steps = [_sign(b - a) for a, b in pairwise(values)]
    flags: dict[int, _Flag] = {}
    for first, last, direction in _runs(steps):
        # steps[k] compares points k and k+1, so the run covers points first..last+1
        count = last - first + 2
        if count < _RUN:
            continue
        word = "rising" if direction > 0 else "falling"
        for i in range(first, last + 2):
            prefix = "a" if i == last + 1 else "part of a"
            # later runs overwrite: a peak or trough takes the later trend's direction
            flags[i] = _Flag(direction, f"{prefix} {word} trend of {count} points")
    return flags


def _two_in_three(values: list[Fraction], limits: _Limits, sides: list[int]) -> dict[int, _Flag]:
    """Of 3 points on one side of the mean, 2 or 3 between the near and process limits."""
    upper, lower = limits.at(_LIMIT), limits.at(-_LIMIT)
    near_upper, near_lower = limits.at(_NEAR), limits.at(-_NEAR)
    if upper is None or lower is None or near_upper is None or near_lower is None:
        return {}
    close = [lower <= v <= upper and (v < near_lower or v > near_upper) for v in values]
    best: dict[int, tuple[int, int]] = {}  # point -> (side, most close points in a window)
    for w in range(len(values) - 2):
        side = sides[w]
        if side == 0 or sides[w + 1] != side or sides[w + 2] != side:
            continue
        count = sum(close[w : w + 3])
        if count < 2:
            continue
        for i in range(w, w + 3):
            if close[i] and count > best.get(i, (side, 0))[1]:
                best[i] = (side, count)
    return {
        i: _Flag(side, f"{count} of 3 points close to the {_WHERE[side]} process limit")
        for i, (side, count) in best.items()
    }


def _shifts(sides: list[int]) -> dict[int, _Flag]:
    """Seven or more points in a row on one side of the mean; a point on it breaks the run."""
    flags: dict[int, _Flag] = {}
    for first, last, side in _runs(sides):
        count = last - first + 1
        if count < _RUN:
            continue
        where = "above" if side > 0 else "below"
        for i in range(first, last + 1):
            prefix = "" if i == last else "one of "
            flags[i] = _Flag(side, f"{prefix}{count} points {where} the mean")
    return flags


# --- input --------------------------------------------------------------------------


def _polarity(polarity: Polarity | str) -> Polarity:
    try:
        return Polarity(polarity)
    except ValueError:
        allowed = ", ".join(p.value for p in Polarity)
        raise ValueError(f"unknown polarity {polarity!r}: use one of {allowed}") from None


def _checked_points(points: Sequence[tuple[str, float]]) -> tuple[list[str], list[float]]:
    if not points:
        raise ValueError("there are no points to chart")
    periods: list[str] = []
    values: list[float] = []
    seen: set[str] = set()
    for n, point in enumerate(points, start=1):
        try:
            period, value = point
        except (TypeError, ValueError):
            raise ValueError(f"point {n} must be a (period, value) pair, got {point!r}") from None
        if not isinstance(period, str) or not period.strip():
            raise ValueError(f"point {n} has no period label: {point!r}")
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"the value for {period} must be a finite number, got {value!r}")
        if period in seen:
            raise ValueError(f"period {period!r} appears more than once")
        seen.add(period)
        periods.append(period)
        values.append(float(value))
    return periods, values


def _segment_starts(periods: list[str], rebases: Sequence[Rebase]) -> list[int]:
    """Where each baseline starts: the first point, then each rebase, in order."""
    position = {p: i for i, p in enumerate(periods)}
    starts = {0}
    for rebase in rebases:
        if not isinstance(rebase, Rebase):
            raise TypeError(f"rebases must be Rebase records, got {rebase!r}")
        at = rebase.from_period
        if isinstance(at, str):
            if at not in position:
                raise ValueError(f"cannot rebase from {at!r}: no such period in the series")
            index = position[at]
        else:
            if not 0 <= at < len(periods):
                raise ValueError(
                    f"cannot rebase from point {at}: the series has points 0 to {len(periods) - 1}"
                )
            index = at
        if index == 0:
            raise ValueError(f"a rebase from the first period ({periods[0]}) changes nothing")
        if index in starts:
            raise ValueError(f"two rebases from {periods[index]}: record one decision per period")
        starts.add(index)
    return sorted(starts)


def _exact(value: float) -> Fraction:
    """The decimal the value was typed as: 5.4 is 54/10, not the binary float near it."""
    return Fraction(repr(float(value)))


def _sign(x: Fraction) -> int:
    return (x > 0) - (x < 0)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
