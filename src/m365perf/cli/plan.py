"""``m365perf plan``: a dry run of one cycle; nothing is sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from m365perf.cli._common import (
    csv_errors_exit,
    fieldmap_or_exit,
    load_flow_or_exit,
    period_or_exit,
    sources,
)


@click.command()
@click.argument("flow_ref", metavar="FLOW")
@click.option("--period", "period_label", help="e.g. 2026-10, '2026/27 Q2', 2026/27")
@click.option(
    "--register",
    "register_csv",
    type=click.Path(exists=True, path_type=Path),
    help="Read the register from this CSV instead of SharePoint.",
)
@click.option(
    "--directory",
    "directory_csv",
    type=click.Path(exists=True, path_type=Path),
    help="People CSV (id,name,email,line_manager) instead of Entra ID.",
)
@click.option(
    "--from-now",
    "from_now",
    is_flag=True,
    help="Show what `m365perf serve` would send if started now on an empty database.",
)
@click.option(
    "--now",
    "now_text",
    metavar="ISO",
    help="With --from-now: the moment of the start, e.g. 2026-12-01T09:00 (London time).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
def plan(
    flow_ref: str,
    period_label: str | None,
    register_csv: Path | None,
    directory_csv: Path | None,
    from_now: bool,
    now_text: str | None,
    as_json: bool,
) -> None:
    """Show who would get which request, the due date, reminders and approver chains.

    Reads the register from SharePoint and people from Entra ID when a tenant is
    configured, or from the CSVs given. Without a directory, every well-formed e-mail
    is taken as a person and nobody has a line manager. A field-map, filter or
    approver column the register lacks is an error (exit 2); a mapped column empty on
    every due row, or targets with no polarity, are warnings on stderr.

    With --from-now (instead of --period): which period a start of the service at that
    moment opens (never one before the flow's collect_from), and per person each
    message it would send and when: the late request, the reminders still ahead, the
    escalation. Nothing is sent and nothing is stored.
    """
    from m365perf.domain.approvers import Person
    from m365perf.plan import build_plan
    from m365perf.plan.fieldmap import check_field_map, problem_lines
    from m365perf.plan.routing import FlowDirectory
    from m365perf.settings import load_settings
    from m365perf.sync import people_named

    if from_now == (period_label is not None):
        raise click.UsageError("give --period PERIOD, or --from-now (not both)")
    if now_text is not None and not from_now:
        raise click.UsageError("--now goes with --from-now")
    flow = load_flow_or_exit(flow_ref)
    period = period_or_exit(flow, period_label) if period_label is not None else None
    now = _moment(now_text)
    settings = load_settings()
    with csv_errors_exit():
        register, source = sources(settings, register_csv, directory_csv)
        columns = register.columns(flow)
        fieldmap_or_exit(flow, check_field_map(flow, columns))
        rows = register.rows(flow)
    warnings = check_field_map(flow, columns, rows=rows)
    for line in problem_lines(flow, warnings):
        click.echo(line, err=True)
    if source is None:
        directory = FlowDirectory([], {}, flow, strict=False)
    else:
        found, _unknown = source.people(people_named(flow, rows))
        directory = FlowDirectory(
            [Person(id=p.id, name=p.name, email=p.email) for p in found],
            {p.email: p.line_manager_id for p in found if p.line_manager_id},
            flow,
            strict=True,
        )
    if period is None:
        from m365perf.plan.start import start_plan

        started = start_plan(flow, rows, directory, now).to_dict()
        click.echo(json.dumps(started, indent=2) if as_json else _start_text(started))
        return
    result = build_plan(flow, period, rows, directory).to_dict()
    result["warnings"] = [{"where": w.where, "message": w.message, "fix": w.fix} for w in warnings]
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_text(result))


def _moment(text: str | None) -> datetime:
    """``--now`` as an aware moment (London time when no offset is given); default now."""
    from m365perf.plan.catchup import LONDON

    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a moment: write it like 2026-12-01T09:00", param_hint="--now"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LONDON)


def _start_text(started: dict[str, Any]) -> str:
    from m365perf.plan.catchup import LONDON

    def local(iso: str) -> str:
        return datetime.fromisoformat(iso).astimezone(LONDON).strftime("%a %d %b %Y %H:%M")

    head = f"{started['flow_name']} — a start at {local(started['now'])}"
    if not started["opens"]:
        return f"{head}\nOpens nothing: {started['reason']}"
    lines = [head, f"Opens {started['period']}: {started['reason']}"]
    if started["late"]:
        lines.append(
            f"Planned due date {started['planned_due']} has passed or is too near: "
            f"returns are due {started['due']}, counted from this start"
        )
    if started["skipped_reminders"]:
        lines.append(
            "Not sent (their moment passed before the request): "
            + ", ".join(started["skipped_reminders"])
        )
    for person, messages in started["people"].items():
        lines.append("")
        now_count = sum(1 for m in messages if m["at"] == started["now"])
        lines.append(
            f"{person}: {now_count} message(s) at the start, "
            f"{len(messages) - now_count} later if still not returned"
        )
        for m in messages:
            about = f" [{m['about']}]" if m["about"] else ""
            lines.append(f"  {local(m['at'])}  {m['kind']}: {m['wording']}{about}")
    return "\n".join(lines)


def _text(plan: dict[str, Any]) -> str:
    lines = [
        f"{plan['flow_name']} — {plan['period']} ({plan['period_start']} to {plan['period_end']})",
        f"Opens {plan['opens']} {plan['opens_at']}; due {plan['due']}; "
        f"channels: {', '.join(plan['channels'])}",
        "Reminders: " + ", ".join(f"{r['on']} ({r['kind']})" for r in plan["reminders"]),
    ]
    if plan["escalates_on"]:
        lines.append(f"Escalates on {plan['escalates_on']}")
    closes = [
        *(["when every return is approved"] if plan["closes_when_all_approved"] else []),
        *([f"on {plan['closes_on']}"] if plan["closes_on"] else []),
    ]
    late = "refused" if plan["late_returns"] == "refuse" else "taken as late corrections"
    lines.append(
        f"Closes {' or '.join(closes) or 'by hand (m365perf cycle close)'}; "
        f"figures after that are {late}"
    )
    counts = plan["counts"]
    lines.append(
        f"{counts['requests']} request(s) for {counts['indicators']} indicator(s); "
        f"{counts['unroutable']} cannot be routed"
    )
    for request in plan["requests"]:
        owner = request["owner"]
        lines.append("")
        lines.append(
            f"{owner['name']} <{owner['email']}> — {len(request['indicators'])} indicator(s)"
        )
        for ind in request["indicators"]:
            target = "no target" if ind["target"] is None else f"target {ind['target']:g}"
            lines.append(f"  {ind['id']}  {ind['name']}  [{ind['unit']}, {target}]")
            for step in ind["approval_chain"]:
                who = " or ".join(p["name"] for p in step["approvers"])
                when = f" — only {step['condition']}" if step["when"] else ""
                note = f" ({step['note']})" if step["note"] else ""
                lines.append(f"      → {step['step']}: {who}{when}{note}")
    if plan["unroutable"]:
        lines.append("")
        lines.append("Cannot be routed:")
        for item in plan["unroutable"]:
            lines.append(f"  {item['indicator_id']}  {item['name']}: {item['reason']}")
    if not plan["requests"]:
        lines.append("")
        lines.append(
            "Nobody would be asked: `m365perf cycle open` refuses this cycle unless --allow-empty."
        )
    return "\n".join(lines)
