"""The process measures' data, read from the store in a few batched queries.

The arithmetic is :mod:`m365perf.domain.measures`; this module only turns cycles,
returns, indicators and audit events into its :class:`ReturnHistory` records. Reads
are per table, never per return: the status page, ``m365perf report`` and ``/metrics``
all call it, the last every scrape.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from m365perf.domain.measures import (
    MeasureGroup,
    Measures,
    ReturnHistory,
    measure,
    measure_groups,
)
from m365perf.engine.context import local_day
from m365perf.flows.model import Flow
from m365perf.messages.names import AuditAction
from m365perf.store import Cycle, Indicator, Return, ReturnStatus, Transaction

NO_SERVICE = "Other"
"""The service of an indicator whose register row names none (as the digest groups it)."""

_SUBMITTED = frozenset({AuditAction.RETURN_SUBMITTED, AuditAction.RETURN_SUBMITTED_LATE})
_READ = (
    *_SUBMITTED,
    AuditAction.RETURN_APPROVED,
    AuditAction.RETURN_REJECTED,
    AuditAction.OWNER_REMINDED,
)


def service_of(flows: Mapping[str, Flow], indicator: Indicator | None) -> str:
    """The service an indicator's register row names, by the flow's field map."""
    flow = flows.get(indicator.flow_id) if indicator else None
    column = flow.source.column_for("service") if flow else None
    value = str(indicator.raw.get(column) or "").strip() if indicator and column else ""
    return value or NO_SERVICE


def return_histories(
    tx: Transaction,
    flows: Mapping[str, Flow],
    cycles: Sequence[Cycle],
    *,
    returns: Sequence[Return] | None = None,
    indicators: Collection[Indicator] | None = None,
) -> list[ReturnHistory]:
    """One record per return of ``cycles``: three reads (returns, indicators, audit)."""
    by_id = {c.id or 0: c for c in cycles}
    if not by_id:
        return []
    if returns is None:
        returns = tx.list_returns(cycle_ids=list(by_id))
    if indicators is None:
        indicators = tx.list_indicators({c.flow_id for c in cycles})
    keyed = {(i.flow_id, i.indicator_key): i for i in indicators}
    events = tx.list_audit(cycle_ids=list(by_id), actions=_READ)
    first_chase: dict[tuple[int, str], datetime] = {}
    first_return: dict[str, datetime] = {}
    decided: dict[tuple[str, str], int] = {}
    for event in events:
        if event.action == AuditAction.OWNER_REMINDED:
            first_chase.setdefault((event.cycle_id or 0, event.subject_id), event.at)
        elif event.action in _SUBMITTED:
            first_return.setdefault(event.subject_id, event.at)
        else:
            key = (event.subject_id, event.action)
            decided[key] = decided.get(key, 0) + 1
    out = []
    for ret in returns:
        cycle = by_id.get(ret.cycle_id)
        if cycle is None:
            continue
        out.append(_history(flows, cycle, ret, keyed, first_chase, first_return, decided))
    return out


def _history(
    flows: Mapping[str, Flow],
    cycle: Cycle,
    ret: Return,
    indicators: Mapping[tuple[str, str], Indicator],
    first_chase: Mapping[tuple[int, str], datetime],
    first_return: Mapping[str, datetime],
    decided: Mapping[tuple[str, str], int],
) -> ReturnHistory:
    rid = str(ret.id or 0)
    returned = first_return.get(rid, ret.submitted_at)
    approved = ret.status is ReturnStatus.APPROVED
    return ReturnHistory(
        flow_id=cycle.flow_id,
        cycle_id=cycle.id or 0,
        period=cycle.period,
        service=service_of(flows, indicators.get((cycle.flow_id, ret.indicator_key))),
        due_date=cycle.due_date,
        asked_at=ret.created_at,
        first_returned_at=returned,
        first_returned_on=local_day(returned) if returned else None,
        first_chased_at=first_chase.get((cycle.id or 0, ret.owner_id or "")),
        approved_submission_at=ret.submitted_at if approved else None,
        approved_at=ret.decided_at if approved else None,
        approvals=decided.get((rid, AuditAction.RETURN_APPROVED), 0),
        rejections=decided.get((rid, AuditAction.RETURN_REJECTED), 0),
    )


def gather_measures(
    tx: Transaction,
    flows: Mapping[str, Flow],
    *,
    now: datetime,
    cycles: Sequence[Cycle] | None = None,
) -> tuple[Measures, list[MeasureGroup]]:
    """The measures of ``cycles`` (default: every cycle) taken together, then per flow,
    cycle and service."""
    chosen = list(cycles) if cycles is not None else tx.list_cycles()
    histories = return_histories(tx, flows, chosen)
    today = local_day(now)
    return measure(histories, today=today), measure_groups(histories, today=today)
