"""The performance team's status page: who has returned, who is late, what waits, what is stuck.

Read-only: one store transaction gathers a :class:`StatusReport`, which is served as
HTML (``/status``, no JavaScript, every value escaped — indicator names and remote
errors are other people's text) and as JSON (``/status.json``). The counts use the same
words and definitions as the daily digest e-mail, so the two never disagree:

* returned — every return no longer awaiting its first figure;
* outstanding — still awaiting a figure;
* late — with the owner (awaiting, or rejected back to them) after the due date;
* awaiting approval / rejected / approved — by the return's status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from html import escape
from typing import Any

from m365perf.cards.formatting import format_date, format_moment
from m365perf.dispatch import Outage
from m365perf.engine.context import local_day
from m365perf.flows.model import Flow
from m365perf.store import (
    CycleStatus,
    OutboxStatus,
    Return,
    ReturnStatus,
    Store,
    Transaction,
)

_WITH_OWNER = frozenset({ReturnStatus.AWAITING, ReturnStatus.REJECTED})
_STATUS_WORDS = {
    ReturnStatus.AWAITING: "not yet returned",
    ReturnStatus.REJECTED: "rejected, back with the owner",
}


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    returned: int
    outstanding: int
    late: int
    awaiting_approval: int
    rejected: int
    approved: int


@dataclass(frozen=True, slots=True)
class OwedReturn:
    """A return the owner still has to make (or make again)."""

    indicator_key: str
    indicator_name: str
    status: str
    status_text: str
    late: bool


@dataclass(frozen=True, slots=True)
class OwnerOwing:
    owner_id: str | None
    owner_name: str
    owner_email: str | None
    returns: tuple[OwedReturn, ...]


@dataclass(frozen=True, slots=True)
class WaitingApproval:
    indicator_key: str
    indicator_name: str
    owner_name: str
    step: str
    approvers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CycleStatusReport:
    cycle_id: int
    flow_id: str
    flow_name: str
    period: str
    status: str
    due_date: date
    counts: Counts
    outstanding: tuple[OwnerOwing, ...]
    awaiting_approval: tuple[WaitingApproval, ...]


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """An outbox row the dispatcher gave up on; an operator must look."""

    id: int
    kind: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


#: The outage the dispatcher sees now, or None (for ``/health`` and ``/status``).
OutageSource = Callable[[], Outage | None]


@dataclass(frozen=True, slots=True)
class StatusReport:
    generated_at: datetime
    cycles: tuple[CycleStatusReport, ...]
    parked: tuple[ParkedMessage, ...]
    outbox: dict[str, int]
    outage: Outage | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types: dates and times as ISO 8601 strings."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def gather_status(
    store: Store, flows: Mapping[str, Flow], *, now: datetime, outage: Outage | None = None
) -> StatusReport:
    """Everything the status page shows, read in one transaction; ``outage`` as seen now."""
    today = local_day(now)
    with store.transaction() as tx:
        cycles = tuple(
            _cycle_report(tx, flows, cycle.id or 0, today)
            for cycle in tx.list_cycles()
            if cycle.status is not CycleStatus.CLOSED
        )
        parked = tuple(
            ParkedMessage(
                id=m.id or 0,
                kind=m.kind,
                attempts=m.attempts,
                last_error=m.last_error,
                created_at=m.created_at,
                updated_at=m.updated_at,
            )
            for m in tx.list_outbox(status=OutboxStatus.PARKED)
        )
        outbox = {str(status): count for status, count in tx.outbox_counts().items()}
    return StatusReport(
        generated_at=now, cycles=cycles, parked=parked, outbox=outbox, outage=outage
    )


def _cycle_report(
    tx: Transaction, flows: Mapping[str, Flow], cycle_id: int, today: date
) -> CycleStatusReport:
    cycle = tx.get_cycle(cycle_id)
    flow = flows.get(cycle.flow_id)
    returns = tx.list_returns(cycle_id=cycle_id)
    overdue = today > cycle.due_date
    by_status = Counter(r.status for r in returns)
    names: dict[str, str] = {}

    def indicator_name(key: str) -> str:
        if key not in names:
            indicator = tx.find_indicator(cycle.flow_id, key)
            names[key] = indicator.name if indicator else key
        return names[key]

    counts = Counts(
        total=len(returns),
        returned=len(returns) - by_status[ReturnStatus.AWAITING],
        outstanding=by_status[ReturnStatus.AWAITING],
        late=sum(1 for r in returns if r.status in _WITH_OWNER and overdue),
        awaiting_approval=by_status[ReturnStatus.RETURNED],
        rejected=by_status[ReturnStatus.REJECTED],
        approved=by_status[ReturnStatus.APPROVED],
    )
    owing: dict[str | None, list[Return]] = {}
    for ret in returns:
        if ret.status in _WITH_OWNER:
            owing.setdefault(ret.owner_id or ret.owner_email, []).append(ret)
    outstanding = []
    for owner_ref, owed in owing.items():
        person = tx.find_person(owner_ref) if owner_ref else None
        outstanding.append(
            OwnerOwing(
                owner_id=person.id if person else owed[0].owner_id,
                owner_name=person.name if person else (owner_ref or "no owner named"),
                owner_email=person.email if person else owed[0].owner_email,
                returns=tuple(
                    OwedReturn(
                        indicator_key=r.indicator_key,
                        indicator_name=indicator_name(r.indicator_key),
                        status=str(r.status),
                        status_text=_STATUS_WORDS[r.status],
                        late=overdue,
                    )
                    for r in owed
                ),
            )
        )
    outstanding.sort(key=lambda o: o.owner_name.casefold())
    waiting = []
    in_approval = [r for r in returns if r.status is ReturnStatus.RETURNED]
    current = {
        s.return_id: s for s in tx.list_open_steps(return_ids=[r.id or 0 for r in in_approval])
    }
    for ret in in_approval:
        step = current.get(ret.id or 0)
        owner = tx.find_person(ret.owner_id or ret.owner_email or "")
        waiting.append(
            WaitingApproval(
                indicator_key=ret.indicator_key,
                indicator_name=indicator_name(ret.indicator_key),
                owner_name=owner.name if owner else (ret.owner_email or ret.owner_id or ""),
                step=step.name if step else "",
                approvers=tuple(_person_name(tx, a) for a in step.approvers) if step else (),
            )
        )
    return CycleStatusReport(
        cycle_id=cycle_id,
        flow_id=cycle.flow_id,
        flow_name=flow.name if flow else cycle.flow_id,
        period=cycle.period,
        status=cycle.status.value,
        due_date=cycle.due_date,
        counts=counts,
        outstanding=tuple(outstanding),
        awaiting_approval=tuple(waiting),
    )


def _person_name(tx: Transaction, ref: str) -> str:
    person = tx.find_person(ref)
    return person.name if person else ref


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; line-height: 1.4; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #767676; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
td.number { text-align: right; }
"""


