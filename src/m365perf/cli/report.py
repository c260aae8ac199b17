"""``m365perf report``: how well the cycle runs (the process measures), and more reports.

A group: on its own it prints the process measures of every cycle in the database —
taken together, then per flow, per cycle and per service within a cycle — as a table,
or as JSON with ``--json``. Further reports are its subcommands, each in its own module
(``report exceptions``: :mod:`m365perf.cli.report_exceptions`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m365perf.cli._common import load_flows_or_exit, open_store

if TYPE_CHECKING:
    from m365perf.domain.measures import MeasureGroup, Measures


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the measures as one JSON document.")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The flow files, for flow names and each register's service column "
    "(default: ./flows when there is one).",
)
@click.option("--flow", "flow_id", help="Only this flow's cycles.")
@click.pass_context
def report(ctx: click.Context, as_json: bool, flows_dir: Path | None, flow_id: str | None) -> None:
    """Process measures: self-return, on-time, time to return and approve, rejections."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import UTC, datetime

    from m365perf.engine.measures import gather_measures
    from m365perf.settings import load_settings

    if flows_dir is not None and not flows_dir.is_dir():
        raise click.BadParameter(f"{flows_dir} is not a folder", param_hint="--flows")
    folder = flows_dir or Path("flows")
    flows = {f.id: f for f in load_flows_or_exit(folder)} if folder.is_dir() else {}
    now = datetime.now(UTC)
    store = open_store(load_settings(), reading=True)
    try:
        with store.transaction() as tx:
            cycles = tx.list_cycles(flow_id=flow_id)
            if flow_id is not None and not cycles:
                raise click.BadParameter(f"no cycle of a flow '{flow_id}'", param_hint="--flow")
            overall, groups = gather_measures(tx, flows, now=now, cycles=cycles)
    finally:
        store.close()
    names = {f.id: f.name for f in flows.values()}
    if as_json:
        click.echo(json.dumps(_document(now, overall, groups, names), indent=2))
    else:
        click.echo(_table(overall, groups, names))


def _document(
    now: Any, overall: Measures, groups: list[MeasureGroup], names: dict[str, str]
) -> dict[str, Any]:
    return {
        "generated_at": now.isoformat(),
        "overall": asdict(overall),
        "groups": [{**asdict(g), "flow_name": names.get(g.flow_id, g.flow_id)} for g in groups],
    }


_COLUMNS = (
    "Of",
    "Returned",
    "Self-return",
    "On time",
    "To return (median / 90%)",
    "To approve (median / 90%)",
    "Rejected",
)


def _table(overall: Measures, groups: list[MeasureGroup], names: dict[str, str]) -> str:
    rows = [_row("Every cycle", overall)]
    depth = {"flow": 0, "cycle": 1, "service": 2}
    nested = sorted(groups, key=lambda g: (g.flow_id, g.period or "", depth[g.scope]))
    for g in nested:
        flow = names.get(g.flow_id, g.flow_id)
        label = {
            "flow": flow,
            "cycle": f"  {flow} {g.period}",
            "service": f"    {g.service}",
        }[g.scope]
        rows.append(_row(label, g.measures))
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append(
        "Self-return: returned before any chase. On time: by the due date. Times in hours, "
        "from the request to the first figure and from the approved figure to its approval."
    )
    return "\n".join(lines)


def _row(label: str, m: Measures) -> tuple[str, ...]:
    return (
        label,
        f"{m.returned} of {m.returns}",
        _share(m.self_return_rate, m.self_returned, m.returned),
        _share(m.on_time_rate, m.on_time, m.due),
        _pair(m.median_hours_to_return, m.p90_hours_to_return),
        _pair(m.median_hours_to_approve, m.p90_hours_to_approve),
        _share(m.rejection_rate, m.rejections, m.decisions),
    )


def _share(rate: float | None, part: int, whole: int) -> str:
    return "-" if rate is None else f"{rate:.0%} ({part}/{whole})"


def _pair(median: float | None, p90: float | None) -> str:
    if median is None or p90 is None:
        return "-"
    return f"{median:.1f} / {p90:.1f}"


def _register() -> None:
    from m365perf.cli.report_exceptions import exceptions

    report.add_command(exceptions)


_register()
