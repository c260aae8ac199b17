"""``m365perf export``: the open-data export of a flow's approved values."""

from __future__ import annotations

from pathlib import Path

import click

from m365perf.cli._common import load_flow_or_exit, open_store, period_or_exit


@click.command()
@click.option("--flow", "flow_ref", required=True, help="Flow id or flow file.")
@click.option("--from", "first_label", required=True, help="First period, e.g. 2026-04.")
@click.option("--to", "last_label", required=True, help="Last period, e.g. 2027-03.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (CSV as UTF-8 with a byte-order mark, for spreadsheets).",
)
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("flows"),
    show_default=True,
    help="Where to find a flow given by id.",
)
@click.option("--json", "as_json", is_flag=True, help="No progress; a JSON summary on stderr.")
def export(
    flow_ref: str,
    first_label: str,
    last_label: str,
    fmt: str,
    output: Path | None,
    flows_dir: Path,
    as_json: bool,
) -> None:
    """Approved values per indicator and period, with target, RAG, direction, variation
    and approval date: the rows of the SharePoint results list, in the shape councils
    publish (data dictionary: docs/open-data.md).

    Indicators the flow lists under export.exclude are left out; an id there that the
    register does not hold stops the export (a typo would publish what it meant to hide).
    """
    import json

    from m365perf.flows.results import result_key
    from m365perf.progress import reporting
    from m365perf.reports.gather import written_results
    from m365perf.reports.opendata import open_data_rows, render_csv, render_json
    from m365perf.settings import load_settings

    flow = load_flow_or_exit(flow_ref, flows_dir)
    first = period_or_exit(flow, first_label, "--from")
    last = period_or_exit(flow, last_label, "--to")
    if last.start < first.start:
        raise click.BadParameter(f"{last.label} comes before {first.label}", param_hint="--to")
    progress = reporting(quiet=as_json)
    progress.say(f"Reading the approved results of {flow.name} written to SharePoint")
    store = open_store(load_settings(), reading=True)
    try:
        with store.transaction() as tx:
            results = written_results(tx, flow)
            known = {i.indicator_key for i in tx.list_indicators([flow.id])}
    finally:
        store.close()
    unknown = sorted(set(flow.export.exclude) - known) if known else []
    if unknown:
        raise click.ClickException(
            f"{flow.id}'s export.exclude names {', '.join(unknown)}, which the register does "
            "not hold: nothing exported, since a mistyped id would publish the indicator it "
            "meant to leave out"
        )
    progress.say(f"{len(results)} results held; keeping {first.label} to {last.label}")
    rows = open_data_rows(
        results,
        key=result_key(flow.writeback),
        first=first,
        last=last,
        exclude=flow.export.exclude,
    )
    if fmt == "csv":
        text = render_csv(rows)
    else:
        text = render_json(rows, flow=flow.id, first=first, last=last)
    if output is None:
        click.echo(text, nl=False)
    else:
        encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
        try:
            output.write_text(text, encoding=encoding, newline="")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    summary = {"flow": flow.id, "from": first.label, "to": last.label, "rows": len(rows)}
    if as_json:
        click.echo(json.dumps(summary), err=True)
    elif output is not None:
        click.echo(
            f"{len(rows)} row(s) of {flow.id}, {first.label} to {last.label}: {output}", err=True
        )
