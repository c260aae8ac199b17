"""`cycle open/list/show/resync/close`, `audit` and `correct` from the command line.

On a SQLite file, and one pass on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_support import submit_first_card
from click.testing import CliRunner, Result

from m365perf.cli import main
from m365perf.domain.periods import Period
from m365perf.flows import load_flow
from m365perf.plan.catchup import ladder_at_opening
from m365perf.store import ReturnStatus

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("M365PERF_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    return CliRunner()


def _open(runner: CliRunner) -> dict[str, object]:
    result = runner.invoke(
        main,
        [
            "cycle",
            "open",
            "monthly-corporate-kpis",
            "--period",
            "2026-10",
            "--register",
            str(REGISTER),
            "--directory",
            str(DIRECTORY),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_cycle_open_is_idempotent_and_audited(runner: CliRunner, tmp_path: Path) -> None:
    first = _open(runner)
    assert first["created"] is True and first["returns"] and first["owners"]
    again = _open(runner)
    assert again["created"] is False and again["cycle_id"] == first["cycle_id"]
    out = tmp_path / "audit.csv"
    result = runner.invoke(
        main,
        [
            "audit",
            "--cycle",
            "monthly-corporate-kpis:2026-10",
            "--format",
            "csv",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["action"] for r in rows] == ["cycle.opened"]
    assert json.loads(rows[0]["after"])["period"] == "2026-10"


def test_cycle_open_needs_a_tenant_or_csvs(runner: CliRunner) -> None:
    result = runner.invoke(main, ["cycle", "open", "monthly-corporate-kpis", "--period", "2026-10"])
    assert result.exit_code == 2
    assert "no tenant is configured" in result.output


def test_correct_refuses_a_figure_not_yet_approved(runner: CliRunner) -> None:
    _open(runner)
    result = runner.invoke(
        main,
        [
            "correct",
            "monthly-corporate-kpis:2026-10",
            "COV-003",
            "--reason",
            "revised",
            "--by",
            "performance@contoso.gov.uk",
        ],
    )
    assert result.exit_code == 1
    assert "not approved" in result.output


def test_audit_of_unknown_cycle(database: str) -> None:
    result = CliRunner().invoke(main, ["audit", "--cycle", "monthly-corporate-kpis:2031-01"])
    assert result.exit_code == 2 and "no cycle" in result.output


# --- list, show, resync, close; refusals -------------------------------------------

FLOW_ID = "monthly-corporate-kpis"


def _cycle(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, ["cycle", *args])


def _sources(register: Path = REGISTER) -> list[str]:
    return ["--register", str(register), "--directory", str(DIRECTORY)]


def _register_with(tmp_path: Path, old: str, new: str) -> Path:
    """The demo register with one edit (the way a performance officer breaks or fixes it)."""
    text = REGISTER.read_text(encoding="utf-8-sig")
    assert old in text
    path = tmp_path / f"register-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _submit_first_card(database_url: str) -> str:
    """The first owner asked submits every figure on their card; their first indicator id."""
    return submit_first_card(database_url)[1]


def test_a_bad_id_is_a_problem_row_and_the_rest_open(runner: CliRunner, tmp_path: Path) -> None:
    broken = _register_with(tmp_path, "COV-003,", "COV 003,")
    result = _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(broken))
    assert result.exit_code == 0, result.output
    assert "Opened Monthly corporate KPIs 2026-10 (cycle 1): 22 return(s)" in result.output
    assert "COV 003  Visitor trips: indicator id 'COV 003' contains a space" in result.output
    shown = _json(_cycle(runner, "show", FLOW_ID, "--period", "2026-10", "--json"))
    keys = [r["indicator_id"] for r in shown["returns"]]
    assert len(keys) == 22 and "COV 003" not in keys and "COV-003" not in keys


def _due_if_opened_now(label: str) -> str:
    flow = load_flow(ROOT / "flows" / f"{FLOW_ID}.yaml")
    period = Period.parse_for(flow.frequency, label)
    return ladder_at_opening(flow, period, datetime.now(UTC)).timetable.due.isoformat()


def test_list_shows_each_cycle_with_its_returns_by_state(runner: CliRunner, tmp_path: Path) -> None:
    _open(runner)
    _cycle(runner, "open", FLOW_ID, "--period", "2026-09", *_sources())
    _submit_first_card(os.environ["M365PERF_DATABASE_URL"])
    cycles = _json(_cycle(runner, "list", "--json"))
    assert [(c["flow"], c["period"], c["status"]) for c in cycles] == [
        (FLOW_ID, "2026-09", "open"),
        (FLOW_ID, "2026-10", "collecting"),  # a figure is in
    ]
    october = cycles[1]
    # Opened today, long after its planned opening: due counted from today (plan.catchup).
    due = _due_if_opened_now("2026-10")
    assert october["due"] == due and october["closed_at"] is None
    assert october["returns"]["total"] == 23
    assert october["returns"]["awaiting"] + october["returns"]["returned"] == 23
    assert set(october["returns"]) == {s.value for s in ReturnStatus} | {"total"}

    text = _cycle(runner, "list", "--flow", FLOW_ID)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[1].split()[:5] == [FLOW_ID, "2026-10", "collecting", "due", due]
    assert "23 return(s): 22 awaiting, 1 returned" in lines[1]
    closed = _cycle(runner, "list", "--status", "closed")
    assert closed.exit_code == 0 and closed.output == "No cycles.\n"


def test_show_names_each_return_its_owner_step_and_approvers(runner: CliRunner) -> None:
    result = _cycle(runner, "open", FLOW_ID, "--period", "2025-10", *_sources())
    assert result.exit_code == 0, result.output
    submitted = _submit_first_card(os.environ["M365PERF_DATABASE_URL"])
    shown = _json(_cycle(runner, "show", FLOW_ID, "--period", "2025-10", "--json"))
    assert (shown["period_start"], shown["period_end"]) == ("2025-10-01", "2025-10-31")
    assert shown["status"] == "collecting" and shown["counts"]["total"] == 23
    by_key = {r["indicator_id"]: r for r in shown["returns"]}
    returned = by_key[submitted]
    assert returned["status"] == "returned"
    assert returned["step"]["name"] == "Supervisor check"
    assert [a["email"] for a in returned["step"]["approvers"]] == ["imran.hussain@contoso.gov.uk"]
    waiting = next(r for r in shown["returns"] if r["status"] == "awaiting")
    # Planned due in November 2025, but opened only now: due counted from today, not late.
    assert waiting["step"] is None and waiting["late"] is False
    assert shown["due"] == _due_if_opened_now("2025-10")
    assert waiting["owner"]["email"].endswith("@contoso.gov.uk")

    text = _cycle(runner, "show", FLOW_ID, "--period", "2025-10")
    assert text.exit_code == 0, text.output
    assert "returned, at Supervisor check (Imran Hussain)" in text.output


def test_resync_asks_for_a_fixed_row_once(runner: CliRunner, tmp_path: Path) -> None:
    broken = _register_with(tmp_path, "COV-003,", "COV 003,")
    _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(broken))

    first = _json(_cycle(runner, "resync", FLOW_ID, "--period", "2026-10", *_sources(), "--json"))
    assert first["added"] == ["COV-003"] and first["owners"] == 1 and first["round"] == 1
    assert [u["indicator_id"] for u in first["unroutable"]] == ["COV-069"]  # bad unit

    again = _cycle(runner, "resync", FLOW_ID, "--period", "2026-10", *_sources())
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[0] == (
        "Monthly corporate KPIs 2026-10 (cycle 1): nothing new to ask for."
    )
    assert "1 still cannot be routed:" in again.output
    cycles = _json(_cycle(runner, "list", "--json"))
    assert cycles[0]["returns"]["total"] == 23


def test_an_empty_cycle_is_refused_unless_asked(runner: CliRunner, tmp_path: Path) -> None:
    nothing_due = _register_with(tmp_path, ",monthly,", ",weekly,")
    args = ["open", FLOW_ID, "--period", "2026-10", *_sources(nothing_due)]
    refused = _cycle(runner, *args)
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        "Error: monthly-corporate-kpis 2026-10: no register row is due (does the flow's filter "
        "match any row?), so no indicator can be asked; no cycle was opened",
        "Fix the register, or pass --allow-empty to open the cycle anyway.",
    ]
    assert _cycle(runner, "list").output == "No cycles.\n"

    opened = _json(_cycle(runner, *args, "--allow-empty", "--json"))
    assert opened["created"] is True and opened["returns"] == 0
    filled = _json(_cycle(runner, "resync", FLOW_ID, "--period", "2026-10", *_sources(), "--json"))
    assert len(filled["added"]) == 23


def test_an_unreadable_register_opens_nothing(runner: CliRunner, tmp_path: Path) -> None:
    workbook = tmp_path / "register.csv"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00")
    result = _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(workbook))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {workbook}: this is an Excel workbook (.xlsx), not a CSV; save it as 'CSV UTF-8'\n"
    )
    wrong = tmp_path / "people.csv"
    wrong.write_text("name,email\nAnn,ann@x\n")
    result = _cycle(
        runner,
        "open",
        FLOW_ID,
        "--period",
        "2026-10",
        "--register",
        str(wrong),
        "--directory",
        str(DIRECTORY),
    )
    assert result.exit_code == 2
    assert "register.fields.IndicatorId: column 'IndicatorId' (mapped to id) is not in" in (
        result.output
    )
    assert _cycle(runner, "list").output == "No cycles.\n"


def test_a_utf16_register_without_a_bom_opens_every_indicator(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Excel's "Unicode text" without a BOM was once read silently as 0 indicators."""
    from m365perf.plan.register import read_indicators, read_register_csv

    flow = load_flow(ROOT / "flows" / f"{FLOW_ID}.yaml")
    expected = len(read_indicators(flow, read_register_csv(REGISTER, flow))[0])
    with REGISTER.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    text = io.StringIO(newline="")
    csv.writer(text, delimiter="\t").writerows(rows)
    utf16 = tmp_path / "register.csv"
    utf16.write_bytes(text.getvalue().encode("utf-16-le"))
    opened = _json(
        _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(utf16), "--json")
    )
    assert opened["created"] is True and opened["returns"] == expected > 20


