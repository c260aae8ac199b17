"""``m365perf report exceptions`` and ``m365perf export`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_support import COMMENT_RED, reported_council

from m365perf.cli import main
from m365perf.store import create_store

ROOT = Path(__file__).resolve().parents[2]
FLOWS = str(ROOT / "flows")


def _run(database_url: str, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, list(args), env={"M365PERF_DATABASE_URL": database_url})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One reported cycle in a SQLite file for the module; the commands only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'm365perf.db'}"
    store = create_store(url, migrate=True)
    try:
        reported_council(store)
    finally:
        store.close()
    return url


def test_the_exceptions_report_in_each_format(database_url: str, tmp_path: Path) -> None:
    url = database_url
    cycle = "monthly-corporate-kpis:2026-10"
    code, out, err = _run(
        url,
        "report",
        "exceptions",
        "--cycle",
        cycle,
        "--flows",
        FLOWS,
        "--as-of",
        "2026-12-05",
        "--format",
        "json",
        "--big-change",
        "25",
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["counts"] == {
        "red": 1,
        "amber": 1,
        "special_cause_concern": 1,
        "special_cause_improvement": 1,
        "big_change": 1,
        "missing_return": 1,
        "overdue_action": 1,
    }

    page = tmp_path / "exceptions.html"
    code, _out, err = _run(
        url, "report", "exceptions", "--cycle", "1", "--flows", FLOWS, "--output", str(page)
    )
    assert code == 0, err
    assert "written to" in err
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and COMMENT_RED.replace("'", "&#39;") in html

    code, out, _err = _run(
        url, "report", "exceptions", "--cycle", cycle, "--flows", FLOWS, "--format", "csv"
    )
    assert code == 0 and out.splitlines()[0].startswith("section,indicator_id,indicator")
    assert out.endswith("\n") and not out.endswith("\n\n")  # no blank last row

    sheet = tmp_path / "exceptions.csv"
    code, _out, err = _run(
        url,
        "report",
        "exceptions",
        "--cycle",
        cycle,
        "--flows",
        FLOWS,
        "--format",
        "csv",
        "--output",
        str(sheet),
    )
    assert code == 0, err
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbfsection,")  # a BOM: Excel reads UTF-8

    nowhere = tmp_path / "no-such-folder" / "exceptions.csv"
    for command in (
        ["report", "exceptions", "--cycle", cycle, "--flows", FLOWS],
        [
            "export",
            "--flow",
            "monthly-corporate-kpis",
            "--from",
            "2026-04",
            "--to",
            "2027-03",
            "--flows",
            FLOWS,
        ],
    ):
        code, _out, err = _run(url, *command, "--output", str(nowhere))
        assert code == 1 and f"cannot write {nowhere}" in err and "Traceback" not in err


def test_an_unknown_cycle_or_a_bad_date_is_refused_in_words(database_url: str) -> None:
    url = database_url
    code, _out, err = _run(
        url, "report", "exceptions", "--cycle", "monthly-corporate-kpis:2019-01", "--flows", FLOWS
    )
    assert code == 2 and "no cycle 'monthly-corporate-kpis:2019-01'" in err
    code, _out, err = _run(
        url, "report", "exceptions", "--cycle", "1", "--flows", FLOWS, "--as-of", "5/12/2026"
    )
    assert code == 2 and "--as-of" in err
    code, _out, err = _run(
        url, "report", "exceptions", "--cycle", "1", "--flows", FLOWS, "--big-change", "0"
    )
    assert code == 2 and "--big-change" in err


def test_a_cycle_of_a_flow_not_in_the_folder_is_refused(database_url: str, tmp_path: Path) -> None:
    url = database_url
    empty = tmp_path / "other-flows"
    empty.mkdir()
    (empty / "annual.yaml").write_text(
        (ROOT / "flows" / "annual-statutory-returns.yaml").read_text(encoding="utf-8")
    )
    code, _out, err = _run(url, "report", "exceptions", "--cycle", "1", "--flows", str(empty))
    assert code == 2 and "not among the flows in" in err and "Traceback" not in err


def test_export_of_a_cycle_not_yet_written_back_is_empty(database_url: str) -> None:
    """Nothing is approved, so nothing is in SharePoint: the export says so with no rows."""
    url = database_url
    code, out, err = _run(
        url,
        "export",
        "--flow",
        "monthly-corporate-kpis",
        "--flows",
        FLOWS,
        "--from",
        "2026-10",
        "--to",
        "2026-10",
        "--json",
    )
    assert code == 0, err
    assert out.splitlines() == [out.splitlines()[0]]  # the header row alone
    assert json.loads(err.splitlines()[-1])["rows"] == 0
    code, _out, err = _run(
        url,
        "export",
        "--flow",
        "monthly-corporate-kpis",
        "--flows",
        FLOWS,
        "--from",
        "October",
        "--to",
        "2026-10",
    )
    assert code == 2 and "Invalid value for --from" in err and "'October'" in err


@pytest.mark.parametrize("given", ["nan", "inf", "-5", "0"])
def test_a_big_change_that_is_not_a_positive_number_is_refused(
    database_url: str, given: str
) -> None:
    code, out, err = _run(
        database_url,
        "report",
        "exceptions",
        "--cycle",
        "1",
        "--flows",
        FLOWS,
        "--big-change",
        given,
    )
    assert code == 2 and out == ""
    assert "--big-change" in err and "Traceback" not in err


def test_an_export_that_would_leave_out_an_id_the_register_lacks_exports_nothing(
    database_url: str, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    monthly = (ROOT / "flows" / "monthly-corporate-kpis.yaml").read_text(encoding="utf-8")
    (flows / "monthly-corporate-kpis.yaml").write_text(
        monthly + "\nexport:\n  exclude: [CP001, CP0O2]\n", encoding="utf-8"
    )
    period = ["--from", "2026-04", "--to", "2027-03", "--flows", str(flows)]
    code, out, err = _run(database_url, "export", "--flow", "monthly-corporate-kpis", *period)
    assert code == 1 and out == ""
    assert "export.exclude names CP0O2, which the register does not hold" in err

    (flows / "monthly-corporate-kpis.yaml").write_text(
        monthly + "\nexport:\n  exclude: [CP001]\n", encoding="utf-8"
    )
    code, out, err = _run(
        database_url, "export", "--flow", "monthly-corporate-kpis", "--format", "json", *period
    )
    assert code == 0, err  # an id the register holds is left out as asked
    assert "CP001" not in {row["indicator_id"] for row in json.loads(out)["rows"]}
