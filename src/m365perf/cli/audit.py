"""``m365perf audit``: every transition of a cycle, who, when, what, before and after."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from m365perf.cli._common import open_store


@click.command()
@click.option(
    "--cycle",
    "cycle_ref",
    required=True,
    help="Cycle id, or FLOW:PERIOD such as monthly-corporate-kpis:2026-10.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the terminal.",
)
def audit(cycle_ref: str, fmt: str, output: Path | None) -> None:
    """Print or export a cycle's audit trail."""
    from m365perf.settings import load_settings

    store = open_store(load_settings())
    try:
        with store.transaction() as tx:
            if cycle_ref.isdigit():
                found = next((c for c in tx.list_cycles() if c.id == int(cycle_ref)), None)
            else:
                flow_id, _, period = cycle_ref.partition(":")
                found = tx.find_cycle(flow_id, period)
            if found is None:
                raise click.BadParameter(f"no cycle '{cycle_ref}'", param_hint="--cycle")
            events = tx.list_audit(cycle_id=found.id)
    finally:
        store.close()
    rows: list[dict[str, Any]] = [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "before": e.before,
            "after": e.after,
        }
        for e in events
    ]
    if fmt == "json":
        text = json.dumps(rows, indent=2)
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["at"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
            )
        text = buffer.getvalue()
    else:
        text = "\n".join(
            f"{r['at']}  {r['actor']:<38} {r['action']:<26} {r['subject_type']} {r['subject_id']}"
            for r in rows
        )
    if output:
        output.write_text(text + ("\n" if not text.endswith("\n") else ""))
        click.echo(f"{len(rows)} event(s) written to {output}", err=True)
    else:
        click.echo(text)
