"""`delegate`, `away`, `correct --by` and names in `audit`, from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import submit_first_card
from click.testing import CliRunner, Result

from m365perf.cli import main
from m365perf.engine.context import local_day

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"
FLOW_ID = "monthly-corporate-kpis"
IMRAN, KIERAN = "imran.hussain@contoso.gov.uk", "kieran.murphy@contoso.gov.uk"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("M365PERF_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    return CliRunner()


def _run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args))


def _open(runner: CliRunner) -> None:
    result = _run(
        runner,
        "cycle",
        "open",
        FLOW_ID,
        "--period",
        "2026-10",
        "--register",
        str(REGISTER),
        "--directory",
        str(DIRECTORY),
    )
    assert result.exit_code == 0, result.output


def _today() -> str:
    return local_day(datetime.now(UTC)).isoformat()


def _in_days(days: int) -> str:
    return (local_day(datetime.now(UTC)) + timedelta(days=days)).isoformat()


def test_delegate_add_list_end_and_the_audit_of_delegations(runner: CliRunner) -> None:
    _open(runner)
    added = _run(
        runner,
        "delegate",
        "add",
        "--approver",
        IMRAN,
        "--delegate",
        KIERAN,
        "--from",
        _today(),
        "--to",
        _in_days(7),
        "--by",
        IMRAN,
    )
    assert added.exit_code == 0, added.output
    assert "Kieran Murphy for Imran Hussain" in added.output
    listed = json.loads(_run(runner, "delegate", "list", "--json", "--on", _today()).output)
    assert [(d["approver_name"], d["delegate_name"]) for d in listed] == [
        ("Imran Hussain", "Kieran Murphy")
    ]
    overlapping = _run(
        runner,
        "away",
        "--person",
        IMRAN,
        "--from",
        _in_days(1),
        "--to",
        _in_days(2),
        "--by",
        IMRAN,
    )
    assert overlapping.exit_code == 1
    assert f"delegate end {listed[0]['id']}" in overlapping.output
    ended = _run(runner, "delegate", "end", str(listed[0]["id"]), "--by", IMRAN)
    assert ended.exit_code == 0, ended.output
    assert "No delegations." in _run(runner, "delegate", "list").output
    away = _run(
        runner,
        "away",
        "--person",
        IMRAN,
        "--from",
        _in_days(1),
        "--to",
        _in_days(2),
        "--by",
        "performance@contoso.gov.uk",
    )
    assert away.exit_code == 0, away.output
    assert "Imran Hussain away (nobody named)" in away.output

    trail = _run(runner, "audit", "--delegations")
    assert trail.exit_code == 0, trail.output
    lines = trail.output.splitlines()
    assert [line.split()[2] for line in lines if "delegation." in line] == [
        "Hussain",
        "Hussain",
        "Team",
    ]
    assert "(Kieran Murphy for Imran Hussain)" in lines[0] and "delegation.added" in lines[0]
    assert "delegation.ended" in lines[1]
    assert "delegation.away_marked" in lines[2] and "Performance Team (" in lines[2]


def test_delegate_add_with_someone_not_in_the_directory_changes_nothing(
    runner: CliRunner,
) -> None:
    _open(runner)
    result = _run(
        runner,
        "delegate",
        "add",
        "--approver",
        IMRAN,
        "--delegate",
        "nobody@example.com",
        "--from",
        _today(),
        "--to",
        _today(),
        "--by",
        IMRAN,
    )
    assert result.exit_code == 1
    assert "'nobody@example.com' is not in the directory" in result.output
    assert "No delegations." in _run(runner, "delegate", "list", "--all").output


@pytest.mark.parametrize(
    ("by", "message"),
    [
        ("nobody@example.com", "'nobody@example.com' is not in the directory"),
        (
            "nadia.clarke@contoso.gov.uk",
            "Nadia Clarke <nadia.clarke@contoso.gov.uk> is not in the performance team",
        ),
    ],
)
def test_correct_by_someone_outside_the_performance_team_is_refused(
    runner: CliRunner, by: str, message: str
) -> None:
    _open(runner)
    before = _run(runner, "audit", "--cycle", f"{FLOW_ID}:2026-10", "--format", "json")
    result = _run(
        runner, "correct", f"{FLOW_ID}:2026-10", "COV-003", "--reason", "revised", "--by", by
    )
    assert result.exit_code == 1
    assert message in result.output and "nothing changed" in result.output
    after = _run(runner, "audit", "--cycle", f"{FLOW_ID}:2026-10", "--format", "json")
    assert json.loads(after.output) == json.loads(before.output)


def test_audit_shows_names_next_to_ids(runner: CliRunner, tmp_path: Path) -> None:
    _open(runner)
    user, _ = submit_first_card(f"sqlite:///{tmp_path / 'cli.db'}")
    text = _run(runner, "audit", "--cycle", f"{FLOW_ID}:2026-10")
    assert text.exit_code == 0, text.output
    submitted = [line for line in text.output.splitlines() if "return.submitted" in line]
    assert submitted and all(f"{user['name']} ({user['id']})" in line for line in submitted)
    rows = json.loads(
        _run(runner, "audit", "--cycle", f"{FLOW_ID}:2026-10", "--format", "json").output
    )
    assert {r["actor_name"] for r in rows if r["action"] == "return.submitted"} == {user["name"]}
    assert _run(runner, "audit").exit_code == 2  # neither --cycle nor --delegations
