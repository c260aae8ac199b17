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
    from m365perf.store import AuditEvent, Transaction


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
    store = open_store(load_settings(), reading=True)
    try:
        with store.transaction() as tx:
            if delegations:
                events = tx.list_audit(subject_type="delegation")
            else:
                found = find_cycle_or_exit(tx, cycle_ref or "")
                events = tx.list_audit(cycle_id=found.id)
            names = _names(tx)
            subjects = _subject_names(tx, events, names)
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
            "subject_name": subjects.get((e.subject_type, e.subject_id)),
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
            + (f" {r['subject_name']}" if r["subject_name"] else "")
            + _detail(r)
            for r in rows
        )
    if output:
        output.write_text(text + ("\n" if not text.endswith("\n") else ""))
        click.echo(f"{len(rows)} event(s) written to {output}", err=True)
    else:
        click.echo(text)


def _names(tx: Transaction) -> dict[str, str]:
    """The directory's name for each person, by id and by e-mail (one read)."""
    names: dict[str, str] = {}
    for person in tx.list_people():
        names[person.id] = person.name
        names[person.email] = person.name
    return names


def _subject_names(
    tx: Transaction, events: list[AuditEvent], people: dict[str, str]
) -> dict[tuple[str, str], str]:
    """What each event is about, in words: "CP001 Household waste recycled" for a return,
    the person's name for an owner or a person; three reads whatever the trail's length."""
    cycle_ids = {e.cycle_id for e in events if e.cycle_id is not None}
    cycles = {c.id: c for c in tx.list_cycles() if c.id in cycle_ids}
    returns = tx.list_returns(cycle_ids=list(cycles)) if cycles else []
    indicators = {
        (i.flow_id, i.indicator_key): i.name
        for i in (tx.list_indicators({c.flow_id for c in cycles.values()}) if cycles else [])
    }
    flow_of = {c.id: c.flow_id for c in cycles.values()}
    out: dict[tuple[str, str], str] = {}
    for ret in returns:
        name = indicators.get((flow_of.get(ret.cycle_id, ""), ret.indicator_key), "")
        out[("return", str(ret.id))] = f"{ret.indicator_key} {name}".strip()
    for cycle in cycles.values():
        out[("cycle", str(cycle.id))] = f"{cycle.flow_id} {cycle.period}"
    for event in events:
        if event.subject_type in ("owner", "person") and event.subject_id in people:
            out[(event.subject_type, event.subject_id)] = people[event.subject_id]
    return out


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
