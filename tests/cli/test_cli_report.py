"""`m365perf report`: the process measures of the database's cycles, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import submit_first_card
from click.testing import CliRunner

from m365perf.cli import main

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The monthly cycle opened from the demo register, its first owner's card returned."""
    monkeypatch.chdir(ROOT)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("M365PERF_DATABASE_URL", url)
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    opened = CliRunner().invoke(
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
        ],
    )
    assert opened.exit_code == 0, opened.output
    return url


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
