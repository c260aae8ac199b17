"""``m365perf history import``: bring past approved values in, per indicator, audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from m365perf.cli._common import open_store

if TYPE_CHECKING:
    from m365perf.engine.history import HistoryRow
    from m365perf.history_files import ColumnMap
    from m365perf.settings import Settings

_MAP_HELP = (
    "Which column is which: a preset (pentana, camms, sharepoint) or "
    "id=Code,period=Period,value=Actual[,note=Comment][,source=System]."
)


@click.group()
def history() -> None:
    """Past values of the indicators, for trends and SPC limits from the first cycle."""


@history.command("import")
@click.argument(
    "export", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--map", "column_map", help=_MAP_HELP)
@click.option("--sheet", help="The worksheet of an .xlsx to read (default: the first).")
@click.option(
    "--from-sharepoint",
    "from_sharepoint",
    is_flag=True,
    help="Read the SharePoint history list (--site, --list) instead of a file.",
)
@click.option("--site", help="The list's site as host:/sites/path (with --from-sharepoint).")
@click.option(
    "--list", "list_title", default="KPI History", show_default=True, help="The history list."
)
@click.option(
    "--series",
    help="The list's Series value for the council's own figures (e.g. coventry); the "
    "others are comparators. Needed when the list holds more than one series.",
)
@click.option("--filter", "odata_filter", help="An OData filter on indexed columns of the list.")
@click.option("--apply", is_flag=True, help="Write the new values (the default is a dry run).")
@click.option("--by", "by", help="Who imports (e-mail), for the audit trail; needed to apply.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def import_(
    export: Path | None,
    column_map: str | None,
    sheet: str | None,
    from_sharepoint: bool,
    site: str | None,
    list_title: str,
    series: str | None,
    odata_filter: str | None,
    apply: bool,
    by: str | None,
    as_json: bool,
) -> None:
    """Load past values from FILE.csv or FILE.xlsx (Pentana, CAMMS, a spreadsheet).

    A dry run by default: the report says which rows would be written, which are
    rejected (with their line and why) and which clash with a value already held. A
    value already held is never overwritten, so running it again changes nothing.
    Exit 1 when any row is rejected or clashes.
    """
    from m365perf.engine.history import import_history
    from m365perf.history_files import ColumnMap, HistoryFileError, read_export, workbook_sheets
    from m365perf.progress import reporting
    from m365perf.settings import load_settings

    if apply and not by:
        raise click.UsageError("--apply needs --by (who imports, for the audit trail)")
    if (export is None) == (not from_sharepoint):
        raise click.UsageError("give an export FILE or --from-sharepoint, not both or neither")
    if not column_map and not from_sharepoint:
        raise click.BadParameter(
            "say which column is which: a preset (pentana, camms, sharepoint) or "
            "id=Code,period=Period,value=Actual",
            param_hint="--map",
        )
    try:
        columns = ColumnMap.parse(column_map or "sharepoint")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--map") from None
    settings = load_settings()
    progress = reporting(quiet=as_json)
    progress.say(
        f"Reading {export}" if export is not None else f"Reading SharePoint '{list_title}'"
    )
    if export is not None:
        source = f"import:{export.name}"
        workbook = export.suffix.lower() in (".xlsx", ".xlsm")
        if sheet and not workbook:
            raise click.UsageError("--sheet is for an Excel workbook (.xlsx)")
        try:
            if workbook:
                sheets = workbook_sheets(export)
                sheet = sheet or (sheets[0] if sheets else None)
                if len(sheets) > 1:  # say which was read, with every value written
                    source += f", sheet '{sheet}'"
            rows = read_export(export, columns, sheet=sheet)
        except HistoryFileError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        rows, source = _sharepoint_rows(settings, site, list_title, columns, series, odata_filter)
    progress.say(
        f"{len(rows)} rows read; checking them against the values held"
        + ("" if not apply else " and writing the new ones")
    )
    store = open_store(settings)
    try:
        report = import_history(
            store,
            rows,
            source=source,
            by=by or "",
            now=datetime.now(UTC),
            apply=apply,
            place="line" if export is not None else "item",
        )
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    if report.rejected or report.clashes:
        raise SystemExit(1)


def _sharepoint_rows(
    settings: Settings,
    site: str | None,
    list_title: str,
    columns: ColumnMap,
    series: str | None,
    odata_filter: str | None,
) -> tuple[list[HistoryRow], str]:
    from m365perf.history_files import HistoryFileError, read_sharepoint
    from m365perf.m365 import clients_from_settings
    from m365perf.m365.errors import M365Error

    if not site:
        raise click.UsageError("--from-sharepoint needs --site host:/sites/path")
    if not settings.has_tenant:
        raise click.UsageError("no tenant is configured: set the M365PERF_ tenant settings")
    graph = clients_from_settings(settings).graph
    try:
        rows = read_sharepoint(graph, site, list_title, columns, series=series, filter=odata_filter)
    except HistoryFileError as exc:
        raise click.ClickException(str(exc)) from None
    except M365Error as exc:
        raise click.ClickException(f"cannot read the list {list_title!r}: {exc}") from None
    return rows, f"sharepoint:{list_title}"
