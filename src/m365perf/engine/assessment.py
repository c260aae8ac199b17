"""Judge one returned figure: parse it, colour it, compare it, and say what must be fixed.

Pure: everything it needs (target, history, the flow's rules) is handed in, so the same
judgement is made whether the figure came from Teams, Outlook or the partner form.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from m365perf.cards.views import Draft, InputError, InputField
from m365perf.domain.direction import Direction, direction, long_trend
from m365perf.domain.kinds import Polarity, Rag, Unit
from m365perf.domain.periods import Period, PeriodError
from m365perf.domain.profiling import IndicatorKind, increment_target, rag_target, spc_series
from m365perf.domain.quality import outlier_check, probable_missing_data
from m365perf.domain.rag import Tolerance, rag
from m365perf.domain.spc import MIN_POINTS, SpcResult, Variation, analyse
from m365perf.domain.values import Bounds, ValueProblem, parse_value
from m365perf.flows.model import Flow
from m365perf.store import HistoryPoint


@dataclass(frozen=True)
class Assessment:
    """What a figure was judged to be, and what the officer must still do about it."""

    value: float | None
    raw_value: str
    no_data_reason: str | None
    commentary: str
    rag: Rag
    vs_previous: Direction
    vs_last_year: Direction
    previous: HistoryPoint | None
    last_year: HistoryPoint | None
    variation: str | None
    assurance: str | None
    special_cause_concern: bool
    outlier_reason: str | None
    missing_data_reason: str | None
    input_errors: tuple[InputError, ...]
    needs_confirmation: bool

    @property
    def errors(self) -> tuple[str, ...]:
        """The messages alone (``input_errors`` also says which input each is about)."""
        return tuple(error.message for error in self.input_errors)

    @property
    def accepted(self) -> bool:
        return not self.input_errors

    @property
    def data_quality_flag(self) -> bool:
        """The approver must be told: an unusual value or a probable missing-data zero."""
        return bool(self.outlier_reason or self.missing_data_reason)

    reading_change: float | None = None

    @property
    def change_percent(self) -> float | None:
        """Change on last period, of the period's own figure (increments for year to date)."""
        return self.reading_change


@dataclass(frozen=True)
class VariationText:
    """SPC for the latest point in words, with NHS England's icon colour."""

    variation: str
    assurance: str | None
    colour: str | None
    concern: bool


@dataclass(frozen=True)
class Reading:
    """How a figure reads against its history and target, by the indicator's kind.

    For a year-to-date (cumulative) indicator RAG uses the profiled target, while SPC,
    outliers and the change on last period use each period's own increment; the
    comparison with last year is year-to-date against year-to-date.
    """

    rag_target: float | None
    vs_previous: Direction
    vs_last_year: Direction
    long_trend: Direction
    previous: HistoryPoint | None
    last_year: HistoryPoint | None
    change_percent: float | None
    spc: VariationText | None
    comparable: tuple[float, ...]
    current: float | None
    chart: SpcResult | None = None
    """The whole XmR chart ``spc`` summarises (the exceptions report draws it)."""


def read_figure(
    history: Sequence[HistoryPoint],
    period: Period,
    value: float,
    *,
    polarity: Polarity,
    target: float | None,
    kind: IndicatorKind = IndicatorKind.PERIODIC,
    profile: Sequence[float] | None = None,
) -> Reading:
    """Read ``value`` for ``period`` against the periods before it."""
    past = [p for p in history if p.period_start < period.start]
    by_start = {p.period_start: p for p in past}
    previous = by_start.get(period.previous().start)
    last_year = by_start.get(period.same_period_last_year().start)
    points: list[tuple[Period, float]] = []
    for point in past:
        with contextlib.suppress(PeriodError):
            points.append((Period.parse(point.period), point.value))
    series: list[tuple[str, float]] | None
    try:
        series = spc_series(kind, [*points, (period, value)])
    except ValueError:  # a gap in a year-to-date history: no increment can be known
        series = None
    cumulative = kind is IndicatorKind.CUMULATIVE
    rag_figure = rag_target(kind, target, period, profile) if target is not None else None
    spc_target = (
        increment_target(target, period, profile) if cumulative and target is not None else target
    )
    current: float | None = series[-1][1] if series else (None if cumulative else value)
    earlier = dict(series[:-1]) if series else {}
    before = earlier.get(period.previous().label)
    if not cumulative:
        before = previous.value if previous else None
    comparable = tuple(v for _, v in series[:-1]) if series else ()
    spc = chart = None
    if series:
        chart = analyse(series, polarity, target=spc_target)
        spc = variation_text(chart)
    change = None
    if current is not None and before not in (None, 0):
        assert before is not None
        change = abs(current - before) / abs(before) * 100
    return Reading(
        rag_target=rag_figure,
        vs_previous=direction(current, before, polarity),
        vs_last_year=direction(value, last_year.value if last_year else None, polarity),
        long_trend=(
            long_trend(current, comparable, polarity, LONG_TREND_N)
            if current is not None
            else Direction.NOT_COMPARABLE
        ),
        previous=previous,
        last_year=last_year,
        change_percent=change,
        spc=spc,
        comparable=comparable,
        current=current,
        chart=chart,
    )


