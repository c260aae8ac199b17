"""`m365perf history import` from the command line, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from m365perf.cli import main
from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.store import create_store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "src" / "m365perf" / "examples" / "history" / "coventry-pentana-export.csv"
BAD_ROWS = ROOT / "tests" / "engine" / "data" / "history-bad-rows.csv"
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"
BY = "nadia.clarke@contoso.gov.uk"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def runner(database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("M365PERF_DATABASE_URL", database)
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    return CliRunner()


def _import(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, ["history", "import", *args])


def _json(result: Result) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_import_dry_run_then_apply_then_again_changes_nothing(
    runner: CliRunner, database: str
) -> None:
    dry = _import(runner, str(SAMPLE), "--map", "pentana", "--json")
    assert dry.exit_code == 0, dry.output
    assert (_json(dry)["new"], _json(dry)["applied"]) == (1153, False)

    refused = _import(runner, str(SAMPLE), "--map", "pentana", "--apply")
    assert refused.exit_code == 2 and "--apply needs --by" in refused.output

    applied = _import(runner, str(SAMPLE), "--map", "pentana", "--apply", "--by", BY)
    assert applied.exit_code == 0, applied.output
    assert "written" in applied.output and "1153 new, 0 unchanged, 0 rejected" in applied.output

    again = _import(runner, str(SAMPLE), "--map", "pentana", "--apply", "--by", BY)
    assert again.exit_code == 0, again.output
    assert "0 new, 1153 unchanged, 0 rejected, 0 clashing" in again.output

    # The first annual cycle has the past of its indicators (COV-034 is annual in the
    # demo register) and one audit event says who imported what.
    opened = runner.invoke(
        main,
        [
            "cycle",
            "open",
            "annual-statutory-returns",
            "--period",
            "2025/26",
            "--register",
            str(REGISTER),
            "--directory",
            str(DIRECTORY),
            "--json",
        ],
    )
    assert opened.exit_code == 0, opened.output
    store = create_store(database)
    try:
        with store.transaction() as tx:
            past = tx.history("COV-034", Frequency.ANNUAL, before=Period.parse("2025/26").start)
            (event,) = tx.list_audit(subject_type="history")
    finally:
        store.close()
    assert len(past) >= 7 and past[-1].period == "2024/25"
    assert event.actor == BY and event.after is not None and event.after["new"] == 1153


def test_bad_rows_are_listed_with_their_lines_and_the_command_fails(runner: CliRunner) -> None:
    result = _import(runner, str(BAD_ROWS), "--map", "camms")
    assert result.exit_code == 1, result.output
    assert "4 new, 0 unchanged, 5 rejected" in result.output
    assert "line 4: (no id) Q3 2024/25: the indicator id is blank" in result.output
    assert "line 6: CP900 Q3 2024/25: 'twelve' is not a number" in result.output
    as_json = _json(_import(runner, str(BAD_ROWS), "--map", "camms", "--json"))
    assert [r["line"] for r in as_json["rejected"]] == [4, 5, 6, 7, 10]


def test_a_clash_is_reported_and_not_overwritten(runner: CliRunner, tmp_path: Path) -> None:
    assert _import(runner, str(SAMPLE), "--map", "pentana", "--apply", "--by", BY).exit_code == 0
    corrected = tmp_path / "corrected.csv"
    corrected.write_text("Code,Period,Actual\nCOV-011,2024-25,999\n", encoding="utf-8")
    result = _import(
        runner, str(corrected), "--map", "id=Code,period=Period,value=Actual", "--apply", "--by", BY
    )
    assert result.exit_code == 1
    assert "line 2: COV-011 2024/25: the file says 999, the store holds 345" in result.output
    assert "0 new, 0 unchanged, 0 rejected, 1 clashing" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "id=Code,period=Period,value=Actual"], "no column 'Code' for the id"),
        (["--map", "id=PI Code,value=Value"], "the column map needs period (e.g. period=Period)"),
        (["--map", "id=Code"], "needs period, value (e.g. period=Period,value=Actual)"),
        (["--map", "colour=Red,id=a,period=b,value=c"], "unknown field 'colour'"),
        ([], "say which column is which"),
    ],
)
def test_a_column_map_that_does_not_fit_is_a_clear_error(
    runner: CliRunner, args: list[str], message: str
) -> None:
    result = _import(runner, str(SAMPLE), *args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


def test_a_broken_workbook_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "pentana.xlsx"
    broken.write_bytes(b"PK\x03\x04 not a workbook at all")
    result = _import(runner, str(broken), "--map", "pentana")
    assert result.exit_code == 1 and "not a readable Excel workbook" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_from_sharepoint_without_a_tenant_is_a_usage_error(runner: CliRunner) -> None:
    result = _import(runner, "--from-sharepoint", "--site", "contoso.sharepoint.com:/sites/p")
    assert result.exit_code == 2 and "no tenant is configured" in result.output


def test_excels_unicode_text_export_reads_like_the_utf8_csv(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Excel's "Unicode text" (UTF-16 with a BOM, tab-separated), as the register reader takes.
    unicode_text = tmp_path / "pentana.txt"
    rows = SAMPLE.read_text(encoding="utf-8").splitlines()
    tabbed = "\r\n".join("\t".join(cells) for cells in csv.reader(rows))
    unicode_text.write_bytes(tabbed.encode("utf-16"))
    result = _import(runner, str(unicode_text), "--map", "pentana", "--json")
    assert result.exit_code == 0, result.output
    assert _json(result)["new"] == 1153


def test_a_pentana_export_without_its_note_column_imports(
    runner: CliRunner, tmp_path: Path
) -> None:
    plain = tmp_path / "pentana.csv"
    plain.write_text("PI Code,Period,Value\nCOV-011,2023/24,363\n", encoding="utf-8")
    result = _import(runner, str(plain), "--map", "pentana", "--json")
    assert result.exit_code == 0, result.output
    assert _json(result)["new"] == 1
    by_hand = _import(runner, str(plain), "--map", "id=PI Code,period=Period,value=Value,note=Memo")
    assert by_hand.exit_code == 1 and "no column 'Memo' for the note" in by_hand.output


def test_a_workbook_of_several_sheets_reads_the_one_named_and_says_which(
    runner: CliRunner, tmp_path: Path
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    cover = book.active
    cover.title = "Cover"
    cover.append(["Exported from Pentana"])
    data = book.create_sheet("PI data")
    data.append(["PI Code", "Period", "Value"])
    data.append(["COV-011", "2022/23", 350])
    data.append(["COV-011", "2023/24", "=B2"])  # a formula Excel never calculated
    path = tmp_path / "pentana.xlsx"
    book.save(path)  # openpyxl saves formulas without their values, as a script would

    first = _import(runner, str(path), "--map", "pentana")
    assert first.exit_code == 1 and "no column 'PI Code'" in first.output  # the first sheet

    missing = _import(runner, str(path), "--map", "pentana", "--sheet", "Data")
    assert missing.exit_code == 1 and "its sheets are 'Cover', 'PI data'" in missing.output

    result = _import(runner, str(path), "--map", "pentana", "--sheet", "PI data")
    assert "History import from import:pentana.xlsx, sheet 'PI data'" in result.output
    assert "1 new, 0 unchanged, 1 rejected" in result.output
    assert (
        "line 3: COV-011 2023/24: formula with no saved value: open and save the workbook "
        "in Excel" in result.output
    )
