"""``/metrics`` of a running service against the sandbox: what it asked of Microsoft 365,
the outbox and the measures, for a scraper with the token (SQLite only: the store side is
covered on both backends in tests/store and tests/web)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from integration_support import bench, monthly_flow, opening_time, sandbox_health
from prometheus_client.parser import text_string_to_metric_families

from m365perf.domain.periods import Period
from m365perf.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.slow

TOKEN = "an-integration-test-token-for-metrics-scrapes"


def test_metrics_of_a_running_service_count_its_microsoft_365_requests(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    flow = monthly_flow(sandbox_health(sandbox))
    url = f"sqlite:///{tmp_path / 'm365perf.db'}"
    start = opening_time(flow, "2026-10")
    with bench(sandbox, url, start=start, flow=flow, settings={"metrics_token": TOKEN}) as council:
        council.service.open_cycle(flow, Period.parse_for(flow.frequency, "2026-10"), actor="t")
        council.service.settle()
        base = council.endpoint.removesuffix("/api/messages")

        refused = requests.get(f"{base}/metrics", timeout=10)
        reply = requests.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    assert refused.status_code == 401
    assert reply.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    requests_by_service: dict[str, float] = {}
    for sample in families["m365perf_m365_requests"].samples:
        if sample.name == "m365perf_m365_requests_total":
            service = sample.labels["service"]
            requests_by_service[service] = requests_by_service.get(service, 0) + sample.value
    assert requests_by_service.get("sharepoint", 0) > 0  # the register was read
    assert requests_by_service.get("bot", 0) + requests_by_service.get("mail", 0) > 0  # cards
    sent = {
        s.labels["kind"]: s.value
        for s in families["m365perf_outbox_messages"].samples
        if s.labels["status"] == "done"
    }
    assert sent["send_card"] >= 1
    assert all("@" not in str(s.labels) for f in families.values() for s in f.samples)