def variation_text(chart: SpcResult) -> VariationText:
    """The latest point in words, saying honestly how much history it rests on.

    Below :data:`MIN_POINTS` nothing is judged ("not enough history (3 points)"), rather
    than "common cause" from a chart of one; trial limits say how many points they use.
    """
    count = len(chart.points)
    if count < MIN_POINTS:
        noun = "point" if count == 1 else "points"
        return VariationText(
            variation=f"not enough history ({count} {noun})",
            assurance=None,
            colour=None,
            concern=False,
        )
    latest = chart.latest
    words = f"{latest.label.value}: {latest.reason}"
    if chart.trial_limits:
        words += f"; trial limits from {chart.baseline} points"
    return VariationText(
        variation=words,
        assurance=chart.assurance.value if chart.assurance else None,
        colour=latest.colour,
        concern=latest.label is Variation.CONCERN,
    )


#: Periods in the "long trend": the figure against the mean of the last three.
LONG_TREND_N = 3


def rag_suspended(flow: Flow, period: Period) -> bool:
    """Whether the flow switched RAG off for this period (direction is still reported)."""
    for suspension in flow.rag.suspended:
        try:
            start = Period.parse_for(flow.frequency, suspension.from_period)
            end = Period.parse_for(flow.frequency, suspension.to_period)
        except PeriodError:
            continue
        if start.start <= period.start <= end.end:
            return True
    return False


def flow_tolerance(flow: Flow) -> Tolerance:
    tolerance = flow.rag.tolerance
    if tolerance.absolute is not None:
        return Tolerance("absolute", tolerance.absolute)
    return Tolerance("percent", tolerance.percent or 0.0)


def assess(
    draft: Draft,
    *,
    flow: Flow,
    period: Period,
    unit: Unit,
    polarity: Polarity,
    target: float | None,
    tolerance: Tolerance | None,
    history: Sequence[HistoryPoint],
    bounds: Bounds | None = None,
    kind: IndicatorKind = IndicatorKind.PERIODIC,
    profile: Sequence[float] | None = None,
) -> Assessment:
    """Judge the officer's draft for one indicator against its target and history."""
    errors: list[InputError] = []
    raw = draft.value.strip()
    reason = draft.no_data_reason.strip() if draft.no_data else None
    value: float | None = None
    if draft.no_data and not reason:
        errors.append(
            InputError(InputField.NO_DATA_REASON, "Say why there is no data this period.")
        )
    elif draft.no_data and raw:
        errors.append(
            InputError(
                InputField.VALUE, "Either enter a value or tick 'no data this period', not both."
            )
        )
    elif not draft.no_data:
        try:
            value = parse_value(raw, unit, bounds).value
        except ValueProblem as problem:
            errors.append(InputError(InputField.VALUE, problem.message))

    reading = (
        read_figure(
            history, period, value, polarity=polarity, target=target, kind=kind, profile=profile
        )
        if value is not None
        else None
    )
    suspended = rag_suspended(flow, period)
    colour = Rag.NONE
    if value is not None and reading is not None and not suspended:
        colour = rag(value, reading.rag_target, polarity, tolerance or flow_tolerance(flow))
    variation = assurance = None
    concern = False
    outlier_reason = missing_reason = None
    needs_confirmation = False
    if reading is not None and reading.current is not None:
        if reading.spc is not None:
            variation, assurance = reading.spc.variation, reading.spc.assurance
            concern = reading.spc.concern
        values = list(reading.comparable)
        verdict = outlier_check(
            reading.current, values, threshold_percent=flow.rag.outlier_threshold_percent
        )
        outlier_reason = verdict.reason if verdict.is_outlier else None
        missing_reason = probable_missing_data(reading.current, values)
        if (outlier_reason or missing_reason) and not draft.confirmed:
            needs_confirmation = True
            errors.append(
                InputError(
                    InputField.CONFIRM,
                    (missing_reason or outlier_reason or "")
                    + " Check the figure, or tick 'I confirm this value is correct'.",
                )
            )
    commentary = draft.comment.strip()
    if not commentary and value is not None:
        if colour in flow.rag.commentary_required_for:
            errors.append(
                InputError(
                    InputField.COMMENT,
                    f"Add a comment: commentary is required when the figure is {colour}.",
                )
            )
        elif concern and flow.rag.commentary_on_special_cause_concern:
            errors.append(
                InputError(
                    InputField.COMMENT,
                    "Add a comment: the figure shows a special cause of concern.",
                )
            )
    return Assessment(
        value=value,
        raw_value=raw,
        no_data_reason=reason,
        commentary=commentary,
        rag=colour,
        vs_previous=reading.vs_previous if reading else Direction.NOT_COMPARABLE,
        vs_last_year=reading.vs_last_year if reading else Direction.NOT_COMPARABLE,
        previous=reading.previous if reading else None,
        last_year=reading.last_year if reading else None,
        reading_change=reading.change_percent if reading else None,
        variation=variation,
        assurance=assurance,
        special_cause_concern=concern,
        outlier_reason=outlier_reason,
        missing_data_reason=missing_reason,
        input_errors=tuple(errors),
        needs_confirmation=needs_confirmation,
    )


def is_blank(draft: Draft) -> bool:
    """Nothing typed for this indicator: the owner is returning it later."""
    return not (
        draft.value.strip() or draft.no_data or draft.comment.strip() or draft.action_what.strip()
    )
