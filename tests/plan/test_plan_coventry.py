"""The dry run on the demo register built from Coventry City Council's real indicators."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from m365perf.cli import main
from m365perf.sandbox.seed import write_directory_csv, write_register_csv

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"


def test_demo_files_are_what_the_seed_writes(tmp_path: Path) -> None:
    """config/ holds exactly the sandbox seed's register and directory: they cannot drift."""
    register = write_register_csv(tmp_path / "r.csv")
    directory = write_directory_csv(tmp_path / "d.csv")
    assert register.read_text() == REGISTER.read_text()
    assert directory.read_text() == DIRECTORY.read_text()


def test_monthly_plan_on_coventry_register() -> None:
    result = CliRunner().invoke(
        main,
        [
            "plan",
            str(ROOT / "flows" / "monthly-corporate-kpis.yaml"),
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
    plan = json.loads(result.stdout)
    assert plan["counts"]["requests"] >= 5
    names = {i["name"] for r in plan["requests"] for i in r["indicators"]}
    assert "Visitor trips" in names
    for request in plan["requests"]:
        for indicator in request["indicators"]:
            chain = indicator["approval_chain"]
            assert chain[0]["approvers"], indicator["id"]
            owner = request["owner"]["email"]
            assert all(owner != p["email"] for s in chain for p in s["approvers"])
    # Coventry's messier rows are listed with a reason, not dropped or fatal.
    assert all(u["reason"] for u in plan["unroutable"])


def test_quarterly_plan_lists_unroutable_messy_rows() -> None:
    result = CliRunner().invoke(
        main,
        [
            "plan",
            str(ROOT / "flows" / "quarterly-service-standards.yaml"),
            "--period",
            "2026/27 Q2",
            "--register",
            str(REGISTER),
            "--directory",
            str(DIRECTORY),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["opens"] == "2026-10-07" and plan["due"] == "2026-10-21"
    reasons = " ".join(u["reason"] for u in plan["unroutable"])
    assert "unknown unit" in reasons or "bad target" in reasons
    assert plan["counts"]["indicators"] > 20