def render_status_html(report: StatusReport) -> str:
    """A plain, accessible page: headings, captioned tables, no scripts."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en-GB">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Performance returns: status</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        "<h1>Performance returns: status</h1>",
        f"<p>As at {_e(format_moment(report.generated_at))}.</p>",
    ]
    if not report.cycles:
        parts.append("<p>No cycle is open.</p>")
    for cycle in report.cycles:
        parts.extend(_cycle_html(cycle))
    parts.extend(_parked_html(report))
    parts.extend(["</main>", "</body>", "</html>", ""])
    return "\n".join(parts)


def _cycle_html(cycle: CycleStatusReport) -> list[str]:
    c = cycle.counts
    heading = f"{cycle.flow_name}: {cycle.period}"
    parts = [
        "<section>",
        f"<h2>{_e(heading)}</h2>",
        f"<p>{_e(cycle.status.capitalize())}: due {_e(format_date(cycle.due_date))}. "
        f"{c.total} returns in this cycle.</p>",
        "<table>",
        f"<caption>Returns for {_e(heading)}</caption>",
        '<thead><tr><th scope="col">Returned</th><th scope="col">Outstanding</th>'
        '<th scope="col">Late</th><th scope="col">Awaiting approval</th>'
        '<th scope="col">Rejected</th><th scope="col">Approved</th></tr></thead>',
        "<tbody><tr>"
        + "".join(
            f'<td class="number">{n}</td>'
            for n in (
                c.returned,
                c.outstanding,
                c.late,
                c.awaiting_approval,
                c.rejected,
                c.approved,
            )
        )
        + "</tr></tbody>",
        "</table>",
        "<h3>Outstanding returns by owner</h3>",
    ]
    if not cycle.outstanding:
        parts.append("<p>Every owner has made their returns.</p>")
    else:
        parts += [
            "<table>",
            f"<caption>Outstanding returns for {_e(heading)}</caption>",
            '<thead><tr><th scope="col">Owner</th><th scope="col">Indicator</th>'
            '<th scope="col">Status</th><th scope="col">Late</th></tr></thead>',
            "<tbody>",
        ]
        for owner in cycle.outstanding:
            who = owner.owner_name + (f" ({owner.owner_email})" if owner.owner_email else "")
            for ret in owner.returns:
                parts.append(
                    f"<tr><td>{_e(who)}</td>"
                    f"<td>{_e(ret.indicator_key)}: {_e(ret.indicator_name)}</td>"
                    f"<td>{_e(ret.status_text)}</td><td>{'late' if ret.late else 'no'}</td></tr>"
                )
        parts += ["</tbody>", "</table>"]
    parts.append("<h3>Waiting for approval</h3>")
    if not cycle.awaiting_approval:
        parts.append("<p>Nothing is waiting for approval.</p>")
    else:
        parts += [
            "<table>",
            f"<caption>Returns waiting for approval in {_e(heading)}</caption>",
            '<thead><tr><th scope="col">Indicator</th><th scope="col">Owner</th>'
            '<th scope="col">Step</th><th scope="col">Waiting for</th></tr></thead>',
            "<tbody>",
        ]
        for item in cycle.awaiting_approval:
            parts.append(
                f"<tr><td>{_e(item.indicator_key)}: {_e(item.indicator_name)}</td>"
                f"<td>{_e(item.owner_name)}</td><td>{_e(item.step)}</td>"
                f"<td>{_e(' or '.join(item.approvers))}</td></tr>"
            )
        parts += ["</tbody>", "</table>"]
    parts.append("</section>")
    return parts


def _parked_html(report: StatusReport) -> list[str]:
    queued = ", ".join(
        f"{status.replace('_', ' ')} {count}" for status, count in report.outbox.items()
    )
    parts = [
        "<section>",
        "<h2>Messages the service could not send</h2>",
        f"<p>Outbox: {_e(queued)}.</p>",
    ]
    if report.outage is not None:
        since = format_moment(report.outage.since)
        parts.append(
            f'<p role="alert"><strong>Microsoft 365 cannot be reached (since {_e(since)}).'
            "</strong> Messages are waiting and will be sent when it returns; "
            "nothing is lost.</p>"
        )
    if not report.parked:
        none = "None parked" if report.outage is not None else "None: nothing is parked"
        parts.append(f"<p>{none}.</p>")
        parts.append("</section>")
        return parts
    parts += [
        "<table>",
        "<caption>Parked outbox messages (an operator must requeue or drop them)</caption>",
        '<thead><tr><th scope="col">Id</th><th scope="col">Kind</th>'
        '<th scope="col">Attempts</th><th scope="col">Last tried</th>'
        '<th scope="col">Error</th></tr></thead>',
        "<tbody>",
    ]
    for m in report.parked:
        parts.append(
            f'<tr><td class="number">{m.id}</td><td>{_e(m.kind)}</td>'
            f'<td class="number">{m.attempts}</td><td>{_e(format_moment(m.updated_at))}</td>'
            f"<td>{_e(m.last_error or '')}</td></tr>"
        )
    parts += ["</tbody>", "</table>", "</section>"]
    return parts


def _e(text: object) -> str:
    return escape(str(text), quote=True)