def test_a_register_in_no_known_encoding_opens_nothing(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "register.csv"
    lines = REGISTER.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"COV-003", b"COV\x81003")
    broken.write_bytes(b"".join(lines))
    result = _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(broken))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {broken}:4: byte 0x81 (column 4) is neither UTF-8 nor Windows-1252 text; "
        "save it as 'CSV UTF-8'\n"
    )
    assert _cycle(runner, "list").output == "No cycles.\n"


def test_a_register_of_unreadable_rows_opens_nothing_and_names_each_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    header, *rows = REGISTER.read_text(encoding="utf-8-sig").splitlines()
    garbled = tmp_path / "register.csv"
    garbled.write_text("\n".join([header, *(f'"{r[:10]}"x{r[10:]}' for r in rows)]) + "\n")
    result = _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(garbled))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: monthly-corporate-kpis 2026-10: none of the ")
    assert lines[0].endswith("no cycle was opened")
    assert (
        f"  line 2  (row not read): {garbled}:2: not well-formed CSV (',' expected after "
        "'\"'); fix it in the register"
    ) in lines
    assert len([line for line in lines if "(row not read)" in line]) > 200  # of 243 lines
    assert _cycle(runner, "list").output == "No cycles.\n"


def test_a_period_before_collect_from_is_refused(runner: CliRunner) -> None:
    result = _cycle(runner, "open", FLOW_ID, "--period", "2025-03", *_sources())
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line == (
        f"Error: {FLOW_ID} collects from 2025-04 (collect_from in its flow file): 2025-03 is "
        "before that, so it is not opened. Change collect_from to collect earlier periods."
    )
    assert _cycle(runner, "list").output == "No cycles.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "no-such-flow", "--period", "2026-10"], "no flow file or flow id 'no-such-flow'"),
        (["show", FLOW_ID, "--period", "2031-01"], f"{FLOW_ID} has no cycle for 2031-01"),
        (["show", FLOW_ID, "--period", "October"], "--period: "),
        (["list", "--status", "shut"], "--status: no state 'shut'; use one of open"),
        (["list", "--flow", "no-such-flow"], "no flow file or flow id 'no-such-flow'"),
        (
            ["open", "no-such-flow", "--period", "2026-10", *_sources()],
            "no flow file or flow id 'no-such-flow'",
        ),
        (
            ["resync", FLOW_ID, "--period", "2031-01", *_sources()],
            f"{FLOW_ID} has no cycle for 2031-01",
        ),
        (
            ["close", FLOW_ID, "--period", "2031-01", "--reason", "x"],
            f"{FLOW_ID} has no cycle for 2031-01",
        ),
    ],
)
def test_refusals_are_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = _cycle(runner, *args)
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("Error: ") and message in line


