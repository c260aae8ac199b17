"""Register rows that would break a cycle later are problem rows now; the rest go on.

And a register file that cannot be read is an error naming the file and what is wrong,
never zero rows (which used to open an empty cycle) and never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from m365perf.cards import IndicatorRequest
from m365perf.cli import main
from m365perf.csvfiles import UnreadableCsv
from m365perf.flows import load_flow
from m365perf.plan.register import (
    MAX_ID_LENGTH,
    read_csv,
    read_indicators,
    read_register_csv,
)

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"
FLOW = load_flow(MONTHLY)

COLUMNS = [
    "IndicatorId",
    "Title",
    "Unit",
    "Frequency",
    "Owner",
    "Supervisor",
    "HeadOfService",
    "Active",
]
HEADER = ",".join(COLUMNS)


def row(ident: str, **changes: str) -> dict[str, str]:
    fields = {
        "IndicatorId": ident,
        "Title": f"Indicator {ident}",
        "Unit": "number",
        "Frequency": "Monthly",
        "Owner": "ann.lee@contoso.gov.uk",
        "Supervisor": "bob.ray@contoso.gov.uk",
        "HeadOfService": "cat.doe@contoso.gov.uk",
        "Active": "Yes",
    }
    return fields | changes


def problems_of(rows: list[dict[str, str]]) -> dict[str, str]:
    _indicators, problems = read_indicators(FLOW, rows)
    return {p.indicator_id: p.reason for p in problems}


@pytest.mark.parametrize(
    ("ident", "shown_as", "why"),
    [
        ("CP 001", "CP 001", "contains a space"),
        ("CP\u00a0001", "CP\u00a0001", "contains a space"),  # no-break space from Word
        ("CP\t001", "CP\\u0009001", "control character (U+0009)"),
        ("CP\u200b001", "CP\\u200B001", "invisible or control character (U+200B)"),
        ("CP\x00001", "CP\\u0000001", "(U+0000)"),
        ("C" * (MAX_ID_LENGTH + 1), "C" * (MAX_ID_LENGTH + 1), "201 characters long"),
    ],
)
def test_an_id_no_card_or_list_can_carry_is_a_problem_row(
    ident: str, shown_as: str, why: str
) -> None:
    indicators, problems = read_indicators(FLOW, [row("CP002"), row(ident), row("CP003")])
    assert [i.id for i in indicators] == ["CP002", "CP003"]
    (problem,) = problems
    assert problem.indicator_id == shown_as  # printable: safe in a terminal and an e-mail
    assert why in problem.reason


def test_the_longest_id_that_fits_is_read() -> None:
    ident = "C" * MAX_ID_LENGTH
    indicators, problems = read_indicators(FLOW, [row(ident)])
    assert [i.id for i in indicators] == [ident] and problems == []


def test_every_row_sharing_an_id_is_a_problem_whatever_its_case() -> None:
    rows = [row("CP001"), row("cp001", Owner="dan.fox@contoso.gov.uk"), row("CP002")]
    indicators, problems = read_indicators(FLOW, rows)
    assert [i.id for i in indicators] == ["CP002"]  # neither owner is asked for CP001
    assert [p.indicator_id for p in problems] == ["CP001", "cp001"]
    assert all("on 2 rows" in p.reason for p in problems)


def test_a_nul_in_any_column_is_a_problem_row() -> None:
    reasons = problems_of([row("CP001", Title="Waste\x00"), row("CP002", Active="Yes")])
    assert reasons == {"CP001": "column 'Title' contains a NUL character; retype it"}


def test_a_name_longer_than_sharepoint_holds_is_a_problem_row() -> None:
    reasons = problems_of([row("CP001", Title="x" * 256)])
    assert "256 characters long" in reasons["CP001"]


def test_a_problem_name_is_printable() -> None:
    _, problems = read_indicators(FLOW, [row("CP 1", Title="Waste\x1b[31m")])
    assert problems[0].name == "Waste\\u001B[31m"


@given(st.text(min_size=1, max_size=MAX_ID_LENGTH + 20))
def test_every_id_the_register_accepts_fits_on_a_card(ident: str) -> None:
    """The register's checks are at least as strict as the cards' (``value__{id}``)."""
    indicators, _problems = read_indicators(FLOW, [row(ident)])
    for indicator in indicators:
        IndicatorRequest(
            indicator_id=indicator.id, name=indicator.name, unit=indicator.unit, version=1
        )


# --- files that cannot be read -------------------------------------------------------


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "register.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook (.xlsx), not a CSV"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old Excel workbook (.xls)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "NUL bytes"),
        (b"Id\x00,Title\nCP001,x\n", "NUL bytes"),
        (b"IndicatorId,Title\n\x81\x8d,x\n", ":2: byte 0x81 (column 1) is neither UTF-8 nor"),
        (b"\xff\xfeI\x00d\x00\n\x00\x00\xd8", ":2: reads as UTF-16 text until byte 9"),
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (b'"IndicatorId,Title\n', ":1: the header row is not well-formed CSV"),
    ],
)
def test_an_unreadable_file_says_why(tmp_path: Path, data: bytes, why: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(UnreadableCsv) as caught:
        read_register_csv(path)
    assert str(caught.value).startswith(f"{path}:")
    assert why in str(caught.value)


def test_a_row_the_parser_cannot_read_is_reported_and_the_rest_are_read(
    tmp_path: Path,
) -> None:
    rows = [row("CP001"), row("CP002"), row("CP003"), row("CP004")]
    lines = [HEADER] + [",".join(r.values()) for r in rows]
    lines[2] = lines[2].replace("CP002", '"CP002"x', 1)  # text after a closing quote
    lines[3] = lines[3].replace("CP003", "x" * 140_000, 1)  # over the parser's field limit
    path = _write(tmp_path, ("\n".join(lines) + "\n").encode())
    indicators, problems = read_indicators(FLOW, read_register_csv(path, FLOW))
    assert [i.id for i in indicators] == ["CP001", "CP004"]
    assert [(p.indicator_id, p.reason) for p in problems] == [
        (
            "line 3",
            f"{path}:3: not well-formed CSV (',' expected after '\"'); fix it in the register",
        ),
        (
            "line 4",
            f"{path}:4: a cell is longer than 131,072 characters (often a quote that is never "
            "closed); fix it in the register",
        ),
    ]


def test_an_unclosed_quote_is_one_bad_row_at_the_end(tmp_path: Path) -> None:
    path = _write(tmp_path, b'IndicatorId,Title\nCP000,Ok\n"CP001,Waste\nCP002,Fly-tips\n')
    records = read_csv(path)
    assert records[0] == {"IndicatorId": "CP000", "Title": "Ok"}
    assert [str(r) for r in records[1:]] == [
        f"{path}:3: not well-formed CSV (unexpected end of data)"
    ]


def test_a_utf16_register_without_a_bom_is_read(tmp_path: Path) -> None:
    """Excel's "Unicode text" without its BOM used to be read silently as 0 indicators."""
    text = "\r\n".join(["\t".join(COLUMNS), "\t".join(row("CP001", Title="Café £").values())])
    for encoding in ("utf-16-le", "utf-16-be"):
        path = _write(tmp_path, (text + "\r\n").encode(encoding))
        indicators, problems = read_indicators(FLOW, read_register_csv(path, FLOW))
        assert [(i.id, i.name) for i in indicators] == [("CP001", "Café £")], encoding
        assert problems == []


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(UnreadableCsv, match=r"register\.csv: cannot be read"):
        read_register_csv(tmp_path / "register.csv")


