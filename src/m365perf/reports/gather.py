"""Read one cycle from the store into the facts the exceptions report selects from.

Figures are read the way an approver's card reads them (``engine.views.read_return``:
the same target, history, SPC and change on last period), so the report cannot tell a
different story from the cards people acted on. Ids become names here.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from m365perf.domain.kinds import Rag
from m365perf.engine.context import EngineContext
from m365perf.engine.views import judged_target, read_return
from m365perf.flows.model import Flow
from m365perf.flows.results import result_key
from m365perf.messages import MessageError, WriteBack, parse_message
from m365perf.messages.names import OutboxKind
from m365perf.reports.exceptions import (
    ActionLine,
    ExceptionsReport,
    IndicatorLine,
    select_exceptions,
)
from m365perf.store import (
    ActionStatus,
    Cycle,
    ImprovementAction,
    OutboxStatus,
    Return,
    Transaction,
)

__all__ = ["gather_exceptions", "written_results"]


def written_results(tx: Transaction, flow: Flow) -> list[dict[str, Any]]:
    """The flow's results-list rows as SharePoint holds them: what write-back sent.

    Of the ``write_back`` messages sent (done) to the flow's results list, the newest
    ``Version`` of each (indicator, period) key, which is the one the list keeps
    (write-back never lets an older version overwrite a newer one). A message still
    waiting or parked has not reached the list, so it is not in the export either.
    """
    key = result_key(flow.writeback)
    newest: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
    for row in tx.list_outbox(kind=OutboxKind.WRITE_BACK, status=OutboxStatus.DONE):
        try:
            message = parse_message(row.kind, row.payload)
        except MessageError:
            continue
        if not isinstance(message, WriteBack) or (
            message.site != flow.writeback.site
            or message.list_title != flow.writeback.list_title
            or message.fields.get("Flow") != flow.id
        ):
            continue
        ident = (str(message.fields.get(key[0])), str(message.fields.get(key[1])))
        version = message.version if isinstance(message.version, int | float) else -math.inf
        if ident not in newest or version >= newest[ident][0]:
            newest[ident] = (float(version), dict(message.fields))
    return [fields for _version, fields in newest.values()]


def gather_exceptions(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    *,
    as_of: date,
    big_change_percent: float | None = None,
) -> ExceptionsReport:
    """The exceptions report of ``cycle`` as it stands on ``as_of`` (a London day).

    ``big_change_percent`` defaults to the flow's ``rag.outlier_threshold_percent``: the
    change the flow already treats as unusual enough to question.
    """
    flow = ctx.flow(cycle.flow_id)
    threshold = (
        big_change_percent if big_change_percent is not None else flow.rag.outlier_threshold_percent
    )
    names = _Names(tx)
    # Actions agreed in a later cycle than this one had not been agreed when it ran.
    starts = {cycle.id: ctx.period_of(cycle).start}
    open_actions = []
    for action in tx.list_actions(
        flow_id=flow.id, status=[ActionStatus.NOT_STARTED, ActionStatus.IN_PROGRESS]
    ):
        if action.cycle_id not in starts:
            starts[action.cycle_id] = ctx.period_of(tx.get_cycle(action.cycle_id)).start
        if starts[action.cycle_id] <= starts[cycle.id]:
            open_actions.append(_action_line(tx, names, action))
    cycle_actions = [
        _action_line(tx, names, a)
        for a in tx.list_actions(flow_id=flow.id)
        if a.cycle_id == cycle.id
    ]
    lines = [
        _indicator_line(tx, ctx, names, cycle, ret, cycle_actions)
        for ret in tx.list_returns(cycle_id=cycle.id)
    ]
    return select_exceptions(
        lines,
        open_actions,
        flow_id=flow.id,
        flow_name=flow.name,
        period=cycle.period,
        cycle_id=cycle.id or 0,
        due_date=cycle.due_date,
        as_of=as_of,
        big_change_percent=threshold,
    )


class _Names:
    """People's names by id or e-mail, looked up once each."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._known: dict[str, str] = {}

    def __call__(self, ref: str | None) -> str:
        if not ref:
            return "nobody"
        if ref not in self._known:
            person = self._tx.find_person(ref)
            self._known[ref] = person.name if person else ref
        return self._known[ref]


def _indicator_line(
    tx: Transaction,
    ctx: EngineContext,
    names: _Names,
    cycle: Cycle,
    ret: Return,
    actions: list[ActionLine],
) -> IndicatorLine:
    flow = ctx.flow(cycle.flow_id)
    period = ctx.period_of(cycle)
    indicator = tx.find_indicator(flow.id, ret.indicator_key)
    if indicator is None:
        raise LookupError(f"indicator {ret.indicator_key} is not in the store")
    service_column = flow.source.column_for("service")
    service = indicator.raw.get(service_column) if service_column else None
    target, _annual, _band = judged_target(tx, flow, indicator, period)
    chart = change = variation_text = assurance = None
    if ret.value is not None:
        reading = read_return(tx, flow, indicator, period, ret.value)
        chart, change = reading.chart, reading.change_percent
        if reading.spc is not None:
            variation_text, assurance = reading.spc.variation, reading.spc.assurance
    return IndicatorLine(
        key=ret.indicator_key,
        name=indicator.name,
        service=str(service) if service else None,
        owner=names(ret.owner_id or ret.owner_email),
        unit=indicator.unit.value,
        status=ret.status.value,
        value=ret.value,
        value_text=ret.raw_value,
        no_data_reason=ret.no_data_reason,
        target=target,
        comparator=indicator.comparator,
        rag=ret.rag if ret.rag is not Rag.NONE else None,
        direction=ret.direction,
        change_percent=change,
        chart=chart,
        variation_text=variation_text,
        assurance=assurance,
        commentary=ret.commentary,
        data_quality_flag=ret.data_quality_flag,
        late=ret.late,
        sent_back_reason=ret.sent_back_reason if ret.status.value == "rejected" else None,
        actions=tuple(a for a in actions if a.return_id == ret.id),
    )


def _action_line(tx: Transaction, names: _Names, action: ImprovementAction) -> ActionLine:
    indicator = tx.find_indicator(action.flow_id, action.indicator_key)
    return ActionLine(
        indicator_key=action.indicator_key,
        indicator=indicator.name if indicator else action.indicator_key,
        period=tx.get_cycle(action.cycle_id).period,
        what=action.what,
        who=names(action.who_id),
        due_on=action.due_on,
        status=action.status.value,
        note=action.note,
        return_id=action.return_id,
    )
