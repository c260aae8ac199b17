"""The open-data export: approved values per indicator and period, as councils publish.

Rows come from the results rows the service wrote to SharePoint (the ``write_back``
messages the dispatcher sent; see :func:`m365perf.reports.gather.written_results`), so
the export holds exactly what the results list holds, row for row, not a second
calculation that could drift from it. This module only picks and renames columns:
:data:`COLUMNS` is the data dictionary (``docs/open-data.md`` is checked against it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from m365perf.domain.periods import Period

__all__ = ["COLUMNS", "ExportColumn", "open_data_rows", "render_csv", "render_json"]

_LONDON = ZoneInfo("Europe/London")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class ExportColumn:
    """One published column: its name, the results-list column it comes from, its meaning."""

    name: str
    source: str
    description: str
    read: Callable[[Row, tuple[str, str]], Any] | None = None

    def value(self, row: Row, key: tuple[str, str]) -> Any:
        if self.read is not None:
            return self.read(row, key)
        return row.get(self.source)


def _approved_on(row: Row, key: tuple[str, str]) -> str | None:
    stamp = row.get("ApprovedAt")
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp)).astimezone(_LONDON).date().isoformat()


COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("flow", "Flow", "The reporting flow (e.g. monthly-corporate-kpis)."),
    ExportColumn(
        "indicator_id",
        "the flow's indicator key column (IndicatorId)",
        "The council's indicator reference, as in the register.",
        lambda row, key: row.get(key[0]),
    ),
    ExportColumn("indicator", "Title", "The indicator's name."),
    ExportColumn(
        "period",
        "the flow's period key column (Period)",
        'The period the value is for: "2026-10", "2026/27 Q2" or "2026/27".',
        lambda row, key: row.get(key[1]),
    ),
    ExportColumn("period_start", "PeriodStart", "First day of the period (YYYY-MM-DD)."),
    ExportColumn("value", "Value", "The approved value; empty when no data was returned."),
    ExportColumn("value_text", "ValueText", "The value as the officer typed it."),
    ExportColumn("no_data_reason", "NoDataReason", "Why there is no value, when there is none."),
    ExportColumn("unit", "Unit", "count, percentage, currency, days or ratio."),
    ExportColumn(
        "target",
        "Target",
        "The target the value was judged against (a year-to-date indicator's profiled "
        "target for the period); empty when there is none.",
    ),
    ExportColumn(
        "comparator",
        "Comparator",
        "The group the council benchmarks against (e.g. Statistical Neighbours).",
    ),
    ExportColumn("rag", "Rag", "red, amber, green, or none (no target, or RAG suspended)."),
    ExportColumn(
        "direction",
        "DirectionPrevious",
        "On the previous period: improving, worsening, no_change or not_comparable.",
    ),
    ExportColumn(
        "direction_last_year", "DirectionLastYear", "On the same period last year (same words)."
    ),
    ExportColumn(
        "variation",
        "Variation",
        "NHS England Making Data Count variation of the value: common cause, special "
        "cause — improvement / concern / neither, with the rule that fired.",
    ),
    ExportColumn(
        "assurance",
        "Assurance",
        "Whether the process will meet the target: consistently passes, consistently "
        "fails, hit and miss; empty without a target or enough history.",
    ),
    ExportColumn("commentary", "Commentary", "The owner's commentary, as approved."),
    ExportColumn("approved_at", "ApprovedAt", "When the value was approved (ISO 8601, UTC)."),
    ExportColumn(
        "approved_on",
        "ApprovedAt, as a London date",
        "The day it was approved (YYYY-MM-DD, UK time).",
        _approved_on,
    ),
)
"""The published columns, in order: the data dictionary."""


def open_data_rows(
    results: Sequence[Row],
    *,
    key: tuple[str, str],
    first: Period,
    last: Period,
    exclude: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The published rows of ``results`` (results-list rows) for ``first`` to ``last``.

    ``key`` is the results list's (indicator, period) columns; indicators in
    ``exclude`` are left out. One row per indicator and period, ordered by period, then
    indicator. Raises ValueError when ``last`` comes before ``first``.
    """
    if last.start < first.start:
        raise ValueError(f"the export ends ({last.label}) before it starts ({first.label})")
    left_out = set(exclude)
    chosen: list[dict[str, Any]] = []
    for row in results:
        if row.get(key[0]) in left_out:
            continue
        start = _day(row.get("PeriodStart"))
        if start is None or not first.start <= start <= last.start:
            continue
        chosen.append({c.name: c.value(row, key) for c in COLUMNS})
    chosen.sort(key=lambda r: (str(r["period_start"]), str(r["indicator_id"])))
    return chosen


def render_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV with a header, CRLF line ends; write it as UTF-8 with a BOM (``utf-8-sig``),
    which spreadsheets read as UTF-8 (pound signs and dashes survive)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[c.name for c in COLUMNS], lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def render_json(
    rows: Sequence[Mapping[str, Any]], *, flow: str, first: Period, last: Period
) -> str:
    document = {
        "flow": flow,
        "from": first.label,
        "to": last.label,
        "columns": [{"name": c.name, "description": c.description} for c in COLUMNS],
        "rows": list(rows),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _day(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
