"""Approved figures out: the SharePoint results row and a debounced Power BI refresh."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from m365perf.domain.profiling import rag_target
from m365perf.engine.context import EngineContext, local_day
from m365perf.engine.outbox import queue
from m365perf.engine.views import indicator_kind, indicator_target, read_return
from m365perf.flows.results import RESULT_COLUMNS, result_key
from m365perf.messages import MessageError, Refresh, WriteBack, parse_message
from m365perf.messages.ids import RefreshKey, WriteBackKey
from m365perf.messages.names import OutboxKind, SubjectType, TimerKind
from m365perf.store import ApprovalStep, Cycle, OutboxMessage, Return, StepStatus, Transaction


def results_row(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: Sequence[ApprovalStep],
) -> dict[str, Any]:
    """The results-list row for an approved return, keyed on (indicator, period)."""
    flow = ctx.flow(cycle.flow_id)
    period = ctx.period_of(cycle)
    indicator = tx.find_indicator(flow.id, ret.indicator_key)
    if indicator is None:
        raise LookupError(f"indicator {ret.indicator_key} is not in the store")
    target, _tolerance = indicator_target(tx, flow, indicator, period)
    kind, profile = indicator_kind(flow, indicator)
    if target is not None:
        target = rag_target(kind, target, period, profile)
    variation = assurance = colour = None
    vs_last_year = None
    long_text = None
    if ret.value is not None:
        reading = read_return(tx, flow, indicator, period, ret.value)
        if reading.spc is not None:
            variation, assurance, colour = (
                reading.spc.variation,
                reading.spc.assurance,
                reading.spc.colour,
            )
        vs_last_year = reading.vs_last_year.value
        long_text = reading.long_trend.value
    approvals = [s for s in steps if s.status is StepStatus.APPROVED]
    approver = tx.find_person(approvals[-1].decided_by or "") if approvals else None
    submitter = tx.find_person(ret.submitted_by or "") if ret.submitted_by else None
    key_id, key_period = result_key(flow.writeback)
    values = {
        "Title": indicator.name,
        "Flow": flow.id,
        "CycleId": str(cycle.id),
        "PeriodStart": period.start.isoformat(),
        "Value": ret.value,
        "ValueText": ret.raw_value,
        "NoDataReason": ret.no_data_reason,
        "Unit": indicator.unit.value,
        "Target": target_text(target),
        "Comparator": indicator.comparator,
        "Rag": (ret.rag.value if ret.rag else "none"),
        "DirectionPrevious": ret.direction,
        "DirectionLastYear": vs_last_year,
        "DirectionLongTrend": long_text,
        "Variation": variation,
        "Assurance": assurance,
        "VariationColour": colour,
        "Commentary": ret.commentary,
        "DataQualityFlag": ret.data_quality_flag,
        "Late": ret.late,
        "ReturnedBy": submitter.name if submitter else ret.submitted_by,
        "ReturnedAt": ret.submitted_at.isoformat() if ret.submitted_at else None,
        "ApprovedBy": approver.name
        if approver
        else (approvals[-1].decided_by if approvals else None),
        "ApprovedAt": ret.decided_at.isoformat() if ret.decided_at else None,
        "Version": ret.version,
    }
    return {key_id: ret.indicator_key, key_period: period.label, **_in_list_order(values)}


def target_text(target: float | None) -> str | None:
    """The target as the results list's text column holds it: every digit a council
    set (1234567, not ``:g``'s 1.23457e+06), no float noise (0.35, not 0.35000000000000003)."""
    return None if target is None else f"{target:.15g}"


def _in_list_order(values: dict[str, Any]) -> dict[str, Any]:
    """The row in the results list's column order; a field the list lacks is a bug here."""
    names = [c.name for c in RESULT_COLUMNS]
    extra = set(values) - set(names)
    if extra:
        raise LookupError(f"results row fields not in RESULT_COLUMNS: {sorted(extra)}")
    return {name: values[name] for name in names}


def queue_write_back(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: Sequence[ApprovalStep],
    *,
    now: datetime,
) -> None:
    """Queue the upsert of the approved row, then a debounced refresh of the dataset."""
    flow = ctx.flow(cycle.flow_id)
    message = WriteBack(
        site=flow.writeback.site,
        list_title=flow.writeback.list_title,
        key_fields=list(flow.writeback.key),
        fields=results_row(tx, ctx, cycle, ret, steps),
        return_id=ret.id,
        cycle_id=cycle.id,
    )
    queue(tx, ctx, message, dedup_key=WriteBackKey(ret.id or 0, ret.version), now=now)
    schedule_refresh(tx, ctx, cycle.flow_id, now=now)


def schedule_refresh(tx: Transaction, ctx: EngineContext, flow_id: str, *, now: datetime) -> None:
    """One refresh per dataset per debounce window: approvals in a burst share it."""
    flow = ctx.flow(flow_id)
    if flow.powerbi is None:
        return
    window = timedelta(minutes=flow.powerbi.debounce_minutes)
    if window.total_seconds() <= 0:
        due = now
    else:
        epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
        slots = (now - epoch) // window
        due = epoch + (slots + 1) * window
    tx.schedule_timer(
        TimerKind.REFRESH,
        due_at=due,
        dedup_key=RefreshKey(flow.powerbi.dataset, due).format(),
        subject_type=SubjectType.FLOW,
        payload={"flow_id": flow.id},
        now=now,
    )


def refreshes_today(tx: Transaction, dataset: str, now: datetime) -> int:
    """Refreshes already asked of the dataset today (London day), sent or waiting."""
    return refreshes_asked_today(tx.list_outbox(kind=OutboxKind.REFRESH), now)[dataset]


def refreshes_asked_today(rows: Iterable[OutboxMessage], now: datetime) -> Counter[str]:
    """Refresh rows queued today (London day), by dataset; rows not of their kind skipped."""
    today = local_day(now)
    asked: Counter[str] = Counter()
    for row in rows:
        try:
            message = parse_message(row.kind, row.payload)
        except MessageError:
            continue  # parked, never sent: it used none of the budget
        if isinstance(message, Refresh) and local_day(row.created_at) == today:
            asked[message.dataset] += 1
    return asked
