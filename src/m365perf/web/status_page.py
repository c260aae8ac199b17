"""The status page as HTML: plain, accessible, readable on a phone, no JavaScript.

Every table has a caption and header cells with scope; every form control a label; the
RAG is a word as well as a colour (colour-blind readers, printers), in colours that keep
a contrast of at least 4.5:1. On a narrow screen each table row becomes a card: every
cell shows its column's name before its value (``data-label``). Every value is escaped:
indicator names, commentary and remote errors are other people's text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from m365perf.cards.formatting import format_date, format_moment, rag_word
from m365perf.domain.measures import MeasureGroup
from m365perf.web.return_pages import html_page
from m365perf.web.status import (
    STATE_WORDS,
    STATES,
    ApproverQueue,
    CycleStatusReport,
    Progress,
    StatusReport,
)

RETRY_PATH = "/status/parked/{message_id}/retry"
"""Where a parked message's retry button posts (with the session's CSRF token)."""

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;
color:#1b1b1b;background:#f6f6f6;line-height:1.45}
main{max-width:80rem;margin:0 auto;padding:1rem 1.25rem 3rem;background:#fff}
h1{font-size:1.7rem;margin:.5rem 0}h2{font-size:1.35rem;margin-top:2rem;
border-top:2px solid #1b1b1b;padding-top:.75rem}h3{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0 1.25rem;width:100%}
th,td{border:1px solid #767676;padding:.3rem .5rem;text-align:left;vertical-align:top}
thead th{background:#e8e8e8}caption{text-align:left;font-weight:700;padding:.3rem 0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.rag{display:inline-block;padding:0 .4rem;border-radius:3px;font-weight:700}
.rag-red{background:#b10e1e;color:#fff}.rag-amber{background:#ffdd00;color:#1b1b1b}
.rag-green{background:#00703c;color:#fff}.rag-none{background:#e8e8e8;color:#1b1b1b}
.late{color:#b10e1e;font-weight:700}
.notice{border-left:6px solid #1d70b8;padding:.5rem 1rem;background:#eef4fb}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;padding:0;list-style:none}
a{color:#1d4f91}button{font:inherit;padding:.3rem .8rem;border:2px solid #1b1b1b;
background:#fff;color:#1b1b1b;cursor:pointer}
a:focus,button:focus{outline:3px solid #fd0;outline-offset:0}
form.inline{display:inline;margin:0}
@media (max-width:40rem){
main{padding:.75rem}
table,caption,thead,tbody,tr,th,td{display:block}
thead tr{position:absolute;left:-9999px;top:-9999px}
tr{border:1px solid #767676;margin-bottom:.75rem}
td{border:none;border-bottom:1px solid #d0d0d0;text-align:left}
td.n{text-align:left}
td::before{content:attr(data-label) ": ";font-weight:700}
}
"""

STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
"""For the Content-Security-Policy: the page's one inline style, and nothing else."""

_PROGRESS_COLUMNS = [(s, STATE_WORDS[s].split(",")[0].capitalize()) for s in STATES]


def render_status_html(
    report: StatusReport,
    *,
    signed_in_as: str = "",
    csrf: str = "",
    notes: Sequence[str] = (),
) -> str:
    """The whole page; ``csrf`` goes into every form (the retry buttons, sign-out)."""
    body = [
        "<h1>Performance returns: status</h1>",
        f"<p>As at {_e(format_moment(report.generated_at))}."
        + (f" Signed in as {_e(signed_in_as)}." if signed_in_as else "")
        + "</p>",
    ]
    if csrf:
        body.append(
            '<form class="inline" method="post" action="/signout">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            '<button type="submit">Sign out</button></form>'
        )
    body.extend(f'<p class="notice" role="status">{_e(n)}</p>' for n in notes)
    links = [(f"cycle-{c.cycle_id}", f"{c.flow_name}: {c.period}") for c in report.cycles]
    links += [
        ("queue", "Approval queue"),
        ("measures", "Process measures"),
        ("powerbi", "Power BI refreshes"),
        ("parked", "Messages not sent"),
    ]
    body.append('<nav aria-label="On this page"><ul>')
    body.extend(f'<li><a href="#{a}">{_e(t)}</a></li>' for a, t in links)
    body.append("</ul></nav>")
    if not report.cycles:
        body.append("<p>No cycle is open.</p>")
    for cycle in report.cycles:
        body.extend(_cycle(cycle, report.generated_at))
    body.extend(_queue(report.approval_queue))
    body.extend(_flow_measures(report.measures, report.flow_names))
    body.extend(_powerbi(report))
    body.extend(_parked(report, csrf))
    return _page("Performance returns: status", body)


