"""The open-data export's rows, files and data dictionary, and the flow's exclusions."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from m365perf.domain.periods import Period
from m365perf.flows import FlowError, parse_flow
from m365perf.reports.opendata import COLUMNS, open_data_rows, render_csv, render_json

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"
KEY = ("IndicatorId", "Period")


def _row(key: str, period: str, value: float | None, **fields: Any) -> dict[str, Any]:
    start = Period.parse(period).start.isoformat()
    return {
        "IndicatorId": key,
        "Period": period,
        "Title": f"Indicator {key}",
        "Flow": "monthly-corporate-kpis",
        "PeriodStart": start,
        "Value": value,
        "Rag": "green",
        "ReturnedBy": "Ann Lee",
        "ApprovedBy": "Bob Ray",
        "ApprovedAt": "2026-10-31T23:30:00+00:00",
        **fields,
    }


RESULTS = [
    _row("CP002", "2026-10", 21.0),
    _row("CP001", "2026-10", 30.5, Commentary="Short of crews — agency staff from £12.50/h"),
    _row("CP001", "2026-09", 50.0),
    _row("CP009", "2026-10", None, NoDataReason="System outage"),
    _row("CP001", "2026-03", 47.0),
]


def test_rows_are_one_per_indicator_and_period_in_range_ordered_without_the_excluded() -> None:
    rows = open_data_rows(
        RESULTS,
        key=KEY,
        first=Period.parse("2026-04"),
        last=Period.parse("2026-10"),
        exclude=["CP009"],
    )
    assert [(r["indicator_id"], r["period"]) for r in rows] == [
        ("CP001", "2026-09"),
        ("CP001", "2026-10"),
        ("CP002", "2026-10"),
    ]
    assert all(list(r) == [c.name for c in COLUMNS] for r in rows)
    # 23:30 UTC on 31 October is still 31 October in London (GMT from 25 October)
    assert rows[0]["approved_on"] == "2026-10-31"
    assert all("Ann Lee" not in json.dumps(r) and "Bob Ray" not in json.dumps(r) for r in rows)


def test_the_approval_day_is_the_london_day() -> None:
    [row] = open_data_rows(
        [_row("CP001", "2026-06", 1.0, ApprovedAt="2026-07-01T23:30:00+00:00")],
        key=KEY,
        first=Period.parse("2026-06"),
        last=Period.parse("2026-06"),
    )
    assert row["approved_on"] == "2026-07-02"  # 00:30 British Summer Time


def test_a_flow_with_other_key_columns_is_read_by_its_own_key() -> None:
    renamed = [
        {
            **{k: v for k, v in r.items() if k not in KEY},
            "Ref": r["IndicatorId"],
            "Month": r["Period"],
        }
        for r in RESULTS
    ]
    rows = open_data_rows(
        renamed, key=("Ref", "Month"), first=Period.parse("2026-10"), last=Period.parse("2026-10")
    )
    assert [(r["indicator_id"], r["period"]) for r in rows] == [
        ("CP001", "2026-10"),
        ("CP002", "2026-10"),
        ("CP009", "2026-10"),
    ]


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends \\(2026-04\\) before it starts \\(2026-10\\)"):
        open_data_rows(
            RESULTS, key=KEY, first=Period.parse("2026-10"), last=Period.parse("2026-04")
        )


def test_the_csv_opens_in_a_spreadsheet_with_its_pound_signs_and_dashes(tmp_path: Path) -> None:
    rows = open_data_rows(
        RESULTS, key=KEY, first=Period.parse("2026-10"), last=Period.parse("2026-10")
    )
    path = tmp_path / "export.csv"
    path.write_text(render_csv(rows), encoding="utf-8-sig", newline="")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 3 and list(read[0]) == [c.name for c in COLUMNS]
    assert read[0]["commentary"] == "Short of crews — agency staff from £12.50/h"
    assert [r["value"] for r in read] == ["30.5", "21", ""]
    assert read[2]["no_data_reason"] == "System outage"
    assert path.read_bytes().count(b"\r\n") == 4

    # and as a spreadsheet holds it: a workbook built from the CSV keeps every cell
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for record in csv.reader(handle):
            sheet.append(record)
    book.save(tmp_path / "export.xlsx")
    loaded = openpyxl.load_workbook(tmp_path / "export.xlsx").active
    assert loaded is not None and loaded.max_row == 4
    assert loaded.cell(2, [c.name for c in COLUMNS].index("commentary") + 1).value == (
        "Short of crews — agency staff from £12.50/h"
    )


def test_the_json_names_its_columns_and_period_range() -> None:
    first, last = Period.parse("2026-09"), Period.parse("2026-10")
    rows = open_data_rows(RESULTS, key=KEY, first=first, last=last)
    document = json.loads(render_json(rows, flow="monthly-corporate-kpis", first=first, last=last))
    assert (document["from"], document["to"]) == ("2026-09", "2026-10")
    assert [c["name"] for c in document["columns"]] == [c.name for c in COLUMNS]
    assert len(document["rows"]) == 4 and document["rows"][0]["value"] == 50.0


def test_the_data_dictionary_documents_every_column() -> None:
    text = (ROOT / "docs" / "open-data.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"| `{column.name}` | {column.source} | {column.description} |" in text


def test_a_flow_lists_indicators_not_for_publication() -> None:
    text = MONTHLY.read_text(encoding="utf-8") + "\nexport:\n  exclude: [COV-024, ' COV-031 ']\n"
    flow = parse_flow(text, "monthly.yaml")
    assert flow.export.exclude == ["COV-024", "COV-031"]
    assert parse_flow(MONTHLY.read_text(encoding="utf-8")).export.exclude == []


@pytest.mark.parametrize(
    ("block", "line", "words"),
    [
        ("export:\n  exclude: [COV-024, COV-024]\n", 2, "COV-024 is listed twice"),
        ("export:\n  exclude: [COV-024, '  ']\n", 2, "an indicator id is blank"),
        ("export:\n  exlude: [COV-024]\n", 2, "exlude"),
        ("export:\n  exclude: COV-024\n", 2, "list"),
    ],
)
def test_a_bad_exclusion_is_reported_at_its_line(block: str, line: int, words: str) -> None:
    text = MONTHLY.read_text(encoding="utf-8")
    blank = text.count("\n") + 1  # the blank line put between the file and the block
    with pytest.raises(FlowError) as caught:
        parse_flow(text + "\n" + block, "monthly.yaml")
    [problem] = caught.value.problems
    assert problem.path == "monthly.yaml" and problem.line == blank + line
    assert words in problem.message
