"""`cycle open`, `audit` and `correct` from the command line, on a SQLite file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365perf.cli import main

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
            "nadia.clarke@contoso.gov.uk",
        ],
    )
    assert result.exit_code == 1
    assert "not approved" in result.output


def test_audit_of_unknown_cycle(runner: CliRunner) -> None:
    result = runner.invoke(main, ["audit", "--cycle", "monthly-corporate-kpis:2031-01"])
    assert result.exit_code == 2 and "no cycle" in result.output