def test_a_register_without_the_columns_the_flow_reads_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, b"Indicator,Name,Owner\nCP001,Waste,ann.lee@contoso.gov.uk\n")
    with pytest.raises(UnreadableCsv) as caught:
        read_register_csv(path, FLOW)
    message = str(caught.value)
    assert (
        "has no column 'IndicatorId', 'Unit', 'Frequency', 'Active', 'Supervisor', "
        "'HeadOfService'" in message
    )
    assert "its columns are 'Indicator', 'Name', 'Owner'" in message


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    lines = [HEADER, ",".join(row("CP001").values())]  # no Polarity, Target, Kind, …
    path = _write(tmp_path, ("\n".join(lines) + "\n").encode())
    indicators, problems = read_indicators(FLOW, read_register_csv(path, FLOW))
    assert [i.id for i in indicators] == ["CP001"] and problems == []


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ","), ("utf-16", "\t"), ("cp1252", ",")],
)
def test_excel_exports_are_read(tmp_path: Path, encoding: str, delimiter: str) -> None:
    text = "\r\n".join(
        [delimiter.join(COLUMNS), delimiter.join(row("CP001", Title="Café £").values())]
    )
    path = _write(tmp_path, (text + "\r\n").encode(encoding))
    (only,) = read_register_csv(path, FLOW)
    assert only["IndicatorId"] == "CP001" and only["Title"] == "Café £"


