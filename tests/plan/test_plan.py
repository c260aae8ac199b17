"""The dry run: requests per owner, dates in working days, chains, unroutable rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from m365perf.cli import main

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"
QUARTERLY = ROOT / "flows" / "quarterly-service-standards.yaml"

HEADER = (
    "IndicatorId,Title,Unit,Polarity,Frequency,Target,Tolerance,TargetFrom,Comparator,"
    "Owner,Supervisor,HeadOfService,Service,Active,Kind,Profile"
)
ROWS = [
    "CP001,Household waste recycled,%,higher_is_better,Monthly,45,5%,,40.1,"
    "ann.lee@contoso.gov.uk,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,Streetpride,Yes,,",
    "CP002,Days to process benefit claims,days,lower_is_better,Monthly,20,2,2027/28,,"
    "ann.lee@contoso.gov.uk,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,Revenues,Yes,,",
    "CP003,No owner,number,higher_is_better,Monthly,5,,,,,"
    "bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,X,Yes,,",
    "CP004,Bad target,number,higher_is_better,Monthly,23 out of 35,,,,"
    "dan.fox@contoso.gov.uk,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,X,Yes,,",
    "CP005,Annual thing,number,higher_is_better,Annual,5,,,,"
    "dan.fox@contoso.gov.uk,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,X,Yes,,",
    "CP006,Self supervised,count,higher_is_better,Monthly,5,,,,"
    "bob.ray@contoso.gov.uk,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,X,Yes,,",
    "CP007,Unknown supervisor,count,higher_is_better,Monthly,5,,,,"
    "dan.fox@contoso.gov.uk,nobody@contoso.gov.uk,cat.doe@contoso.gov.uk,X,Yes,,",
    "CP008,Retired,count,higher_is_better,Monthly,5,,,,"
    "dan.fox@contoso.gov.uk,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,X,No,,",
]
PEOPLE = """id,name,email,line_manager
0001,Ann Lee,ann.lee@contoso.gov.uk,bob.ray@contoso.gov.uk
0002,Bob Ray,bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk
0003,Cat Doe,cat.doe@contoso.gov.uk,
0004,Dan Fox,dan.fox@contoso.gov.uk,bob.ray@contoso.gov.uk
0005,Nadia Clarke,nadia.clarke@contoso.gov.uk,
0006,Ben Foster,ben.foster@contoso.gov.uk,
"""


@pytest.fixture
def register(tmp_path: Path) -> tuple[Path, Path]:
    reg = tmp_path / "register.csv"
    reg.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8-sig")
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    return reg, people


def _plan(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["plan", *args, "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_december_plan_skips_new_year_bank_holiday(register: tuple[Path, Path]) -> None:
    reg, people = register
    plan = _plan(
        str(MONTHLY), "--period", "2026-12", "--register", str(reg), "--directory", str(people)
    )
    # December 2026 ends Thursday 31st; Friday 1 January 2027 is a bank holiday, so the
    # third working day is Wednesday 6 January and five working days later is the 13th.
    assert plan["opens"] == "2027-01-06"
    assert plan["due"] == "2027-01-13"
    assert [r["on"] for r in plan["reminders"]] == [
        "2027-01-11",
        "2027-01-13",
        "2027-01-15",
        "2027-01-19",
    ]
    assert plan["escalates_on"] == "2027-01-19"
    # The flow closes ten working days after due, or sooner once everything is approved.
    assert plan["closes_on"] == "2027-01-27"
    assert plan["closes_when_all_approved"] is True
    assert plan["late_returns"] == "correction"


def test_one_request_per_owner_with_chains(register: tuple[Path, Path]) -> None:
    reg, people = register
    plan = _plan(
        str(MONTHLY), "--period", "2026-10", "--register", str(reg), "--directory", str(people)
    )
    by_owner = {r["owner"]["email"]: r for r in plan["requests"]}
    assert set(by_owner) == {"ann.lee@contoso.gov.uk", "bob.ray@contoso.gov.uk"}
    ann = by_owner["ann.lee@contoso.gov.uk"]
    assert [i["id"] for i in ann["indicators"]] == ["CP001", "CP002"]
    assert ann["escalate_to"]["email"] == "bob.ray@contoso.gov.uk"
    cp001 = ann["indicators"][0]
    assert cp001["target"] == 45 and cp001["tolerance"] == {"kind": "percent", "amount": 5}
    chain = [
        (s["step"], [p["email"] for p in s["approvers"]], s["when"])
        for s in cp001["approval_chain"]
    ]
    assert chain == [
        ("Supervisor check", ["bob.ray@contoso.gov.uk"], None),
        ("Head of service sign-off", ["cat.doe@contoso.gov.uk"], {"rag": ["red"]}),
        ("Performance team", ["nadia.clarke@contoso.gov.uk", "ben.foster@contoso.gov.uk"], None),
    ]
    # CP002's target only applies from 2027/28: October 2026 has none.
    assert ann["indicators"][1]["target"] is None


def test_owner_never_approves_own_return(register: tuple[Path, Path]) -> None:
    reg, people = register
    plan = _plan(
        str(MONTHLY), "--period", "2026-10", "--register", str(reg), "--directory", str(people)
    )
    (bob,) = [r for r in plan["requests"] if r["owner"]["email"] == "bob.ray@contoso.gov.uk"]
    for indicator in bob["indicators"]:
        for step in indicator["approval_chain"]:
            assert "bob.ray@contoso.gov.uk" not in [p["email"] for p in step["approvers"]]
    assert bob["indicators"][0]["approval_chain"][0]["step"] == "Head of service sign-off"


def test_unroutable_rows_are_listed_with_reasons(register: tuple[Path, Path]) -> None:
    reg, people = register
    plan = _plan(
        str(MONTHLY), "--period", "2026-10", "--register", str(reg), "--directory", str(people)
    )
    reasons = {u["indicator_id"]: u["reason"] for u in plan["unroutable"]}
    assert set(reasons) == {"CP003", "CP004", "CP007"}  # CP005 annual, CP008 inactive
    assert "no owner" in reasons["CP003"]
    assert "bad target '23 out of 35'" in reasons["CP004"]
    assert "nobody@contoso.gov.uk" in reasons["CP007"]


def test_line_manager_steps_need_a_directory(register: tuple[Path, Path]) -> None:
    reg, _people = register
    quarterly_reg = reg.read_text(encoding="utf-8-sig").replace("Monthly", "Quarterly")
    reg.write_text(quarterly_reg)
    plan = _plan(str(QUARTERLY), "--period", "2026/27 Q2", "--register", str(reg))
    assert plan["requests"] == []
    assert all(
        "line manager" in u["reason"] or "owner" in u["reason"] or "target" in u["reason"]
        for u in plan["unroutable"]
    )


def test_quarterly_plan_with_directory(register: tuple[Path, Path]) -> None:
    reg, people = register
    reg.write_text(reg.read_text(encoding="utf-8-sig").replace("Monthly", "Quarterly"))
    plan = _plan(
        str(QUARTERLY), "--period", "2026/27 Q3", "--register", str(reg), "--directory", str(people)
    )
    # Q3 ends Thursday 31 December 2026; with New Year's Day the 5th working day is 8 Jan.
    assert (plan["period_start"], plan["period_end"]) == ("2026-10-01", "2026-12-31")
    assert plan["opens"] == "2027-01-08"
    ann = next(r for r in plan["requests"] if r["owner"]["email"] == "ann.lee@contoso.gov.uk")
    first = ann["indicators"][0]["approval_chain"][0]
    assert first["step"] == "Line manager check"
    assert [p["email"] for p in first["approvers"]] == ["bob.ray@contoso.gov.uk"]


def test_wrong_period_for_flow_is_refused(register: tuple[Path, Path]) -> None:
    reg, _ = register
    result = CliRunner().invoke(
        main, ["plan", str(MONTHLY), "--period", "2026/27 Q2", "--register", str(reg)]
    )
    assert result.exit_code == 2
    assert "--period" in result.output


def test_text_output_names_owners_and_dates(register: tuple[Path, Path]) -> None:
    reg, people = register
    result = CliRunner().invoke(
        main,
        [
            "plan",
            str(MONTHLY),
            "--period",
            "2026-10",
            "--register",
            str(reg),
            "--directory",
            str(people),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Ann Lee <ann.lee@contoso.gov.uk> — 2 indicator(s)" in result.stdout
    assert "only when RAG is red" in result.stdout
    assert (
        "Closes when every return is approved or on 2026-11-25; "
        "figures after that are taken as late corrections" in result.stdout
    )
    assert "CP004  Bad target: bad target '23 out of 35'" in result.stdout
