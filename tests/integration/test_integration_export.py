"""The open-data export after a real cycle: the SharePoint results list, row for row.

A rehearsal (the demo's simulated officers and approvers, one rejection) runs
the monthly flow's October cycle against a sandbox server; ``m365perf export`` is then
run as a user runs it, and its CSV is compared with the sandbox's KPI Results list.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from integration_support import MONTHLY_FILE, free_port, results_rows, sandbox_health

from m365perf.demo import Rehearsal
from m365perf.domain.periods import Period
from m365perf.engine.context import LONDON
from m365perf.reports.opendata import COLUMNS
from m365perf.sandbox.testing import RunningSandbox, running_sandbox

pytestmark = pytest.mark.slow

M365PERF = Path(sys.executable).parent / "m365perf"
OCTOBER = "2026-10"
NOT_PUBLISHED = "COV-024"  # looked-after children: small numbers, kept off the open data


@dataclass
class Cycle:
    flow_file: Path
    database_url: str
    sharepoint: list[dict[str, Any]]


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cycle]:
    """The October cycle run to the end; the flow file says COV-024 is not published."""
    work = tmp_path_factory.mktemp("export")
    flow_file = work / "monthly-corporate-kpis.yaml"
    text = MONTHLY_FILE.read_text(encoding="utf-8")
    flow_file.write_text(text + f"\nexport:\n  exclude: [{NOT_PUBLISHED}]\n", encoding="utf-8")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/api/messages"
    with running_sandbox(work, bot_endpoint=endpoint, powerbi_refresh_s=0) as sandbox:
        yield _run(sandbox, flow_file, work, port)


def _run(sandbox: RunningSandbox, flow_file: Path, work: Path, port: int) -> Cycle:
    from m365perf.flows import load_flow
    from m365perf.plan.timetable import timetable

    health = sandbox_health(sandbox)
    flow = load_flow(flow_file)
    period = Period.parse_for(flow.frequency, OCTOBER)
    opens = timetable(flow, period).opens
    start = datetime.combine(opens, flow.schedule.opening_time, tzinfo=LONDON).astimezone(UTC)
    rehearsal = Rehearsal(health, [flow], work, port, start=start)
    with rehearsal.serving():
        rehearsal.run_cycle(rehearsal.flows[0], period, late_owner=False, reject=True)
    rehearsal.service.store.close()
    return Cycle(flow_file, rehearsal.settings.database_url, results_rows(sandbox, health))


def _export(cycle: Cycle, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(M365PERF), "export", "--flow", str(cycle.flow_file), *args],
        cwd=tmp_path,
        env={**os.environ, "M365PERF_DATABASE_URL": cycle.database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_csv_export_is_the_results_list_row_for_row(october: Cycle, tmp_path: Path) -> None:
    out = tmp_path / "kpis.csv"
    done = _export(october, tmp_path, "--from", "2026-04", "--to", "2027-03", "--output", str(out))
    assert done.returncode == 0, done.stderr

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "a spreadsheet needs the BOM to read UTF-8"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    published = [r for r in october.sharepoint if r["IndicatorId"] != NOT_PUBLISHED]
    assert len(october.sharepoint) > 20 and len(published) == len(october.sharepoint) - 1
    # one row per indicator and period, and exactly the list's rows but the unpublished one
    keys = [(r["indicator_id"], r["period"]) for r in rows]
    assert len(set(keys)) == len(keys)
    assert sorted(keys) == sorted((r["IndicatorId"], r["Period"]) for r in published)
    assert NOT_PUBLISHED not in {r["indicator_id"] for r in rows}

    by_key = {(r["IndicatorId"], r["Period"]): r for r in published}
    for row in rows:
        listed = by_key[(row["indicator_id"], row["period"])]
        for column in COLUMNS:
            if column.source not in listed:
                continue
            assert row[column.name] == _as_csv(listed[column.source]), (
                f"{row['indicator_id']} {column.name}: export {row[column.name]!r}, "
                f"SharePoint {listed[column.source]!r}"
            )
        approved = datetime.fromisoformat(listed["ApprovedAt"]).astimezone(LONDON)
        assert row["approved_on"] == approved.date().isoformat()
        assert row["rag"] in {"red", "amber", "green", "none"}
    assert {r["flow"] for r in rows} == {"monthly-corporate-kpis"}


def test_the_json_export_names_its_columns_and_leaves_out_other_periods(
    october: Cycle, tmp_path: Path
) -> None:
    done = _export(october, tmp_path, "--from", "2026-11", "--to", "2026-12", "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["rows"] == []  # October is outside November to December
    assert [c["name"] for c in document["columns"]] == [c.name for c in COLUMNS]

    done = _export(october, tmp_path, "--from", OCTOBER, "--to", OCTOBER, "--format", "json")
    rows = json.loads(done.stdout)["rows"]
    assert len(rows) == len(october.sharepoint) - 1
    values = {r["indicator_id"]: r["value"] for r in rows}
    assert values == {
        r["IndicatorId"]: r.get("Value")
        for r in october.sharepoint
        if r["IndicatorId"] != NOT_PUBLISHED
    }


def test_a_period_range_backwards_is_refused_in_words(october: Cycle, tmp_path: Path) -> None:
    done = _export(october, tmp_path, "--from", "2026-10", "--to", "2026-04")
    assert done.returncode == 2
    assert "2026-04 comes before 2026-10" in done.stderr
    assert "Traceback" not in done.stderr


def _as_csv(value: Any) -> str:
    """A SharePoint field as the CSV writes it: empty for none, whole numbers without .0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
