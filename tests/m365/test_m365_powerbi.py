"""Power BI refresh: trigger, find by request id, wait with a virtual clock."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses
from m365_support import FakeClock

from m365perf.m365.auth import StaticToken
from m365perf.m365.errors import WaitTimeout
from m365perf.m365.http import ApiClient, Budget, HttpCore, RetryPolicy, new_session
from m365perf.m365.powerbi import PowerBIClient

BASE = "https://api.powerbi.test/v1.0/myorg"
REFRESHES = f"{BASE}/groups/ws-1/datasets/ds-1/refreshes"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def make_client(clock: FakeClock) -> PowerBIClient:
    core = HttpCore(new_session("ua"), clock=clock)
    return PowerBIClient(
        ApiClient(
            core,
            BASE,
            tokens=StaticToken("pbi"),
            budget=Budget("powerbi", clock=clock),
            retry=RetryPolicy(),
        )
    )


def history(*entries: tuple[str, str]) -> dict[str, object]:
    return {
        "value": [
            {
                "requestId": rid,
                "status": status,
                "refreshType": "ViaApi",
                "startTime": "2026-10-01T09:00:00Z",
            }
            for rid, status in entries
        ]
    }


def test_trigger_returns_the_request_id_header(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.post(REFRESHES, status=202, headers={"x-ms-request-id": "87f31ef7-1e3a-4006-9b0b"})

    assert make_client(clock).trigger_refresh("ws-1", "ds-1") == "87f31ef7-1e3a-4006-9b0b"
    assert json.loads(mocked.calls[0].request.body) == {}  # no notifyOption for a service principal


def test_trigger_falls_back_to_the_location_header(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.post(REFRESHES, status=202, headers={"Location": f"{REFRESHES}/5f0ab3c2"})

    assert make_client(clock).trigger_refresh("ws-1", "ds-1") == "5f0ab3c2"


def test_get_refresh_finds_ours_among_others(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(f"{REFRESHES}?$top=20", json=history(("other", "Completed"), ("ours", "Failed")))

    refresh = make_client(clock).get_refresh("ws-1", "ds-1", "OURS")

    assert refresh is not None and refresh.status == "Failed" and refresh.finished


def test_wait_polls_until_a_final_state(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(f"{REFRESHES}?$top=20", json=history(("other", "Completed")))  # not listed yet
    mocked.get(f"{REFRESHES}?$top=20", json=history(("ours", "Unknown")))  # in progress
    mocked.get(f"{REFRESHES}?$top=20", json=history(("ours", "Completed")))

    refresh = make_client(clock).wait_for_refresh("ws-1", "ds-1", "ours", poll_every_s=15)

    assert refresh.status == "Completed"
    assert clock.sleeps == [15, 15]


def test_wait_gives_up_after_its_timeout(clock: FakeClock, mocked: responses.RequestsMock):
    for _ in range(3):  # at 0 s, 30 s and 60 s
        mocked.get(f"{REFRESHES}?$top=20", json=history(("ours", "Unknown")))

    with pytest.raises(WaitTimeout, match="still Unknown") as caught:
        make_client(clock).wait_for_refresh("ws-1", "ds-1", "ours", poll_every_s=30, timeout_s=60)

    assert caught.value.transient is True
    assert sum(clock.sleeps) == 60
