"""Card views built from the store: what an owner or an approver is shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from m365perf.cards import (
    ActionUpdate,
    ApprovalView,
    CommentaryRule,
    Draft,
    IndicatorRequest,
    InputError,
    OwnerRequestView,
    PeriodValue,
    ReturnedIndicator,
    SentBack,
)
from m365perf.domain.kinds import Rag
from m365perf.domain.lifecycle import CURRENT_STEP, StepStatus
from m365perf.domain.periods import Period
from m365perf.domain.profiling import IndicatorKind, rag_target
from m365perf.domain.quality import probable_missing_data
from m365perf.domain.rag import Tolerance
from m365perf.engine.actions import action_hint, open_actions, return_actions
from m365perf.engine.assessment import Reading, flow_tolerance, read_figure
from m365perf.engine.closing import open_for_owner
from m365perf.engine.context import EngineContext, local_day
from m365perf.flows.model import Flow
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.plan.register import kind_and_profile
from m365perf.plan.timetable import timetable
from m365perf.store import (
    ApprovalStep,
    Cycle,
    HistoryPoint,
    Indicator,
    Return,
    ReturnStatus,
    Transaction,
)


def indicator_target(
    tx: Transaction, flow: Flow, indicator: Indicator, period: Period
) -> tuple[float | None, Tolerance | None]:
    """The target in force for the period and its tolerance (the flow's by default)."""
    found = tx.target_for(flow.id, indicator.indicator_key, period.start)
    if found is None or found.value is None:
        return None, None
    if found.tolerance_kind in ("absolute", "percent") and found.tolerance_amount is not None:
        if found.tolerance_kind == "absolute":
            return found.value, Tolerance("absolute", found.tolerance_amount)
        return found.value, Tolerance("percent", found.tolerance_amount)
    return found.value, flow_tolerance(flow)


def judged_target(
    tx: Transaction, flow: Flow, indicator: Indicator, period: Period
) -> tuple[float | None, float | None, float | None]:
    """The target a figure is judged against, the annual one if that differs, the band.

    A year-to-date indicator is judged against its profiled share of the annual target
    (``domain.profiling.rag_target``), so that is what a card shows as its target, with
    the annual target beside it; the amber band is the tolerance at the profiled target.
    """
    target, tolerance = indicator_target(tx, flow, indicator, period)
    kind, profile = indicator_kind(flow, indicator)
    annual = None
    if target is not None and kind is IndicatorKind.CUMULATIVE:
        annual, target = target, rag_target(kind, target, period, profile)
    band = tolerance.band(target) if tolerance and target is not None else None
    return target, annual, band


def commentary_rule(flow: Flow) -> CommentaryRule:
    """When this flow requires commentary, for the hint on the commentary box."""
    return CommentaryRule(
        rags=tuple(flow.rag.commentary_required_for),
        special_cause_concern=flow.rag.commentary_on_special_cause_concern,
    )


def indicator_kind(
    flow: Flow, indicator: Indicator
) -> tuple[IndicatorKind, tuple[float, ...] | None]:
    """Periodic or year-to-date, and the target's profile, from the register row."""
    try:
        return kind_and_profile(flow, indicator.raw)
    except ValueError:  # reported when the register was read; judge it as periodic
        return IndicatorKind.PERIODIC, None


def read_return(
    tx: Transaction, flow: Flow, indicator: Indicator, period: Period, value: float
) -> Reading:
    """How a returned figure reads against its target and the indicator's history."""
    target, _tolerance = indicator_target(tx, flow, indicator, period)
    kind, profile = indicator_kind(flow, indicator)
    history = history_before(tx, flow, indicator.indicator_key, period)
    return read_figure(
        history,
        period,
        value,
        polarity=indicator.polarity,
        target=target,
        kind=kind,
        profile=profile,
    )


def read_ahead(
    tx: Transaction,
    flow: Flow,
    period: Period,
    returns: Sequence[Return],
    *people: str,
) -> None:
    """Read at once what drawing or deciding on these returns needs (their chains,
    indicators, targets, history and the people named), so that the per-return reads
    that follow are answered from this transaction: a handful of statements, however
    many returns a click names."""
    ids = [r.id for r in returns if r.id is not None]
    keys = [r.indicator_key for r in returns]
    tx.prefetch_steps(ids)
    tx.prefetch_indicators(flow.id, keys)
    tx.prefetch_targets(flow.id, keys, period.start)
    tx.prefetch_history(keys, period.frequency, before=period.start)
    refs = set(people) | set(flow.performance_team)
    for members in flow.groups.values():
        refs.update(members)
    for ret in returns:
        refs.update(r for r in (ret.owner_id, ret.submitted_by, ret.decided_by) if r)
        for step in tx.list_steps(ret.id or 0) if ret.id is not None else ():
            refs.update(step.approvers)
            if step.decided_by:
                refs.add(step.decided_by)
    tx.prefetch_people(refs)


def history_before(tx: Transaction, flow: Flow, key: str, period: Period) -> list[HistoryPoint]:
    return tx.history(key, period.frequency, before=period.start)


def _recent(history: Sequence[HistoryPoint], period: Period, count: int) -> tuple[PeriodValue, ...]:
    wanted = []
    cursor = period.previous()
    by_start = {p.period_start: p for p in history}
    for _ in range(count):
        point = by_start.get(cursor.start)
        wanted.append(PeriodValue(cursor.label, point.value if point else None))
        cursor = cursor.previous()
    return tuple(reversed(wanted))


def _last_year(history: Sequence[HistoryPoint], period: Period) -> PeriodValue:
    last = period.same_period_last_year()
    point = next((p for p in history if p.period_start == last.start), None)
    return PeriodValue(last.label, point.value if point else None)


def request_item(
    tx: Transaction,
    flow: Flow,
    period: Period,
    ret: Return,
    *,
    draft: Draft | None = None,
    errors: Sequence[str | InputError] = (),
    needs_confirmation: bool = False,
    show_sent_back: bool = True,
    action_errors: Sequence[str] = (),
) -> IndicatorRequest:
    """An indicator still to return; one sent back says by whom, when and why."""
    indicator = _indicator(tx, flow, ret)
    target, annual, band = judged_target(tx, flow, indicator, period)
    history = history_before(tx, flow, ret.indicator_key, period)
    return IndicatorRequest(
        indicator_id=ret.indicator_key,
        name=indicator.name,
        unit=indicator.unit,
        version=ret.version,
        polarity=indicator.polarity,
        target=target,
        tolerance=band,
        annual_target=annual,
        commentary_rule=commentary_rule(flow),
        comparator=indicator.comparator,
        recent=_recent(history, period, 3),
        last_year=_last_year(history, period),
        draft=draft,
        errors=tuple(errors),
        needs_confirmation=needs_confirmation,
        sent_back=sent_back(tx, ret) if show_sent_back else None,
        action_hint=action_hint(flow),
        action_errors=tuple(action_errors),
    )


def sent_back(tx: Transaction, ret: Return) -> SentBack | None:
    """Why a rejected return is back with its owner (an approver's rejection or a correction)."""
    if ret.status is not ReturnStatus.REJECTED or ret.sent_back_at is None:
        return None
    by = tx.find_person(ret.sent_back_by or "") if ret.sent_back_by else None
    # A correction reopens an approved return: its chain holds no rejected step.
    rejected = any(s.status is StepStatus.REJECTED for s in tx.list_steps(ret.id or 0))
    return SentBack(
        by_name=by.name if by else (ret.sent_back_by or "the performance team"),
        at=ret.sent_back_at,
        reason=ret.sent_back_reason or "no reason was given",
        correction=not rejected,
        previous_value=ret.value,
        previous_no_data_reason=ret.no_data_reason,
    )


_SUBMITTED = (AuditAction.RETURN_SUBMITTED, AuditAction.RETURN_SUBMITTED_LATE)


def resubmission(tx: Transaction, ret: Return) -> SentBack | None:
    """For a return submitted again after being sent back: who sent it back, when, why,
    and the figure it held then (from the audit trail: the submit's "before")."""
    if ret.sent_back_at is None or ret.status is ReturnStatus.REJECTED or ret.id is None:
        return None
    sent_back_as: AuditAction | None = None
    figure: dict[str, object] | None = None
    for event in tx.list_audit(subject_type=SubjectType.RETURN, subject_id=ret.id):
        if event.action in (AuditAction.RETURN_REJECTED, AuditAction.RETURN_CORRECTION_REQUESTED):
            sent_back_as = AuditAction(event.action)
            after = event.after or {}
            figure = None
            if "previous_value" in after:  # kept with the send-back since issue 9
                figure = {
                    "value": after.get("previous_value"),
                    "no_data_reason": after.get("previous_no_data_reason"),
                }
        elif event.action in _SUBMITTED and sent_back_as is not None and figure is None:
            figure = event.before or {}  # older trails: the resubmission's "before"
    if sent_back_as is None:
        return None
    by = tx.find_person(ret.sent_back_by or "") if ret.sent_back_by else None
    value = (figure or {}).get("value")
    reason = (figure or {}).get("no_data_reason")
    return SentBack(
        by_name=by.name if by else (ret.sent_back_by or "the performance team"),
        at=ret.sent_back_at,
        reason=ret.sent_back_reason or "no reason was given",
        correction=sent_back_as is AuditAction.RETURN_CORRECTION_REQUESTED,
        previous_value=float(value) if isinstance(value, int | float) else None,
        previous_no_data_reason=reason if isinstance(reason, str) else None,
    )


def returned_item(
    tx: Transaction, flow: Flow, ret: Return, awaiting: str | None = None
) -> ReturnedIndicator:
    indicator = _indicator(tx, flow, ret)
    return ReturnedIndicator(
        indicator_id=ret.indicator_key,
        name=indicator.name,
        unit=indicator.unit,
        value=ret.value,
        rag=ret.rag or Rag.NONE,
        no_data_reason=ret.no_data_reason,
        direction_vs_previous=ret.direction,
        late=ret.late,
        awaiting_approval_by=awaiting,
        approved=ret.status is ReturnStatus.APPROVED,
    )


def _indicator(tx: Transaction, flow: Flow, ret: Return) -> Indicator:
    indicator = tx.find_indicator(flow.id, ret.indicator_key)
    if indicator is None:
        raise LookupError(f"indicator {ret.indicator_key} of flow {flow.id} is not in the store")
    return indicator


def awaiting_names(tx: Transaction, steps: Sequence[ApprovalStep]) -> str | None:
    """Who an open step waits for, by name ("Bob Ray or Cat Doe")."""
    for step in steps:
        if step.status in CURRENT_STEP:
            names = []
            for person_id in step.approvers:
                person = tx.find_person(person_id)
                names.append(person.name if person else person_id)
            return " or ".join(names)
    return None


def owner_request(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    owner_id: str,
    owner_name: str,
    returns: Sequence[Return],
    *,
    card_id: str,
    now: datetime,
    drafts: Mapping[str, Draft] | None = None,
    errors: Mapping[str, Sequence[str | InputError]] | None = None,
    confirm: frozenset[str] = frozenset(),
    action_errors: Mapping[str, Sequence[str]] | None = None,
    typed_actions: Mapping[int, ActionUpdate] | None = None,
    action_update_errors: Mapping[int, Sequence[str]] | None = None,
    reminder: int | None = None,
    notice: str | None = None,
) -> OwnerRequestView:
    """One owner's card: inputs for what is still due, receipt lines for the rest.

    ``reminder`` is the reminder's number when this card is one; ``notice`` a message
    about the whole card (what an empty submit is missing).
    """
    flow = ctx.flow(cycle.flow_id)
    period = ctx.period_of(cycle)
    items: list[IndicatorRequest | ReturnedIndicator] = []
    takes = open_for_owner(flow, cycle)
    for ret in returns:
        shown_again = ret.indicator_key in (errors or {}) or ret.indicator_key in (
            action_errors or {}
        )
        if ret.status in takes or shown_again:
            items.append(
                request_item(
                    tx,
                    flow,
                    period,
                    ret,
                    draft=(drafts or {}).get(ret.indicator_key),
                    errors=(errors or {}).get(ret.indicator_key, ()),
                    needs_confirmation=ret.indicator_key in confirm,
                    action_errors=(action_errors or {}).get(ret.indicator_key, ()),
                )
            )
        else:
            steps = tx.list_steps(ret.id or 0)
            items.append(returned_item(tx, flow, ret, awaiting_names(tx, steps)))
    return OwnerRequestView(
        cycle_id=str(cycle.id),
        owner_id=owner_id,
        card_id=card_id,
        owner_name=owner_name,
        flow_name=flow.name,
        period_label=period.label,
        due=cycle.due_date,
        indicators=tuple(items),
        late=local_day(now) > cycle.due_date,
        planned_due=_planned_due(flow, period, cycle),
        actions=open_actions(
            tx,
            ctx,
            cycle,
            owner_id,
            now=now,
            typed=typed_actions,
            errors=action_update_errors,
        ),
        reminder=reminder,
        notice=notice,
    )


def _planned_due(flow: Flow, period: Period, cycle: Cycle) -> date | None:
    """The flow's planned due date when the cycle opened too late for it (else None)."""
    planned = timetable(flow, period).due
    return planned if planned < cycle.due_date else None


def approval_view(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: Sequence[ApprovalStep],
    step: ApprovalStep,
    *,
    card_id: str,
    error: str | None = None,
    now: datetime | None = None,
) -> ApprovalView:
    """The return in context for one approver of one step."""
    flow = ctx.flow(cycle.flow_id)
    period = ctx.period_of(cycle)
    indicator = _indicator(tx, flow, ret)
    target, annual, band = judged_target(tx, flow, indicator, period)
    history = history_before(tx, flow, ret.indicator_key, period)
    owner = tx.find_person(ret.owner_id or "") if ret.owner_id else None
    variation = assurance = None
    missing_data = False
    recent = _recent(history, period, 6)
    last_year = _last_year(history, period)
    vs_last_year = long_trend = None
    if ret.value is not None:
        reading = read_return(tx, flow, indicator, period, ret.value)
        if reading.spc is not None:
            variation, assurance = reading.spc.variation, reading.spc.assurance
        if reading.current is not None:
            found = probable_missing_data(reading.current, list(reading.comparable))
            missing_data = found is not None
        vs_last_year = reading.vs_last_year.value
        long_trend = reading.long_trend.value
    return ApprovalView(
        return_id=str(ret.id),
        version=step.return_version,
        step_index=step.step_index,
        step_count=len(steps),
        step_name=step.name,
        card_id=card_id,
        indicator_name=indicator.name,
        owner_name=owner.name if owner else (ret.owner_email or ret.owner_id or "owner"),
        period_label=period.label,
        unit=indicator.unit,
        value=ret.value,
        polarity=indicator.polarity,
        no_data_reason=ret.no_data_reason,
        target=target,
        tolerance=band,
        annual_target=annual,
        rag=ret.rag or Rag.NONE,
        previous=recent[-1] if recent else None,
        last_year=last_year,
        direction_vs_previous=ret.direction,
        direction_vs_last_year=vs_last_year,
        history=recent,
        variation=variation,
        assurance=assurance,
        commentary=ret.commentary,
        outlier_confirmed=ret.outlier_confirmed,
        probable_missing_data=missing_data,
        late=ret.late,
        submitted_at=ret.submitted_at,
        error=error,
        actions=return_actions(tx, ctx, ret, now=now or ret.updated_at),
        long_trend=long_trend,
        comparator=indicator.comparator,
        resubmission=resubmission(tx, ret),
    )
