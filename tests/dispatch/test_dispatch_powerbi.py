"""Power BI: start a refresh, then read how it went by the request id it returned."""

from __future__ import annotations

from dispatch_support import Bench, MiniEngine

from m365perf.dispatch import DrainReport
from m365perf.messages import RefreshChecked, RefreshStarted
from m365perf.store import OutboxStatus


def _dataset(bench: Bench) -> dict[str, str]:
    return {
        "workspace": bench.health["powerbi_workspace_id"],
        "dataset": bench.health["powerbi_dataset_id"],
        "flow_id": "council-plan",
    }


def test_a_refresh_reports_its_request_id_and_its_progress_can_be_read(bench: Bench) -> None:
    engine = MiniEngine(bench)
    dataset = _dataset(bench)
    budget = f"powerbi:{dataset['dataset']}"
    start = engine.enqueue("refresh", budget, dataset)
    assert engine.dispatcher.drain() == DrainReport(sent=1)
    started = engine.sent[start]
    assert isinstance(started, RefreshStarted) and started.request_id
    request_id = started.request_id

    running = engine.enqueue("check_refresh", budget, {**dataset, "request_id": request_id})
    engine.dispatcher.drain()
    assert engine.sent[running] == RefreshChecked(status="Unknown", error=None)

    bench.admin("POST", "/clock", json={"advance_s": 3600}).raise_for_status()
    finished = engine.enqueue("check_refresh", budget, {**dataset, "request_id": request_id})
    engine.dispatcher.drain()
    assert engine.sent[finished] == RefreshChecked(status="Completed", error=None)


def test_a_refresh_asked_for_while_one_runs_waits_its_turn(bench: Bench) -> None:
    engine = MiniEngine(bench)
    dataset = _dataset(bench)
    budget = f"powerbi:{dataset['dataset']}"
    engine.enqueue("refresh", budget, dataset)
    engine.dispatcher.drain()

    second = engine.enqueue("refresh", budget, dataset)
    assert engine.dispatcher.drain() == DrainReport(retried=1)

    row = engine.row(second)
    assert row.status == OutboxStatus.PENDING
    assert row.last_error is not None and "already running" in row.last_error
    bench.admin("POST", "/clock", json={"advance_s": 3600}).raise_for_status()
