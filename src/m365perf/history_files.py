"""Read past values from an export (CSV or Excel) or a SharePoint history list into rows.

Pentana, CAMMS and home-made spreadsheets all name their columns differently, so a
:class:`ColumnMap` says which column holds the indicator id, the period, the value and,
optionally, a note and a source. A file that cannot be read at all (not a CSV, a broken
workbook, a missing column) is a :class:`HistoryFileError` naming the file; a row that
cannot be read is left to the import, which reports it with its line.
"""

from __future__ import annotations

import difflib
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365perf.engine.history import HistoryRow
from m365perf.errors import M365PerfError

if TYPE_CHECKING:
    from m365perf.csvfiles import BadLine
    from m365perf.m365.graph import GraphClient

__all__ = [
    "PRESETS",
    "ColumnMap",
    "HistoryFileError",
    "read_export",
    "read_sharepoint",
    "workbook_sheets",
]


class HistoryFileError(M365PerfError, ValueError):
    """A history export that cannot be read as rows (the message names the file and why)."""


_FIELDS = ("id", "period", "value", "note", "source")
_REQUIRED = ("id", "period", "value")
_EXAMPLES = {"id": "id=Code", "period": "period=Period", "value": "value=Actual"}
UNSAVED_FORMULA = "formula with no saved value: open and save the workbook in Excel"


@dataclass(frozen=True)
class ColumnMap:
    """Which export column holds each field; ``note`` and ``source`` are optional.

    ``optional`` lists the fields whose column may be absent from a file (a preset's
    note: not every export carries one); a column mapped by hand must be there.
    """

    id: str
    period: str
    value: str
    note: str | None = None
    source: str | None = None
    optional: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> ColumnMap:
        """A preset name (``pentana``, ``camms``, ``sharepoint``) or ``id=Code,period=…``."""
        text = text.strip()
        if text.lower() in PRESETS:
            return PRESETS[text.lower()]
        given: dict[str, str] = {}
        for part in text.split(","):
            name, equals, column = part.partition("=")
            name = name.strip().lower()
            if not equals or not column.strip():
                raise ValueError(
                    f"cannot read {part.strip()!r} in the column map: write field=Column, "
                    f"e.g. id=Code,period=Period,value=Actual (or a preset: {', '.join(PRESETS)})"
                )
            if name not in _FIELDS:
                raise ValueError(
                    f"unknown field {name!r} in the column map: use {', '.join(_FIELDS)}"
                )
            given[name] = column.strip()
        missing = [f for f in _REQUIRED if f not in given]
        if missing:
            example = ",".join(_EXAMPLES[f] for f in missing)
            raise ValueError(f"the column map needs {', '.join(missing)} (e.g. {example})")
        return cls(
            id=given["id"],
            period=given["period"],
            value=given["value"],
            note=given.get("note"),
            source=given.get("source"),
        )

    def columns(self) -> dict[str, str]:
        """Field → column, for the fields mapped."""
        return {f: c for f in _FIELDS if (c := getattr(self, f)) is not None}


PRESETS: dict[str, ColumnMap] = {
    # Pentana Performance "PI data" export: one row per indicator and period.
    "pentana": ColumnMap(
        id="PI Code",
        period="Period",
        value="Value",
        note="Latest Note",
        optional=frozenset({"note"}),
    ),
    # CAMMS (cammsstrategy) measure results export.
    "camms": ColumnMap(
        id="Measure Code",
        period="Reporting Period",
        value="Actual",
        note="Comments",
        optional=frozenset({"note"}),
    ),
    # The SharePoint "KPI History" list the sandbox seeds (and a council may keep).
    "sharepoint": ColumnMap(
        id="IndicatorId", period="Period", value="Value", note="Note", optional=frozenset({"note"})
    ),
}
"""Column maps for the exports councils most often bring."""


def read_export(path: Path, columns: ColumnMap, *, sheet: str | None = None) -> list[HistoryRow]:
    """Rows of a ``.csv`` or ``.xlsx`` export, each with the line it came from.

    ``sheet`` names the worksheet of a workbook; the first is read without it.
    """
    workbook = path.suffix.lower() in (".xlsx", ".xlsm")
    if workbook:
        header, rows = _xlsx(path, sheet)
        bad: list[BadLine] = []
    elif path.suffix.lower() == ".xls":
        raise HistoryFileError(f"{path}: an old Excel workbook (.xls); save it as .xlsx or CSV")
    else:
        header, rows, bad = _csv(path)
    where = _where(path, header, columns)
    out = [
        HistoryRow(line=b.line, indicator="", period=None, value=None, problem=b.reason)
        for b in ([] if workbook else bad)
    ]
    for line, cells in rows:
        if not any(c not in (None, "") for c in cells):
            continue  # a blank line between blocks is not a row
        get = _getter(cells, where)
        out.append(
            HistoryRow(
                line=line,
                indicator=_str(get("id")),
                period=get("period"),
                value=get("value"),
                note=_str(get("note")) or None,
                source=_str(get("source")) or None,
            )
        )
    if workbook:
        empty = {r.line for r in out if r.value is None}
        unsaved = _unsaved_formulas(path, sheet, where["value"], empty) if empty else set()
        out = [replace(r, problem=UNSAVED_FORMULA) if r.line in unsaved else r for r in out]
    return sorted(out, key=lambda row: row.line)


SERIES_COLUMN = "Series"
"""The history list's column saying whose values a row holds (the council, England…)."""


