"""`m365perf demo --auto --json`: a whole rehearsal, checked against the sandbox's own state."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# One rehearsal of the whole register (shared by the module) takes minutes, not seconds.
pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[2]
# The console script pip installed beside this interpreter, as a user would run it.
M365PERF = Path(sys.executable).parent / "m365perf"


@dataclass
class DemoRun:
    cwd: Path
    summary: dict[str, Any]
    stderr: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """One rehearsal per module, run from an empty folder outside the repository."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    assert not cwd.resolve().is_relative_to(ROOT)
    result = subprocess.run(
        [str(M365PERF), "demo", "--auto", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    yield DemoRun(cwd, json.loads(result.stdout), result.stderr)


@pytest.mark.slow
def test_demo_runs_from_any_folder_and_leaves_it_empty(demo_run: DemoRun) -> None:
    """The packaged example flows are found without the repository; nothing lands here."""
    assert demo_run.summary["indicators"] > 20
    assert list(demo_run.cwd.iterdir()) == []


@pytest.mark.slow
def test_demo_runs_a_full_cycle_and_matches_the_sandbox(demo_run: DemoRun) -> None:
    summary = demo_run.summary
    for key in (
        "indicators",
        "requests_sent",
        "returns",
        "approved",
        "rejected",
        "written_back",
        "powerbi_refreshes",
        "self_return_rate",
        "audit_events",
    ):
        assert key in summary
    assert summary["indicators"] > 20
    assert summary["returns"] == summary["approved"] == summary["indicators"]
    assert summary["rejected"] >= 1 and summary["resubmitted"] >= 1 and summary["late"] >= 1
    assert 0 < summary["self_return_rate"] < 1  # the late owner was chased
    assert summary["parked"] == 0
    sandbox = summary["sandbox"]
    # what the service says it did is what SharePoint and Power BI hold
    assert sandbox["results_rows"] == sandbox["distinct_keys"] == summary["written_back"]
    assert summary["written_back"] == summary["approved"]
    assert sandbox["powerbi_refresh_history"] == summary["powerbi_refreshes"] >= 1
    # every owner's request is in their Teams chat or mailbox
    assert sandbox["request_cards"] == summary["requests_sent"]
    # one digest per approver: nobody holds two approval cards or e-mails for one cycle
    # and step (a split digest's parts aside), however many returns they approved
    assert sandbox["most_approval_messages_per_approver_cycle_step"] == 1


@pytest.mark.slow
def test_demo_rehearses_a_flow_of_your_own_from_flows_dir(tmp_path: Path) -> None:
    """`--flows DIR` rehearses the flows there (here one quarterly flow), not the examples."""
    from m365perf.examples import FLOWS_DIR

    ours = tmp_path / "our-flows"
    ours.mkdir()
    text = (FLOWS_DIR / "quarterly-service-standards.yaml").read_text()
    assert "\nid: quarterly-service-standards\n" in text
    (ours / "our-standards.yaml").write_text(
        text.replace("\nid: quarterly-service-standards\n", "\nid: our-standards\n")
    )
    workdir = tmp_path / "kept"
    result = subprocess.run(
        [str(M365PERF), "demo", "--auto", "--flows", "our-flows", "--workdir", "kept"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Rehearsal finished (Quarterly service standards 2026/27 Q2)" in result.stdout
    # it said what it was doing as it went, on stderr (one line a step off a terminal)
    said = result.stderr.splitlines()
    assert said[0].startswith("Starting the Microsoft 365 sandbox")
    assert any(line.startswith("Quarterly service standards 2026/27 Q2: opens") for line in said)
    assert any("indicators asked of" in line for line in said)
    assert any(line.strip().startswith("owners returned") for line in said)
    assert any("written back to SharePoint" in line for line in said)
    assert "0 messages could not be sent" in result.stdout
    # the files it writes are where it was told, and it says so
    assert (workdir / "m365perf.db").is_file()
    assert f"kept in {Path('kept')}" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "our-flows"]


@pytest.mark.slow
def test_with_json_the_demo_says_nothing_but_the_summary(demo_run: DemoRun) -> None:
    assert demo_run.stderr == ""


@pytest.mark.slow
def test_demo_rehearses_all_three_flows_and_every_routable_indicator(demo_run: DemoRun) -> None:
    """Each example flow's cycle asks for every indicator `plan` routes from the whole
    register (the same register the sandbox is seeded with), and all of it is approved."""
    from m365perf.examples import DIRECTORY_CSV, FLOWS_DIR, REGISTER_CSV

    flows = {f["flow"]: f for f in demo_run.summary["flows"]}
    assert sorted(flows) == sorted(p.stem for p in FLOWS_DIR.glob("*.yaml"))
    asked = 0
    for flow_id, rehearsed in flows.items():
        planned = subprocess.run(
            [
                str(M365PERF),
                "plan",
                str(FLOWS_DIR / f"{flow_id}.yaml"),
                "--period",
                rehearsed["period"],
                "--register",
                str(REGISTER_CSV),
                "--directory",
                str(DIRECTORY_CSV),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        plan = json.loads(planned.stdout)
        routable = sum(len(request["indicators"]) for request in plan["requests"])
        assert rehearsed["indicators"] == routable, flow_id
        assert rehearsed["unroutable"] == len(plan["unroutable"]), flow_id
        assert rehearsed["returns"] == rehearsed["approved"] == routable, flow_id
        asked += routable
    assert demo_run.summary["indicators"] == asked
    with REGISTER_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The whole register: every row is asked for, cannot be routed, or is not active
    # (Coventry never published a value for it).
    unroutable = sum(f["unroutable"] for f in flows.values())
    inactive = sum(1 for row in rows if row["Active"] == "false")
    assert len(rows) == asked + unroutable + inactive
    assert inactive < len(rows) // 20
