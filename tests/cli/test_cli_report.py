"""`m365perf report`: the process measures of the database's cycles, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import submit_first_card
from click.testing import CliRunner

from m365perf.cli import main


def test_report_json_counts_what_came_back_before_any_chase(database: str) -> None:
    submit_first_card(database)

    result = CliRunner().invoke(main, ["report", "--json"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    overall = document["overall"]
    assert overall["returned"] >= 1 and overall["returns"] > overall["returned"]
    assert overall["self_returned"] == overall["returned"]  # nobody has been chased yet
    assert overall["self_return_rate"] == 1.0
    scopes = {g["scope"] for g in document["groups"]}
    assert scopes == {"flow", "cycle", "service"}
    (flow,) = [g for g in document["groups"] if g["scope"] == "flow"]
    assert flow["flow_name"] == "Monthly corporate KPIs"


def test_report_without_json_is_a_table_with_a_row_per_service(database: str) -> None:
    submit_first_card(database)

    result = CliRunner().invoke(main, ["report"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Of") and "Self-return" in lines[0]
    assert lines[2].startswith("Every cycle")
    assert any(line.startswith("  Monthly corporate KPIs 2026-10") for line in lines)
    assert any(line.startswith("    ") and "100%" in line for line in lines)


def test_report_for_a_flow_with_no_cycle_says_so(database: str) -> None:
    result = CliRunner().invoke(main, ["report", "--flow", "no-such-flow"])

    assert result.exit_code == 2
    assert "no cycle of a flow 'no-such-flow'" in result.output


def test_the_audit_trail_names_people_and_indicators_not_only_ids(database: str) -> None:
    user, indicator_key = submit_first_card(database)

    text = CliRunner().invoke(main, ["audit", "--cycle", "monthly-corporate-kpis:2026-10"])
    rows = json.loads(
        CliRunner()
        .invoke(main, ["audit", "--cycle", "monthly-corporate-kpis:2026-10", "--format", "json"])
        .stdout
    )

    (submitted, *_) = [r for r in rows if r["action"] == "return.submitted"]
    assert submitted["actor_name"] == user["name"]
    assert submitted["subject_name"].startswith(f"{indicator_key} ")
    assert len(submitted["subject_name"]) > len(indicator_key) + 1  # the indicator's name
    assert f"return {submitted['subject_id']} {submitted['subject_name']}" in text.stdout


def test_an_unreachable_database_is_one_line_naming_it_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "M365PERF_DATABASE_URL", "postgresql+psycopg://perf:s3cret@127.0.0.1:1/council"
    )
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 1, result.output
    assert "cannot reach the database postgresql+psycopg://perf:***@127.0.0.1:1/council" in (
        result.output
    )
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "command", [["report"], ["report", "exceptions", "--cycle", "1"], ["audit", "--delegations"]]
)
def test_a_reading_command_does_not_create_a_missing_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("M365PERF_DATABASE_URL", f"sqlite:///{missing}")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert f"no database at {missing}" in result.output
    assert not missing.exists()
