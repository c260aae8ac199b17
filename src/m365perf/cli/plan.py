"""``m365perf plan``: a dry run of one cycle; nothing is sent."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from m365perf.flows import FlowError, load_flow


@click.command()
@click.argument("flow_path", metavar="FLOW", type=click.Path(exists=True, path_type=Path))
@click.option("--period", "period_label", required=True, help="e.g. 2026-10, '2026/27 Q2', 2026/27")
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
    help="People CSV (id,name,email,line_manager) to resolve owners and approvers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
def plan(
    flow_path: Path,
    period_label: str,
    register_csv: Path | None,
    directory_csv: Path | None,
    as_json: bool,
) -> None:
    """Show who would get which request, the due date, reminders and approver chains."""
    from m365perf.domain.periods import Period, PeriodError
    from m365perf.plan import build_plan
    from m365perf.plan.register import read_register_csv
    from m365perf.plan.routing import FlowDirectory, read_directory_csv
    from m365perf.settings import load_settings

    try:
        flow = load_flow(flow_path)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        sys.exit(2)
    try:
        period = Period.parse_for(flow.frequency, period_label)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    if register_csv is None:
        if load_settings().has_tenant:
            raise click.UsageError(
                "reading the register from SharePoint comes with the Microsoft 365 clients; "
                "pass --register CSV for now"
            )
        raise click.UsageError("no tenant is configured: pass --register CSV")
    rows = read_register_csv(register_csv)
    if directory_csv is not None:
        people, managers = read_directory_csv(directory_csv)
        directory = FlowDirectory(people, managers, flow, strict=True)
    else:
        directory = FlowDirectory([], {}, flow, strict=False)
    result = build_plan(flow, period, rows, directory).to_dict()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_text(result))


def _text(plan: dict[str, Any]) -> str:
    lines = [
        f"{plan['flow_name']} — {plan['period']} ({plan['period_start']} to {plan['period_end']})",
        f"Opens {plan['opens']} {plan['opens_at']}; due {plan['due']}; "
        f"channels: {', '.join(plan['channels'])}",
        "Reminders: " + ", ".join(f"{r['on']} ({r['kind']})" for r in plan["reminders"]),
    ]
    if plan["escalates_on"]:
        lines.append(f"Escalates on {plan['escalates_on']}")
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
    return "\n".join(lines)
