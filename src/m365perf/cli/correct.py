"""``m365perf correct``: reopen an approved figure for its owner to correct."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from m365perf.cli._common import load_flow_or_exit, open_store


@click.command()
@click.argument("cycle_ref", metavar="FLOW:PERIOD")
@click.argument("indicator")
@click.option(
    "--reason", required=True, help="Why the figure needs correcting (the owner sees it)."
)
@click.option(
    "--by",
    "by",
    required=True,
    help="Who asks: a person in the directory and in the flow's performance_team.",
)
def correct(cycle_ref: str, indicator: str, reason: str, by: str) -> None:
    """Send an approved figure back to its owner; the correction is approved again.

    The corrected figure overwrites the results-list row with a higher version.
    """
    from m365perf.engine import ActionError, Engine
    from m365perf.engine.people import performance_officer
    from m365perf.service import engine_config
    from m365perf.settings import load_settings

    flow_ref, _, period = cycle_ref.partition(":")
    if not period:
        raise click.BadParameter("write FLOW:PERIOD, e.g. monthly-corporate-kpis:2026-10")
    flow = load_flow_or_exit(flow_ref)
    settings = load_settings()
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            person = performance_officer(tx, flow, by)
        engine = Engine(store, [flow], engine_config(settings))
        engine.request_correction(
            flow.id,
            period,
            indicator,
            by=person.id,
            reason=reason,
            now=datetime.now(UTC),
        )
    except ActionError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    click.echo(
        f"{indicator} {period} is back with its owner for correction (asked by {person.name})."
    )
