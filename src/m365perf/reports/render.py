"""The exceptions report as HTML (prints on A4), CSV (one row per line) or JSON.

Rendering only: what is in the report was decided by :mod:`m365perf.reports.exceptions`.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from m365perf.cards.formatting import direction_word, format_date, format_value, rag_word
from m365perf.reports.chart import spc_svg
from m365perf.reports.exceptions import ExceptionsReport, IndicatorLine, Section

__all__ = ["CSV_COLUMNS", "render_csv", "render_html", "render_json"]

CSV_COLUMNS = (
    "section",
    "indicator_id",
    "indicator",
    "service",
    "owner",
    "status",
    "value",
    "unit",
    "target",
    "rag",
    "direction",
    "change_percent",
    "variation",
    "assurance",
    "commentary",
    "action",
    "action_by",
    "action_due",
    "action_status",
    "days_overdue",
)

_ENV = Environment(
    loader=PackageLoader("m365perf.reports", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_json(report: ExceptionsReport) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)


def render_csv(report: ExceptionsReport) -> str:
    """One row per indicator per section, then one per overdue action (UTF-8, no BOM)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    document = report.as_dict()
    for section in Section:
        for row in document["sections"][section.value]:
            if section is Section.OVERDUE_ACTION:
                writer.writerow(
                    {
                        "section": section.value,
                        "indicator_id": row["indicator_id"],
                        "indicator": row["indicator"],
                        "action": row["what"],
                        "action_by": row["who"],
                        "action_due": row["due_on"],
                        "action_status": row["status"],
                        "days_overdue": row["days_overdue"],
                        "commentary": row["note"],
                    }
                )
                continue
            writer.writerow(
                {"section": section.value}
                | {k: row[k] for k in CSV_COLUMNS if k in row and k != "section"}
            )
    return buffer.getvalue()


def render_html(report: ExceptionsReport) -> str:
    """A self-contained page (no script, no external files) laid out for A4 paper."""
    charts = {
        line.key: spc_svg(line.chart, title=f"{line.name}: SPC chart", element_id=f"c-{i}")
        for i, line in enumerate(report.charted)
        if line.chart is not None
    }
    template = _ENV.get_template("exceptions.html")
    return template.render(
        r=report,
        Section=Section,
        sections=[s for s in Section if s is not Section.OVERDUE_ACTION],
        charts=charts,
        shown=_shown,
        target=_target,
        change=_change,
        rag_word=rag_word,
        direction=_direction,
        format_date=format_date,
        variation=_variation,
    )


def _shown(line: IndicatorLine) -> str:
    if line.value is None:
        return f"no data ({line.no_data_reason})" if line.no_data_reason else "not returned"
    return format_value(line.value, line.unit)


def _target(line: IndicatorLine) -> str:
    if line.target is None:
        return "no target"
    return (line.comparator + " " if line.comparator else "") + format_value(line.target, line.unit)


def _change(line: IndicatorLine) -> str:
    return "" if line.change_percent is None else f"{line.change_percent:.0f}%"


def _direction(line: IndicatorLine) -> str:
    if not line.direction:
        return ""
    try:
        return direction_word(line.direction)
    except (KeyError, ValueError):
        return line.direction


def _variation(line: IndicatorLine) -> dict[str, Any] | None:
    label = line.variation
    if label is None:
        return None
    return {"text": label.value, "colour": label.colour}
