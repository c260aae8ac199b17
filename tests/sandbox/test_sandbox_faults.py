"""Fault injection replays with its seed; a dropped write still happened."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from sandbox_support import Wire

from m365perf.sandbox.config import Faults
from m365perf.sandbox.testing import running_sandbox

FAULTS = Faults(share_503=0.25, share_drop=0.15, share_slow=0.1, slow_s=0.05)


def _outcomes(wire: Wire, count: int) -> list[str]:
    path = "/users/performance@contoso.gov.uk"
    outcomes = []
    for _ in range(count):
        try:
            outcomes.append(str(wire.graph("GET", path).status_code))
        except requests.ConnectionError:
            outcomes.append("dropped")
    return outcomes


def _run(path: Path, seed: int) -> tuple[list[str], list[str | None]]:
    with running_sandbox(path, seed=False, faults=FAULTS, rng_seed=seed) as sandbox:
        wire = Wire(sandbox)
        wire.token()
        outcomes = _outcomes(wire, 40)
        faults = [r["fault"] for r in wire.requests_log() if r["path"].startswith("/v1.0/")]
        return outcomes, faults


def test_the_same_seed_gives_the_same_faults(tmp_path: Path) -> None:
    first, first_log = _run(tmp_path / "a", seed=7)
    second, second_log = _run(tmp_path / "b", seed=7)
    other, _ = _run(tmp_path / "c", seed=8)
    assert first == second and first_log == second_log
    assert {"200", "503", "dropped"} <= set(first)
    assert "slow" in first_log
    assert other != first
    assert [o == "dropped" for o in first] == [f == "drop" for f in first_log]


def test_a_503_says_when_to_come_back(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, seed=False, faults=Faults(share_503=1.0)) as sandbox:
        response = Wire(sandbox).graph("GET", "/users/performance@contoso.gov.uk")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["error"]["code"] == "serviceNotAvailable"


def test_a_dropped_create_was_still_made(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, faults=Faults(share_drop=1.0)) as sandbox:
        wire = Wire(sandbox)
        items = wire.list_path("KPI Results") + "/items"
        try:
            wire.graph("POST", items, json={"fields": {"IndicatorId": "COV-950"}})
            raise AssertionError("the connection should have been dropped")
        except requests.ConnectionError:
            pass
        log = wire.requests_log()
        assert [(r["method"], r["status"], r["fault"]) for r in log if r["method"] == "POST"][
            -1
        ] == (
            "POST",
            201,
            "drop",
        )
    with running_sandbox(tmp_path) as sandbox:
        wire = Wire(sandbox)
        found = wire.graph(
            "GET", items, params={"$filter": "fields/IndicatorId eq 'COV-950'", "expand": "fields"}
        )
        assert [i["fields"]["IndicatorId"] for i in found.json()["value"]] == ["COV-950"]


def test_a_throttling_fault_says_when_to_come_back(tmp_path: Path) -> None:
    faults = Faults(share_429=1.0, retry_after_s=3)
    with running_sandbox(tmp_path, seed=False, faults=faults) as sandbox:
        response = Wire(sandbox).graph("GET", "/users/performance@contoso.gov.uk")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"


def test_a_slow_create_is_made_though_the_client_gave_up_waiting(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, faults=Faults(share_slow=1.0, slow_s=3.0)) as sandbox:
        wire = Wire(sandbox)
        items = f"{sandbox.base_url}/v1.0" + wire.list_path("KPI Results") + "/items"
        headers = {"Authorization": f"Bearer {wire.token()}"}
        try:
            body = {"fields": {"IndicatorId": "COV-951"}}
            requests.post(items, json=body, headers=headers, timeout=0.5)
            raise AssertionError("the answer should have come after the client's timeout")
        except requests.Timeout:
            pass
        # The request is logged once its held-back answer has gone out.
        for _ in range(200):
            made = [r for r in wire.requests_log() if r["path"].endswith("/items")]
            if made:
                break
            time.sleep(0.05)
        assert [(r["status"], r["fault"]) for r in made] == [(201, "slow")]


def test_the_token_endpoint_is_busy_only_when_asked(tmp_path: Path) -> None:
    busy = Faults(share_503=1.0, token_endpoint=True)
    with running_sandbox(tmp_path, seed=False, faults=busy) as sandbox:
        url = f"{sandbox.base_url}/{sandbox.config.tenant_id}/oauth2/v2.0/token"
        answer = requests.post(url, data={"grant_type": "client_credentials"}, timeout=10)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error"] == "temporarily_unavailable"
    assert Faults.parse("0.2").token_endpoint and not Faults(share_503=1.0).token_endpoint


def test_one_rate_breaks_requests_in_every_way() -> None:
    faults = Faults.parse("0.2,retry_after=0,slow_s=2")
    shares = (faults.share_429, faults.share_503, faults.share_drop, faults.share_slow)
    assert [round(s, 3) for s in shares] == [0.06, 0.06, 0.06, 0.02]
    assert (faults.retry_after_s, faults.slow_s) == (0, 2.0)