def test_close_misses_what_is_outstanding_and_then_refuses(runner: CliRunner) -> None:
    """Needs Engine.close_cycle (engine/closing.py)."""
    _open(runner)
    submitted = _submit_first_card(os.environ["M365PERF_DATABASE_URL"])
    args = ["close", FLOW_ID, "--period", "2026-10", "--reason", "year end", "--by"]
    result = _cycle(runner, *args, "nadia.clarke@contoso.gov.uk")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Closed Monthly corporate KPIs 2026-10 (cycle 1): 22 return(s) missed."
    )
    shown = _json(_cycle(runner, "show", FLOW_ID, "--period", "2026-10", "--json"))
    assert shown["status"] == "closed" and shown["closed_at"]
    assert {r["status"] for r in shown["returns"] if r["indicator_id"] != submitted} == {"missed"}
    again = _cycle(runner, *args, "nadia.clarke@contoso.gov.uk")
    assert again.exit_code == 1
    assert again.output.startswith(f"Error: {FLOW_ID} 2026-10 is already closed (")
    refused = _cycle(runner, "resync", FLOW_ID, "--period", "2026-10", *_sources())
    assert refused.exit_code == 1 and "was closed on" in refused.output


@pytest.mark.postgres
def test_cycle_commands_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_schema_url: str
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("M365PERF_DATABASE_URL", postgres_schema_url)
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    runner = CliRunner()
    broken = _register_with(tmp_path, "COV-003,", "COV 003,")
    opened = _json(
        _cycle(runner, "open", FLOW_ID, "--period", "2026-10", *_sources(broken), "--json")
    )
    assert opened["returns"] == 22
    assert "COV 003" in [u["indicator_id"] for u in opened["unroutable"]]
    submitted = _submit_first_card(postgres_schema_url)
    added = _json(_cycle(runner, "resync", FLOW_ID, "--period", "2026-10", *_sources(), "--json"))
    assert added["added"] == ["COV-003"]
    again = _json(_cycle(runner, "resync", FLOW_ID, "--period", "2026-10", *_sources(), "--json"))
    assert again["added"] == [] and again["round"] is None
    (listed,) = _json(_cycle(runner, "list", "--json", "--status", "collecting"))
    assert listed["returns"]["total"] == 23 and listed["returns"]["returned"] == 1
    shown = _json(_cycle(runner, "show", FLOW_ID, "--period", "2026-10", "--json"))
    by_key = {r["indicator_id"]: r for r in shown["returns"]}
    assert by_key[submitted]["step"]["name"] == "Supervisor check"
    assert by_key["COV-003"]["status"] == "awaiting"
