"""``m365perf demo``: rehearse a whole cycle against the local sandbox."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from m365perf.cli._common import load_flow_or_exit

DEFAULT_FLOWS = ("flows/annual-statutory-returns.yaml", "flows/monthly-corporate-kpis.yaml")
DEFAULT_PERIODS = {"annual-statutory-returns": "2025/26", "monthly-corporate-kpis": "2026-10"}


@click.command()
@click.option("--auto", is_flag=True, help="Simulated officers and approvers click for you.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the sandbox and the database here (default: a temporary folder).",
)
def demo(auto: bool, as_json: bool, workdir: Path | None) -> None:
    """Start the sandbox, seed the Coventry register and run one full cycle of each flow.

    With --auto, simulated officers return their figures (one late), approvers approve
    (one rejection, then a resubmission), results are written back to SharePoint and
    Power BI is refreshed. Every click goes through the real bot endpoint.
    """
    from m365perf.demo import DemoError, run_demo

    if not auto:
        raise click.UsageError("only --auto is available for now: the simulated people click")
    flows = [load_flow_or_exit(path) for path in DEFAULT_FLOWS]
    periods = {flow.id: DEFAULT_PERIODS[flow.id] for flow in flows}
    try:
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="m365perf-demo-") as tmp:
                summary = run_demo(flows, Path(tmp), periods=periods)
        else:
            summary = run_demo(flows, workdir, periods=periods)
    except DemoError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(_text(summary))


def _text(s: dict[str, Any]) -> str:
    box = s["sandbox"]
    return "\n".join(
        [
            "Rehearsal finished (annual statutory returns 2025/26 by e-mail, monthly KPIs 2026-10 "
            "by Teams):",
            f"  {s['requests_sent']} requests sent to owners for {s['indicators']} indicators; "
            f"{s['returns']} returned ({s['late']} late), "
            f"self-return rate {s['self_return_rate']:.0%}",
            f"  {s['approved']} approved; {s['rejected']} rejected and resubmitted",
            f"  {s['written_back']} rows upserted into SharePoint 'KPI Results' "
            f"(the list holds {box['results_rows']}, {box['distinct_keys']} distinct keys)",
            f"  {s['powerbi_refreshes']} Power BI refreshes (the dataset's history shows "
            f"{box['powerbi_refresh_history']})",
            f"  {s['audit_events']} audit events; {s['parked']} messages could not be sent",
            "Use --json for the machine-readable summary, --workdir DIR to keep the database.",
        ]
    )