def test_a_quoted_value_keeps_its_line_break(tmp_path: Path) -> None:
    path = _write(tmp_path, b'IndicatorId,Comparator\nCP001,"West\nMidlands"\n')
    assert read_csv(path) == [{"IndicatorId": "CP001", "Comparator": "West\nMidlands"}]


def test_a_directory_without_email_is_refused(tmp_path: Path) -> None:
    from m365perf.sync import CsvPeople

    path = tmp_path / "people.csv"
    path.write_text("id,name\n1,Ann Lee\n")
    with pytest.raises(UnreadableCsv, match="has no column 'email'"):
        CsvPeople(path)


def test_a_directory_row_that_is_no_person_leaves_them_unknown(tmp_path: Path) -> None:
    """A blank id or a person their own manager is unknown, not a crash of the sync."""
    from m365perf.sync import CsvPeople

    path = tmp_path / "people.csv"
    path.write_text(
        "id,name,email,line_manager\n"
        ",Ann Lee,ann.lee@contoso.gov.uk,\n"
        "b2,Bob Ray,bob.ray@contoso.gov.uk,bob.ray@contoso.gov.uk\n"
        "c3,Cat Doe,cat.doe@contoso.gov.uk,\n"
    )
    found, unknown = CsvPeople(path).people(
        ["ann.lee@contoso.gov.uk", "bob.ray@contoso.gov.uk", "cat.doe@contoso.gov.uk"]
    )
    assert [p.email for p in found] == ["cat.doe@contoso.gov.uk"]
    assert unknown == ["ann.lee@contoso.gov.uk", "bob.ray@contoso.gov.uk"]


# --- through `m365perf plan` ---------------------------------------------------------


def _plan(*args: str) -> Any:
    return CliRunner().invoke(main, ["plan", str(MONTHLY), "--period", "2026-10", *args])


#: `plan` refuses a register without a column the flow maps; these are left blank.
_BLANK = (
    "Polarity",
    "Target",
    "Tolerance",
    "TargetFrom",
    "Comparator",
    "Service",
    "Kind",
    "Profile",
)
PLAN_HEADER = ",".join([*COLUMNS, *_BLANK])


def _plan_row(ident: str) -> str:
    return ",".join([*row(ident).values(), *("" for _ in _BLANK)])


def test_plan_lists_a_bad_id_and_plans_the_rest(tmp_path: Path) -> None:
    lines = [PLAN_HEADER, *(_plan_row(i) for i in ("CP001", "CP 002"))]
    path = _write(tmp_path, ("\n".join(lines) + "\n").encode())
    result = _plan("--register", str(path), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [i["id"] for r in plan["requests"] for i in r["indicators"]] == ["CP001"]
    assert [u["indicator_id"] for u in plan["unroutable"]] == ["CP 002"]
    assert "contains a space" in plan["unroutable"][0]["reason"]


def test_plan_of_an_unreadable_register_is_one_clear_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b"PK\x03\x04\x14\x00")
    result = _plan("--register", str(path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: this is an Excel workbook (.xlsx), not a CSV; save it as 'CSV UTF-8'\n"
    )


def test_plan_warns_when_nobody_would_be_asked(tmp_path: Path) -> None:
    lines = [PLAN_HEADER, _plan_row("CP 001")]
    path = _write(tmp_path, ("\n".join(lines) + "\n").encode())
    result = _plan("--register", str(path))
    assert result.exit_code == 0, result.output
    assert "Nobody would be asked: `m365perf cycle open` refuses" in result.output