def _cycle(cycle: CycleStatusReport, now: datetime) -> list[str]:
    heading = f"{cycle.flow_name}: {cycle.period}"
    due = f"due {format_date(cycle.due_date)}"
    out = [
        f'<section aria-labelledby="cycle-{cycle.cycle_id}">',
        f'<h2 id="cycle-{cycle.cycle_id}">{_e(heading)}</h2>',
        f"<p>{_e(cycle.status.capitalize())}, {_e(due)}"
        + (' <span class="late">(the due date has passed)</span>' if cycle.overdue else "")
        + f". {cycle.counts.total} returns in this cycle.</p>",
    ]
    out += _progress_table(f"Progress by service, {heading}", "Service", cycle.by_service, True)
    out += _progress_table(f"Progress by owner, {heading}", "Owner", cycle.by_owner, False)
    out += [
        "<table>",
        f"<caption>Every return, {_e(heading)}</caption>",
        _head(
            "Indicator",
            "Service",
            "Owner",
            "State",
            "Value",
            "RAG",
            "Step",
            "Waiting on",
            "Waiting for",
        ),
        "<tbody>",
    ]
    for item in cycle.items:
        state = _e(item.state_text)
        if item.state == "late":
            state = f'<span class="late">{state}</span>'
        waited = _age(item.waited_hours) if item.waited_hours is not None else ""
        out.append(
            "<tr>"
            + _td("Indicator", f"{item.indicator_key}: {item.indicator_name}")
            + _td("Service", item.service)
            + _td("Owner", item.owner_name)
            + f'<td data-label="State">{state}</td>'
            + _td("Value", item.value)
            + f'<td data-label="RAG">{_rag(item.rag)}</td>'
            + _td("Step", item.step or "")
            + _td("Waiting on", " or ".join(item.waiting_on))
            + _td("Waiting for", waited)
            + "</tr>"
        )
    out += ["</tbody>", "</table>"]
    out += _measures_table(f"Process measures, {heading}", cycle.measures)
    out.append("</section>")
    return out


def _progress_table(
    caption: str, first: str, rows: Sequence[Progress], with_total: bool
) -> list[str]:
    out = [
        "<table>",
        f"<caption>{_e(caption)}</caption>",
        _head(first, "Total", *(label for _s, label in _PROGRESS_COLUMNS)),
        "<tbody>",
    ]
    for row in rows:
        out.append(
            f'<tr><th scope="row" data-label="{_e(first)}">{_e(row.name)}</th>'
            + _num("Total", row.total)
            + "".join(_num(label, getattr(row, s)) for s, label in _PROGRESS_COLUMNS)
            + "</tr>"
        )
    out += ["</tbody>", "</table>"]
    return out


def _measures_table(
    caption: str, groups: Sequence[MeasureGroup], flow_names: Mapping[str, str] | None = None
) -> list[str]:
    if not groups:
        return [f"<p>{_e(caption)}: nothing to measure yet.</p>"]
    out = [
        "<table>",
        f"<caption>{_e(caption)}</caption>",
        _head(
            "Of",
            "Self-return rate",
            "On-time rate",
            "Median time to return",
            "90th percentile to return",
            "Median time to approve",
            "90th percentile to approve",
            "Rejection rate",
        ),
        "<tbody>",
    ]
    for group in groups:
        m = group.measures
        if group.scope == "flow":
            name = (flow_names or {}).get(group.flow_id, group.flow_id)
        elif group.scope == "cycle":
            name = "The whole cycle"
        else:
            name = group.service or ""
        out.append(
            f'<tr><th scope="row" data-label="Of">{_e(name)}</th>'
            + _td("Self-return rate", _share(m.self_return_rate, m.self_returned, m.returned))
            + _td("On-time rate", _share(m.on_time_rate, m.on_time, m.due))
            + _td("Median time to return", _age(m.median_hours_to_return))
            + _td("90th percentile to return", _age(m.p90_hours_to_return))
            + _td("Median time to approve", _age(m.median_hours_to_approve))
            + _td("90th percentile to approve", _age(m.p90_hours_to_approve))
            + _td("Rejection rate", _share(m.rejection_rate, m.rejections, m.decisions))
            + "</tr>"
        )
    out += ["</tbody>", "</table>"]
    return out


def _queue(queues: Sequence[ApproverQueue]) -> list[str]:
    out = ['<section aria-labelledby="queue">', '<h2 id="queue">Approval queue by approver</h2>']
    if not queues:
        out.append("<p>Nothing is waiting for an approver.</p>")
    for queue in queues:
        who = queue.approver_name + (f" ({queue.approver_email})" if queue.approver_email else "")
        count = len(queue.items)
        out += [
            "<table>",
            f"<caption>{_e(who)}: {count} waiting, the oldest for "
            f"{_e(_age(queue.oldest_hours))}</caption>",
            _head("Flow and period", "Indicator", "Owner", "Step", "Waiting since", "Waiting for"),
            "<tbody>",
        ]
        for item in queue.items:
            out.append(
                "<tr>"
                + _td("Flow and period", f"{item.flow_name} {item.period}")
                + _td("Indicator", item.indicator_name)
                + _td("Owner", item.owner_name)
                + _td("Step", item.step)
                + _td("Waiting since", format_moment(item.waiting_since))
                + _td("Waiting for", _age(item.waited_hours))
                + "</tr>"
            )
        out += ["</tbody>", "</table>"]
    out.append("</section>")
    return out


