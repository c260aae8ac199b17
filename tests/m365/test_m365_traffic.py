"""Every attempt at Microsoft 365 is counted by service: requests, 429s, latency."""

from __future__ import annotations

import random

import pytest
import requests
import responses
from m365_support import FakeClock
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from m365perf.m365.auth import StaticToken
from m365perf.m365.errors import TransportError
from m365perf.m365.http import ApiClient, Budget, HttpCore, RetryPolicy, new_session
from m365perf.m365.traffic import Traffic

BASE = "https://graph.test/v1.0"


def api(traffic: Traffic, budget: str) -> ApiClient:
    clock = FakeClock()
    core = HttpCore(
        new_session("m365perf-test"), clock=clock, rng=random.Random(1), traffic=traffic
    )
    return ApiClient(
        core,
        BASE,
        tokens=StaticToken("t"),
        budget=Budget(budget, clock=clock),
        retry=RetryPolicy(max_attempts=3),
    )


def samples(traffic: Traffic) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    for collector in traffic.collectors():
        registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_throttled_then_answered_request_counts_both_attempts_and_the_429() -> None:
    traffic = Traffic()
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/sites/s", status=429, headers={"Retry-After": "1"})
        mock.get(f"{BASE}/sites/s", json={"id": "s"})
        api(traffic, "sharepoint").get_json("sites/s")

    seen = samples(traffic)

    assert seen[("m365perf_m365_requests_total", (("code", "429"), ("service", "sharepoint")))] == 1
    assert seen[("m365perf_m365_requests_total", (("code", "200"), ("service", "sharepoint")))] == 1
    assert seen[("m365perf_m365_throttled_total", (("service", "sharepoint"),))] == 1
    assert seen[("m365perf_m365_request_seconds_count", (("service", "sharepoint"),))] == 2


def test_a_mailbox_is_counted_as_mail_without_its_address() -> None:
    traffic = Traffic()
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/users/u", body=requests.ConnectionError("reset"))
        with pytest.raises(TransportError):
            api(traffic, "mailbox:performance@contoso.gov.uk").get_json("users/u", idempotent=False)

    seen = samples(traffic)

    assert seen[("m365perf_m365_requests_total", (("code", "none"), ("service", "mail")))] == 1
    assert not any("contoso" in str(labels) for _name, labels in seen)
