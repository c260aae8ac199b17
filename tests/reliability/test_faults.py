"""A whole cycle under 20% injected faults ends exactly as the same cycle without them.

The rehearsal behind ``m365perf demo`` (real sandbox process, real web endpoint, engine,
SQLite store and dispatcher; simulated officers and approvers clicking through the
sandbox) runs once without faults and once with 20% of every request the sandbox serves
broken: 429s and 503s with Retry-After, responses held beyond the clients' read
timeout, connections dropped after the write was made, ``$batch`` parts refused, the
token endpoint too. The SharePoint results list, the audit trail and the Power BI
refresh history must come out equal, with nothing parked.

At CI size one flow (monthly KPIs, Teams) is rehearsed with one seed, Retry-After 0 and
short slow responses; at full size every demo flow (e-mail, Teams, both) with three
seeds and the sandbox's one-second Retry-After::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability/test_faults.py -s
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability_support import FULL_SIZE, report, sized

from m365perf.cli.demo import DEFAULT_FLOWS, DEFAULT_PERIODS
from m365perf.demo import rehearse
from m365perf.examples import FLOWS_DIR
from m365perf.flows import load_flow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(sized(300, 3600))]

RATE = 0.2
SEEDS = (11, 12, 13)[: sized(1, 3)]
FLOW_FILES = DEFAULT_FLOWS if FULL_SIZE else ("monthly-corporate-kpis.yaml",)
TIMINGS = "retry_after=1,slow_s=4" if FULL_SIZE else "retry_after=0,slow_s=2"
READ_TIMEOUT_S = 2.0 if FULL_SIZE else 1.0


def test_a_cycle_under_20_percent_faults_ends_as_the_fault_free_cycle(tmp_path: Path) -> None:
    flows = [load_flow(FLOWS_DIR / name) for name in FLOW_FILES]
    periods = {flow.id: DEFAULT_PERIODS[flow.frequency] for flow in flows}
    started = time.monotonic()
    clean, expected = rehearse(flows, tmp_path / "fault-free", periods=periods)
    assert clean["approved"] > 0 and clean["parked"] == 0
    assert expected.results and expected.audit and expected.powerbi
    for seed in SEEDS:
        faulty, got = rehearse(
            flows,
            tmp_path / f"faults-{seed}",
            periods=periods,
            faults=f"{RATE},{TIMINGS}",
            fault_seed=seed,
            read_timeout_s=READ_TIMEOUT_S,
        )
        broken = faulty["injected"]
        assert set(broken) >= {"429 with Retry-After", "503 with Retry-After"}
        assert broken.get("dropped after the write", 0) > 0
        assert expected.differences(got) == []
        assert faulty["parked"] == 0
        report(
            "faults",
            seed=seed,
            rate=RATE,
            flows=len(flows),
            injected=broken,
            results_rows=len(got.results),
            audit_events=len(got.audit),
            powerbi_refreshes=len(got.powerbi),
            equal_to_fault_free=True,
            wall_s=round(time.monotonic() - started, 1),
        )
