"""``m365perf cycle``: open a reporting cycle by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from m365perf.cli._common import (
    load_flow_or_exit,
    open_store,
    period_or_exit,
    register_options,
    sources,
)


@click.group()
def cycle() -> None:
    """Manage reporting cycles."""


@cycle.command("open")
@click.argument("flow_ref", metavar="FLOW")
@register_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def open_(
    flow_ref: str,
    period_label: str,
    register_csv: Path | None,
    directory_csv: Path | None,
    as_json: bool,
) -> None:
    """Open FLOW's cycle for a period now and queue every owner's request.

    Opening twice changes nothing. `m365perf serve` sends what is queued.
    """
    from m365perf.engine import Engine
    from m365perf.service import engine_config
    from m365perf.settings import load_settings
    from m365perf.sync import sync

    settings = load_settings()
    flow = load_flow_or_exit(flow_ref)
    period = period_or_exit(flow, period_label)
    register, people = sources(settings, register_csv, directory_csv)
    if people is None:
        raise click.UsageError("no tenant is configured: pass --register CSV and --directory CSV")
    store = open_store(settings)
    try:
        now = datetime.now(UTC)
        indicators, problems = sync(store, flow, register, people, now=now)
        engine = Engine(
            store,
            [flow],
            engine_config(settings),
        )
        opened = engine.open_cycle(flow.id, period, indicators, problems, now=now, actor="cli")
    finally:
        store.close()
    result = {
        "flow": flow.id,
        "period": period.label,
        "cycle_id": opened.cycle_id,
        "created": opened.created,
        "owners": opened.owners,
        "returns": opened.returns,
        "unroutable": [
            {"indicator_id": u.indicator_id, "name": u.name, "reason": u.reason}
            for u in opened.unroutable
        ],
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif opened.created:
        click.echo(
            f"Opened {flow.name} {period.label} (cycle {opened.cycle_id}): "
            f"{opened.returns} return(s) asked of {opened.owners} owner(s); "
            f"{len(opened.unroutable)} cannot be routed."
        )
    else:
        click.echo(
            f"{flow.name} {period.label} is already open (cycle {opened.cycle_id}); "
            "nothing changed."
        )
