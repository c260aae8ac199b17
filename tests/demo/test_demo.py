"""`m365perf demo --auto --json`: a whole rehearsal, checked against the sandbox's own state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_a_full_cycle_and_matches_the_sandbox(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "m365perf", "demo", "--auto", "--json", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
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