def _flow_measures(groups: Sequence[MeasureGroup], flow_names: Mapping[str, str]) -> list[str]:
    return [
        '<section aria-labelledby="measures">',
        '<h2 id="measures">Process measures by flow, every cycle</h2>',
        "<p>Self-return: returned before any chase. On time: returned by the due date. "
        "Times run from the request to the first figure, and from the approved figure to "
        "its approval. Rejection rate: decisions that sent a figure back.</p>",
        *_measures_table("Process measures by flow", groups, flow_names),
        "</section>",
    ]


def _powerbi(report: StatusReport) -> list[str]:
    out = ['<section aria-labelledby="powerbi">', '<h2 id="powerbi">Power BI refreshes today</h2>']
    if not report.powerbi:
        out.append("<p>No flow refreshes a Power BI dataset.</p>")
        out.append("</section>")
        return out
    out += [
        "<table>",
        "<caption>Refreshes today against each dataset's daily budget</caption>",
        _head(
            "Flow",
            "Asked by the service",
            "Scheduled in Power BI",
            "Used",
            "Daily budget",
            "Left",
            "Waiting",
            "Next",
        ),
        "<tbody>",
    ]
    for r in report.powerbi:
        out.append(
            "<tr>"
            + _td("Flow", r.flow_name)
            + _num("Asked by the service", r.asked_today)
            + _num("Scheduled in Power BI", r.scheduled_per_day)
            + _num("Used", r.used)
            + _num("Daily budget", r.daily_budget)
            + _num("Left", r.remaining)
            + _num("Waiting", r.waiting)
            + _td("Next", format_moment(r.next_at) if r.next_at else "none waiting")
            + "</tr>"
        )
    out += ["</tbody>", "</table>", "</section>"]
    return out


def _parked(report: StatusReport, csrf: str) -> list[str]:
    queued = ", ".join(f"{s.replace('_', ' ')} {n}" for s, n in report.outbox.items())
    kinds = "; ".join(
        f"{kind.replace('_', ' ')}: "
        + ", ".join(f"{s.replace('_', ' ')} {n}" for s, n in statuses.items())
        for kind, statuses in report.outbox_by_kind.items()
    )
    out = [
        '<section aria-labelledby="parked">',
        '<h2 id="parked">Messages the service could not send</h2>',
        f"<p>Outbox: {_e(queued)}.</p>",
        *([f"<p>By kind: {_e(kinds)}.</p>"] if kinds else []),
    ]
    if report.outage is not None:
        since = format_moment(report.outage.since)
        out.append(
            f'<p role="alert"><strong>Microsoft 365 cannot be reached (since {_e(since)}).'
            "</strong> Messages are waiting and will be sent when it returns; "
            "nothing is lost.</p>"
        )
    if not report.parked:
        none = "None parked" if report.outage is not None else "None: nothing is parked"
        out += [f"<p>{none}.</p>", "</section>"]
        return out
    out += [
        "<table>",
        "<caption>Parked outbox messages: fix the cause, then retry</caption>",
        _head("Message", "What for", "Attempts", "Last tried", "Error", "Retry"),
        "<tbody>",
    ]
    for m in report.parked:
        button = (
            f'<form class="inline" method="post" '
            f'action="{RETRY_PATH.format(message_id=m.id)}">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            f'<button type="submit" aria-label="Retry message {m.id}: {_e(m.about)}">'
            "Retry</button></form>"
            if csrf
            else ""
        )
        out.append(
            "<tr>"
            + _td("Message", f"{m.id} ({m.kind.replace('_', ' ')})")
            + _td("What for", m.about)
            + _num("Attempts", m.attempts)
            + _td("Last tried", format_moment(m.updated_at))
            + _td("Error", m.last_error or "")
            + f'<td data-label="Retry">{button}</td>'
            + "</tr>"
        )
    out += ["</tbody>", "</table>", "</section>"]
    return out


def _page(title: str, body: Sequence[str]) -> str:
    return html_page(title, body, style=_STYLE)


def _head(*labels: str) -> str:
    cells = "".join(f'<th scope="col">{_e(label)}</th>' for label in labels)
    return f"<thead><tr>{cells}</tr></thead>"


def _td(label: str, text: object) -> str:
    return f'<td data-label="{_e(label)}">{_e(text)}</td>'


def _num(label: str, number: int) -> str:
    return f'<td class="n" data-label="{_e(label)}">{number}</td>'


def _rag(rag: str | None) -> str:
    if rag is None:
        return ""
    return f'<span class="rag rag-{_e(rag)}">{_e(rag_word(rag))}</span>'


def _share(rate: float | None, part: int, whole: int) -> str:
    """ "90% (9 of 10)"; "none yet" when nothing counts."""
    return "none yet" if rate is None else f"{rate:.0%} ({part} of {whole})"


def _age(hours: float | None) -> str:
    """A wait in words: "under an hour", "5 hours", "2 days 3 hours"."""
    if hours is None:
        return "none yet"
    whole = int(hours)
    if whole < 1:
        return "under an hour"
    days, rest = divmod(whole, 24)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if rest:
        parts.append(f"{rest} hour{'s' if rest != 1 else ''}")
    return " ".join(parts)


def _e(text: object) -> str:
    return escape(str(text), quote=True)
