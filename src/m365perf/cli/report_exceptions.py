"""``m365perf report exceptions``: what SLT and scrutiny should look at in one cycle."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import click

from m365perf.cli._common import find_cycle_or_exit, load_flows_or_exit, open_store


def _finite(value: float | None) -> float | None:
    """``nan`` and ``inf`` pass click's FloatRange (no comparison holds for nan)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of percent; give e.g. 25")
    return value


@click.command()
@click.option(
    "--cycle",
    "cycle_ref",
    required=True,
    help="Cycle id, or FLOW:PERIOD such as monthly-corporate-kpis:2026-10.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "csv", "json"]),
    default="html",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the terminal.",
)
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("flows"),
    show_default=True,
    help="The folder of flow files the service runs.",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Judge overdue actions on this day (default: today, UK time).",
)
@click.option(
    "--big-change",
    "big_change",
    type=click.FloatRange(min=0, min_open=True),
    callback=lambda _ctx, _param, value: _finite(value),
    help="A change on last period of this many percent or more is listed "
    "(default: the flow's rag.outlier_threshold_percent).",
)
def exceptions(
    cycle_ref: str,
    fmt: str,
    output: Path | None,
    flows_dir: Path,
    as_of: datetime | None,
    big_change: float | None,
) -> None:
    """Reds, ambers, special-cause concerns and improvements, big changes, missing
    returns and overdue improvement actions of one cycle, each with its commentary.

    The HTML prints on A4 with an SPC chart per indicator listed.
    """
    from m365perf.engine.context import EngineContext, local_day
    from m365perf.reports.gather import gather_exceptions
    from m365perf.reports.render import render_csv, render_html, render_json
    from m365perf.settings import load_settings

    flows = {flow.id: flow for flow in load_flows_or_exit(flows_dir)}
    store = open_store(load_settings(), reading=True)
    try:
        with store.transaction() as tx:
            cycle = find_cycle_or_exit(tx, cycle_ref)
            if cycle.flow_id not in flows:
                raise click.UsageError(
                    f"cycle {cycle.flow_id}:{cycle.period} belongs to flow '{cycle.flow_id}', "
                    f"which is not among the flows in {flows_dir}/ (use --flows)"
                )
            day = as_of.date() if as_of else local_day(datetime.now().astimezone())
            report = gather_exceptions(
                tx, EngineContext(flows), cycle, as_of=day, big_change_percent=big_change
            )
    finally:
        store.close()
    text = {"html": render_html, "csv": render_csv, "json": render_json}[fmt](report)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    try:
        output.write_text(text, encoding=encoding, newline="")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(
        f"exceptions report for {report.flow_id}:{report.period} written to {output}", err=True
    )


__all__ = ["exceptions"]
