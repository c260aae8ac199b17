"""``m365perf audit``: every transition of a cycle, who, when, what, before and after."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m365perf.cli._common import find_cycle_or_exit, open_store

if TYPE_CHECKING:
    from m365perf.store import Transaction


@click.command()
@click.option(
    "--cycle",
    "cycle_ref",
    help="Cycle id, or FLOW:PERIOD such as monthly-corporate-kpis:2026-10.",
)
@click.option(
    "--delegations",
    is_flag=True,
    help="Delegations and away markings (who for whom, when, recorded by whom) instead.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the terminal.",
)
def audit(cycle_ref: str | None, delegations: bool, fmt: str, output: Path | None) -> None:
    """Print or export a cycle's audit trail (or the delegations'), names next to ids."""
    from m365perf.settings import load_settings

    if bool(cycle_ref) == delegations:
        raise click.UsageError("give --cycle FLOW:PERIOD, or --delegations")
    store = open_store(load_settings())
    try:
        with store.transaction() as tx:
            if delegations:
                events = tx.list_audit(subject_type="delegation")
            else:
                found = find_cycle_or_exit(tx, cycle_ref or "")
                events = tx.list_audit(cycle_id=found.id)
            names = _names(tx, {e.actor for e in events})
    finally:
        store.close()
    rows: list[dict[str, Any]] = [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "actor_name": names.get(e.actor),
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
            f"{r['at']}  {_who(r):<58} {r['action']:<26} {r['subject_type']} {r['subject_id']}"
            + _detail(r)
            for r in rows
        )
    if output:
        output.write_text(text + ("\n" if not text.endswith("\n") else ""))
        click.echo(f"{len(rows)} event(s) written to {output}", err=True)
    else:
        click.echo(text)


def _names(tx: Transaction, refs: set[str]) -> dict[str, str]:
    """The directory's name for each actor that is a person (not the scheduler)."""
    names: dict[str, str] = {}
    for ref in refs:
        person = tx.find_person(ref) if ref and ref.strip() else None
        if person is not None:
            names[ref] = person.name
    return names


def _who(row: dict[str, Any]) -> str:
    """ "Nadia Clarke (f2ccfc08-…)": the name beside the id it was recorded under."""
    name = row.get("actor_name")
    return f"{name} ({row['actor']})" if name else str(row["actor"])


def _detail(row: dict[str, Any]) -> str:
    """Who acted for whom, on delegated decisions and on delegations themselves."""
    after = row.get("after") or {}
    for key in ("acting", "label"):
        value = after.get(key)
        if isinstance(value, str) and value:
            return f"  ({value})"
    return ""
