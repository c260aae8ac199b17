"""``m365perf provision FLOW``: create the results (and history) lists a flow writes to."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from m365perf.cli._common import load_flow_or_exit

if TYPE_CHECKING:
    from m365perf.tenant.provision import ProvisionReport

EXIT_INCOMPLETE = 1
EXIT_REGISTER = 3


@click.command()
@click.argument("flow_ref", metavar="FLOW")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("flows"),
    show_default=True,
    help="Where to find FLOW when it is an id rather than a file.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be created; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def provision(flow_ref: str, flows_dir: Path, dry_run: bool, as_json: bool) -> None:
    """Create the flow's SharePoint results and history lists, their columns and indexes.

    Safe to run again: only what is missing is made. The register is never changed;
    columns the flow names that it lacks (or filter columns not indexed) are listed
    for you to fix. Exits 0 when all is in place, 1 when it could not complete (no
    access, a column of the wrong kind), 3 when only the register needs changes by hand.
    """
    from pydantic import ValidationError

    from m365perf.m365 import clients_from_settings
    from m365perf.settings import load_settings
    from m365perf.tenant.provision import provision as run_provision

    flow = load_flow_or_exit(flow_ref, flows_dir)
    try:
        settings = load_settings()
    except (ValidationError, ValueError) as exc:
        raise click.ClickException(f"the settings are not valid: {exc}") from None
    if not settings.has_tenant:
        raise click.UsageError(
            "no tenant is configured (M365PERF_TENANT_ID, M365PERF_CLIENT_ID...): "
            "see config/.env.example"
        )
    clients = clients_from_settings(settings)
    try:
        report = run_provision(clients.graph, flow, dry_run=dry_run)
    finally:
        clients.close()
    result = report.to_dict()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_text(report))
    if not report.complete:
        sys.exit(EXIT_INCOMPLETE)
    if report.register:
        sys.exit(EXIT_REGISTER)


def _text(report: ProvisionReport) -> str:
    lines = [f"{report.flow}{' (dry run: nothing changed)' if report.dry_run else ''}"]
    if report.actions:
        verb = "Would" if report.dry_run else "Done:"
        lines += [f"  {verb} {a.describe()}" for a in report.actions]
    elif report.complete:
        lines.append("  Lists: nothing to do — every list, column and index is in place")
    lines += [f"  Cannot fix: {f.describe()}" for f in report.problems]
    if report.register:
        lines.append("  The register needs these changes by hand (provision never changes it):")
        lines += [f"    {f.describe()}" for f in report.register]
    if report.error:
        lines.append(f"  Stopped: {report.error}")
    return "\n".join(lines)