def read_sharepoint(
    graph: GraphClient,
    site: str,
    list_title: str,
    columns: ColumnMap,
    *,
    series: str | None = None,
    filter: str | None = None,
) -> list[HistoryRow]:
    """Rows of a SharePoint history list (``site`` as ``host:/sites/path``); line = item id.

    A history list keeps comparators (England, a statistical neighbour) beside the
    council's own values, told apart by its ``Series`` column. Only the council's own are
    history, so ``series`` names it; without it a list holding one series is read whole
    and a list holding several is refused, naming them, rather than mixing England's
    values into the council's trends.
    """
    host, _, path = site.partition(":")
    site_id = graph.get_site_id(host, path)
    list_id = graph.get_list_id(site_id, list_title)
    if series is not None:
        quoted = series.replace("'", "''")
        only = f"fields/{SERIES_COLUMN} eq '{quoted}'"
        filter = f"({filter}) and {only}" if filter else only
    items = list(graph.list_items(site_id, list_id, filter=filter))
    if series is None:
        held = Counter(
            _str(i.fields.get(SERIES_COLUMN)) for i in items if SERIES_COLUMN in i.fields
        )
        if len(held) > 1:
            shown = ", ".join(f"{name or '(blank)'} ({n} rows)" for name, n in sorted(held.items()))
            raise HistoryFileError(
                f"the list {list_title!r} holds several series: {shown}; say which is the "
                f"council's own with --series (e.g. --series {held.most_common(1)[0][0]})"
            )
    fields = columns.columns()
    out = []
    for item in items:
        values = item.fields
        out.append(
            HistoryRow(
                line=int(item.id) if str(item.id).isdigit() else 0,
                indicator=_str(values.get(fields["id"])),
                period=values.get(fields["period"]),
                value=values.get(fields["value"]),
                note=_str(values.get(fields.get("note", ""))) or None,
                source=_str(values.get(fields.get("source", ""))) or None,
            )
        )
    return out


def _where(path: Path, header: Sequence[str], columns: ColumnMap) -> dict[str, int]:
    normal = {h.strip().lower(): i for i, h in enumerate(header) if h and h.strip()}
    where: dict[str, int] = {}
    for field, column in columns.columns().items():
        index = normal.get(column.strip().lower())
        if index is None and field in columns.optional:
            continue  # the export simply carries no such column
        if index is None:
            close = difflib.get_close_matches(column, [h for h in header if h], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            found = ", ".join(f"'{h}'" for h in header[:20] if h)
            raise HistoryFileError(
                f"{path}: no column '{column}' for the {field}{hint}; its columns are {found}"
            )
        where[field] = index
    return where


def _getter(cells: Sequence[Any], where: dict[str, int]) -> Any:
    def get(field: str) -> Any:
        index = where.get(field)
        if index is None or index >= len(cells):
            return None
        cell = cells[index]
        return cell.strip() if isinstance(cell, str) else cell

    return get


def _str(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    return str(cell).strip()


def _csv(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], list[BadLine]]:
    """The header, numbered rows and unreadable lines, by the one CSV reader."""
    from m365perf.csvfiles import UnreadableCsv, read_table

    try:
        with path.open("rb") as file:
            if file.read(4) == b"PK\x03\x04":
                raise HistoryFileError(f"{path}: this is an Excel workbook; name it .xlsx")
    except OSError:
        pass  # read_table says why it cannot be read
    try:
        table = read_table(path)
    except UnreadableCsv as exc:
        raise HistoryFileError(str(exc)) from None
    return table.header, iter((row.line, row.cells) for row in table.lines), table.bad


def _open_workbook(path: Path, *, data_only: bool) -> Any:
    import openpyxl  # type: ignore[import-untyped]

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    except FileNotFoundError:
        raise HistoryFileError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise HistoryFileError(
            f"{path}: not a readable Excel workbook ({exc}); open it in Excel and save it "
            "again as .xlsx, or export CSV"
        ) from None


def workbook_sheets(path: Path) -> list[str]:
    """The worksheets of an ``.xlsx``, in order (the first is read unless one is named)."""
    book = _open_workbook(path, data_only=True)
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def _sheet(path: Path, book: Any, sheet: str | None) -> Any:
    if sheet is None:
        return book.worksheets[0]
    if sheet not in book.sheetnames:
        names = ", ".join(f"'{n}'" for n in book.sheetnames)
        raise HistoryFileError(f"{path}: no sheet '{sheet}'; its sheets are {names}")
    return book[sheet]


def _xlsx(path: Path, sheet: str | None) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """One sheet of a workbook (the first by default), read-only so large exports stay small."""
    book = _open_workbook(path, data_only=True)
    try:
        found = _sheet(path, book, sheet)
        rows = found.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or not any(h not in (None, "") for h in header):
            raise HistoryFileError(
                f"{path}: the sheet '{found.title}' is empty; it needs a header row of column names"
            )
        body = [(number, list(row)) for number, row in enumerate(rows, start=2)]
    except HistoryFileError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on a damaged sheet
        raise HistoryFileError(f"{path}: the workbook's sheet cannot be read ({exc})") from None
    finally:
        book.close()
    return [_str(h) for h in header], iter(body)


def _unsaved_formulas(path: Path, sheet: str | None, column: int, lines: set[int]) -> set[int]:
    """Which of these lines hold a formula in ``column`` that Excel never calculated.

    Read with cached values, such a cell is empty, like a value never recorded; only the
    formulas themselves tell them apart, so they are read again for these lines alone.
    """
    book = _open_workbook(path, data_only=False)
    try:
        found = _sheet(path, book, sheet)
        formulas = set()
        for number, row in enumerate(found.iter_rows(values_only=True), start=1):
            if number in lines and column < len(row):
                cell = row[column]
                if isinstance(cell, str) and cell.startswith("="):
                    formulas.add(number)
        return formulas
    finally:
        book.close()
