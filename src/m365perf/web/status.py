"""The performance team's status report: who has returned, who is late, what waits for whom.

Read-only: one store transaction and a fixed handful of batched reads (cycles, returns,
indicators, people, approval steps, audit events, outbox, timers), never one per return,
gather a :class:`StatusReport`. It is served as HTML (``/status``,
:mod:`m365perf.web.status_page`) and as JSON (``/status.json``), with the same content.
Names, not ids: owners, approvers, indicators and flows are shown as the directory and
the register name them.

Each return is in one state:

* not started — asked of its owner, no figure yet, the due date not passed;
* late — with its owner (not started, or rejected back to them) after the due date;
* rejected — sent back to its owner with a reason, the due date not passed;
* awaiting approval — returned, at a step of its chain, with that step's approvers;
* returned — returned, its chain not yet asking anyone (a moment between steps);
* approved; missed (the cycle closed first).

How long an item has waited runs from when it came to whoever holds it now: the owner
since they were asked (or the figure was sent back), an approver since the figure came in
or the step before approved it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any

from m365perf.cards import format_value
from m365perf.dispatch import Outage
from m365perf.domain.measures import MeasureGroup, measure_groups
from m365perf.engine.context import local_day
from m365perf.engine.measures import return_histories, service_of
from m365perf.engine.publish import refreshes_asked_today
from m365perf.flows.model import Flow
from m365perf.messages import MessageError, parse_message
from m365perf.messages.names import OutboxKind, TimerKind
from m365perf.messages.outbox import (
    CheckRefresh,
    Refresh,
    SendCard,
    SendMail,
    UpdateCard,
    WriteAction,
    WriteBack,
)
from m365perf.store import (
    ApprovalStep,
    Cycle,
    CycleStatus,
    OutboxMessage,
    OutboxStatus,
    Person,
    Return,
    ReturnStatus,
    StepStatus,
    Store,
    TimerStatus,
    Transaction,
)

STATES = ("not_started", "late", "rejected", "awaiting_approval", "returned", "approved", "missed")
"""Every state an item can be in, in the order the page counts them."""
STATE_WORDS = {
    "not_started": "not started",
    "late": "late",
    "rejected": "rejected, back with the owner",
    "awaiting_approval": "awaiting approval",
    "returned": "returned",
    "approved": "approved",
    "missed": "missed",
}
_WITH_OWNER = frozenset({ReturnStatus.AWAITING, ReturnStatus.REJECTED})
_CURRENT = frozenset({StepStatus.ASKED, StepStatus.ESCALATED})


@dataclass(frozen=True, slots=True)
class Progress:
    """How many items of a cycle (or of one service or owner in it) are in each state."""

    name: str
    total: int
    not_started: int
    late: int
    rejected: int
    awaiting_approval: int
    returned: int
    approved: int
    missed: int


@dataclass(frozen=True, slots=True)
class StatusItem:
    """One return as the performance team sees it."""

    return_id: int
    indicator_key: str
    indicator_name: str
    service: str
    owner_name: str
    state: str
    state_text: str
    value: str
    rag: str | None
    step: str | None
    waiting_on: tuple[str, ...]
    waiting_since: datetime | None
    waited_hours: float | None


@dataclass(frozen=True, slots=True)
class CycleStatusReport:
    cycle_id: int
    flow_id: str
    flow_name: str
    period: str
    status: str
    due_date: date
    overdue: bool
    counts: Progress
    by_service: tuple[Progress, ...]
    by_owner: tuple[Progress, ...]
    items: tuple[StatusItem, ...]
    measures: tuple[MeasureGroup, ...]


@dataclass(frozen=True, slots=True)
class QueueItem:
    flow_name: str
    period: str
    indicator_name: str
    owner_name: str
    step: str
    waiting_since: datetime
    waited_hours: float


@dataclass(frozen=True, slots=True)
class ApproverQueue:
    """What waits for one approver, oldest first."""

    approver_name: str
    approver_email: str | None
    oldest_hours: float
    items: tuple[QueueItem, ...]


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """An outbox row the dispatcher gave up on; an operator must look, then retry."""

    id: int
    kind: str
    about: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


#: The outage the dispatcher sees now, or None (for ``/health`` and ``/status``).
OutageSource = Callable[[], Outage | None]


@dataclass(frozen=True, slots=True)
class RefreshBudget:
    """A Power BI dataset's refreshes today against its flow's daily budget."""

    flow_name: str
    dataset: str
    asked_today: int
    scheduled_per_day: int
    used: int
    daily_budget: int
    remaining: int
    waiting: int
    next_at: datetime | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    generated_at: datetime
    cycles: tuple[CycleStatusReport, ...]
    approval_queue: tuple[ApproverQueue, ...]
    parked: tuple[ParkedMessage, ...]
    outbox: dict[str, int]
    """Rows by status (every status, zero included)."""
    outbox_by_kind: dict[str, dict[str, int]]
    """Rows by kind, then status (only those there are)."""
    powerbi: tuple[RefreshBudget, ...]
    measures: tuple[MeasureGroup, ...]
    """Per flow, over every cycle (open and closed)."""
    flow_names: dict[str, str]
    outage: Outage | None = None
    """Microsoft 365 unreachable, as the dispatcher sees it now."""

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types: dates and times as ISO 8601 strings."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


class _People:
    """The directory snapshot, read once, looked up by id or e-mail."""

    def __init__(self, people: Iterable[Person]) -> None:
        self._by: dict[str, Person] = {}
        for person in people:
            self._by[person.id] = person
            self._by[person.email.lower()] = person

    def find(self, ref: str | None) -> Person | None:
        return self._by.get(ref) or self._by.get(ref.lower()) if ref else None

    def name(self, ref: str | None, fallback: str = "no one named") -> str:
        person = self.find(ref)
        return person.name if person else (ref or fallback)


def gather_status(
    store: Store, flows: Mapping[str, Flow], *, now: datetime, outage: Outage | None = None
) -> StatusReport:
    """Everything the status page shows, read in one transaction; ``outage`` as seen now."""
    with store.transaction() as tx:
        return replace(_gather(tx, flows, now), outage=outage)


def _gather(tx: Transaction, flows: Mapping[str, Flow], now: datetime) -> StatusReport:
    today = local_day(now)
    cycles = tx.list_cycles()
    open_cycles = [c for c in cycles if c.status is not CycleStatus.CLOSED]
    returns = tx.list_returns(cycle_ids=[c.id or 0 for c in cycles]) if cycles else []
    indicators = tx.list_indicators({c.flow_id for c in cycles}) if cycles else []
    people = _People(tx.list_people())
    open_ids = {c.id for c in open_cycles}
    live = [r for r in returns if r.cycle_id in open_ids]
    in_approval = [r.id or 0 for r in live if r.status is ReturnStatus.RETURNED]
    chains: dict[int, list[ApprovalStep]] = {}
    for step in tx.list_chains(in_approval) if in_approval else []:
        chains.setdefault(step.return_id, []).append(step)
    versions = {r.id or 0: r.version for r in live}
    current = {
        s.return_id: s
        for steps in chains.values()
        for s in steps
        if s.status in _CURRENT and s.return_version == versions.get(s.return_id)
    }
    histories = return_histories(tx, flows, cycles, returns=returns, indicators=indicators)
    groups = measure_groups(histories, today=today)
    names = {(i.flow_id, i.indicator_key): i for i in indicators}
    reports = []
    for cycle in open_cycles:
        mine = [r for r in live if r.cycle_id == cycle.id]
        items = [
            _item(flows, cycle, r, names, people, chains.get(r.id or 0, []), current, now)
            for r in mine
        ]
        reports.append(_cycle_report(flows, cycle, items, groups, today))
    parked = tx.list_outbox(status=OutboxStatus.PARKED)
    depth = tx.outbox_depth()
    by_status = {str(s): 0 for s in OutboxStatus}
    by_kind: dict[str, dict[str, int]] = {}
    for (kind, status), count in sorted(depth.items()):
        by_status[str(status)] += count
        by_kind.setdefault(kind, {})[str(status)] = count
    return StatusReport(
        generated_at=now,
        cycles=tuple(reports),
        approval_queue=_queues(reports, people, current),
        parked=tuple(_parked(m, people) for m in parked),
        outbox=by_status,
        outbox_by_kind=by_kind,
        powerbi=_refreshes(tx, flows, now),
        measures=tuple(g for g in groups if g.scope == "flow"),
        flow_names={f.id: f.name for f in flows.values()},
    )


def _item(
    flows: Mapping[str, Flow],
    cycle: Cycle,
    ret: Return,
    indicators: Mapping[tuple[str, str], Any],
    people: _People,
    chain: Sequence[ApprovalStep],
    current: Mapping[int, ApprovalStep],
    now: datetime,
) -> StatusItem:
    indicator = indicators.get((cycle.flow_id, ret.indicator_key))
    overdue = local_day(now) > cycle.due_date
    owner = people.name(ret.owner_id or ret.owner_email)
    step: ApprovalStep | None = None
    waiting_on: tuple[str, ...] = ()
    since: datetime | None = None
    if ret.status in _WITH_OWNER:
        state = (
            "late"
            if overdue
            else ("not_started" if ret.status is ReturnStatus.AWAITING else "rejected")
        )
        waiting_on = (owner,)
        since = ret.sent_back_at if ret.status is ReturnStatus.REJECTED else ret.created_at
    elif ret.status is ReturnStatus.RETURNED:
        step = current.get(ret.id or 0)
        state = "awaiting_approval" if step else "returned"
        if step is not None:
            waiting_on = tuple(people.name(a) for a in step.approvers)
            earlier = [
                s.decided_at
                for s in chain
                if s.return_version == ret.version and s.step_index < step.step_index
            ]
            times = [t for t in (ret.submitted_at, *earlier) if t is not None]
            since = max(times) if times else None
    else:
        state = str(ret.status)
    unit = indicator.unit if indicator else None
    if ret.value is not None and unit is not None:
        value = format_value(ret.value, unit)
    elif ret.no_data_reason:
        value = f"no data: {ret.no_data_reason}"
    else:
        value = ""
    return StatusItem(
        return_id=ret.id or 0,
        indicator_key=ret.indicator_key,
        indicator_name=indicator.name if indicator else ret.indicator_key,
        service=service_of(flows, indicator),
        owner_name=owner,
        state=state,
        state_text=STATE_WORDS[state],
        value=value,
        rag=ret.rag.value if ret.rag else None,
        step=step.name if step else None,
        waiting_on=waiting_on,
        waiting_since=since,
        waited_hours=_hours(since, now) if since else None,
    )


def _progress(name: str, items: Sequence[StatusItem]) -> Progress:
    counts = Counter(i.state for i in items)
    return Progress(name, len(items), *(counts[s] for s in STATES))


def _cycle_report(
    flows: Mapping[str, Flow],
    cycle: Cycle,
    items: list[StatusItem],
    groups: Sequence[MeasureGroup],
    today: date,
) -> CycleStatusReport:
    flow = flows.get(cycle.flow_id)
    by_service: dict[str, list[StatusItem]] = {}
    by_owner: dict[str, list[StatusItem]] = {}
    for item in items:
        by_service.setdefault(item.service, []).append(item)
        by_owner.setdefault(item.owner_name, []).append(item)
    items.sort(key=lambda i: (i.service.casefold(), i.indicator_name.casefold()))
    return CycleStatusReport(
        cycle_id=cycle.id or 0,
        flow_id=cycle.flow_id,
        flow_name=flow.name if flow else cycle.flow_id,
        period=cycle.period,
        status=cycle.status.value,
        due_date=cycle.due_date,
        overdue=today > cycle.due_date,
        counts=_progress("All services", items),
        by_service=tuple(_progress(n, v) for n, v in sorted(by_service.items(), key=_folded)),
        by_owner=tuple(_progress(n, v) for n, v in sorted(by_owner.items(), key=_folded)),
        items=tuple(items),
        measures=tuple(
            g
            for g in groups
            if g.scope != "flow" and g.flow_id == cycle.flow_id and g.period == cycle.period
        ),
    )


def _queues(
    reports: Sequence[CycleStatusReport],
    people: _People,
    current: Mapping[int, ApprovalStep],
) -> tuple[ApproverQueue, ...]:
    """The approval queue by approver: every item at a step that names them."""
    queues: dict[str, list[QueueItem]] = {}
    for report in reports:
        for item in report.items:
            step = current.get(item.return_id)
            if item.state != "awaiting_approval" or step is None or item.waiting_since is None:
                continue
            for approver in step.approvers:
                queues.setdefault(approver, []).append(
                    QueueItem(
                        flow_name=report.flow_name,
                        period=report.period,
                        indicator_name=item.indicator_name,
                        owner_name=item.owner_name,
                        step=step.name,
                        waiting_since=item.waiting_since,
                        waited_hours=item.waited_hours or 0.0,
                    )
                )
    out = []
    for ref, items in queues.items():
        items.sort(key=lambda q: q.waiting_since)
        person = people.find(ref)
        out.append(
            ApproverQueue(
                approver_name=person.name if person else ref,
                approver_email=person.email if person else None,
                oldest_hours=items[0].waited_hours,
                items=tuple(items),
            )
        )
    out.sort(key=lambda q: (-q.oldest_hours, q.approver_name.casefold()))
    return tuple(out)


def _parked(row: OutboxMessage, people: _People) -> ParkedMessage:
    return ParkedMessage(
        id=row.id or 0,
        kind=row.kind,
        about=describe_message(row, people),
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def describe_message(row: OutboxMessage, people: _People) -> str:
    """What a row was for, in words with names (an unreadable row says so)."""
    try:
        message = parse_message(row.kind, row.payload)
    except MessageError:
        return f"a {row.kind.replace('_', ' ')} message that cannot be read"
    if isinstance(message, SendCard):
        how = "Teams card" if message.channel == "teams" else "card by e-mail"
        return f"{how} for {message.user.name}: {message.subject or message.summary}".strip(": ")
    if isinstance(message, UpdateCard):
        return "an update to a card already sent"
    if isinstance(message, SendMail):
        to = ", ".join(people.name(a) for a in message.to)
        return f"e-mail to {to}: {message.subject}"
    if isinstance(message, WriteAction):
        return f"improvement action to the SharePoint list {message.list_title}"
    if isinstance(message, WriteBack):
        title = message.fields.get("Title") or ""
        return f"results row to the SharePoint list {message.list_title}: {title}".strip(": ")
    if isinstance(message, Refresh | CheckRefresh):
        return f"Power BI refresh of dataset {message.dataset} ({message.flow_id})"
    return row.kind.replace("_", " ")


def _refreshes(
    tx: Transaction, flows: Mapping[str, Flow], now: datetime
) -> tuple[RefreshBudget, ...]:
    """Each flow's dataset: asked today, Power BI's own schedule, what is still waiting."""
    asked = refreshes_asked_today(tx.list_outbox(kind=OutboxKind.REFRESH), now)
    waiting: dict[str, list[datetime]] = {}
    for timer in tx.list_timers(status=(TimerStatus.PENDING, TimerStatus.CLAIMED)):
        if timer.kind == TimerKind.REFRESH:
            waiting.setdefault(str(timer.payload.get("flow_id")), []).append(timer.due_at)
    out = []
    for flow in sorted(flows.values(), key=lambda f: f.name.casefold()):
        if flow.powerbi is None:
            continue
        pbi = flow.powerbi
        used = asked[pbi.dataset] + pbi.scheduled_refreshes_per_day
        due = sorted(waiting.get(flow.id, []))
        out.append(
            RefreshBudget(
                flow_name=flow.name,
                dataset=pbi.dataset,
                asked_today=asked[pbi.dataset],
                scheduled_per_day=pbi.scheduled_refreshes_per_day,
                used=used,
                daily_budget=pbi.daily_budget,
                remaining=max(0, pbi.daily_budget - used),
                waiting=len(due),
                next_at=due[0] if due else None,
            )
        )
    return tuple(out)


def _hours(start: datetime, end: datetime) -> float:
    return round(max(0.0, (end - start).total_seconds() / 3600), 2)


def _folded(entry: tuple[str, object]) -> str:
    return entry[0].casefold()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
