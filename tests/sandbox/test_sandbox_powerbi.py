"""Power BI refresh: accepted with a request id, finished after its time, 8 a day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import Wire

from m365perf.sandbox.testing import running_sandbox

REFRESH_S = 600


@pytest.fixture(scope="module")
def pbi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    path: Path = tmp_path_factory.mktemp("powerbi")
    with running_sandbox(path, seed=False, powerbi_refresh_s=REFRESH_S, powerbi_daily_limit=3) as s:
        yield Wire(s)


@pytest.fixture
def dataset(pbi: Wire) -> str:
    """The dataset's refresh path, after a day has passed since anything ran."""
    pbi.admin("POST", "/clock", json={"advance_s": 25 * 3600})
    workspace, dataset = pbi.health()["powerbi_workspace_id"], pbi.health()["powerbi_dataset_id"]
    return f"/groups/{workspace}/datasets/{dataset}/refreshes"


def _history(pbi: Wire, dataset: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pbi.powerbi("GET", dataset, params={"$top": "10"}).json()["value"]
    return rows


def test_refresh_is_accepted_and_completes_after_its_duration(pbi: Wire, dataset: str) -> None:
    response = pbi.powerbi("POST", dataset, json={"notifyOption": "NoNotification"})
    assert response.status_code == 202
    request_id = response.headers["x-ms-request-id"]
    assert response.headers["Location"].endswith(f"{dataset}/{request_id}")
    running = _history(pbi, dataset)[0]
    assert running["requestId"] == request_id
    assert running["status"] == "Unknown" and "endTime" not in running
    assert running["refreshType"] == "ViaApi"

    pbi.admin("POST", "/clock", json={"advance_s": REFRESH_S - 5})
    assert _history(pbi, dataset)[0]["status"] == "Unknown"
    pbi.admin("POST", "/clock", json={"advance_s": 10})
    done = _history(pbi, dataset)[0]
    assert done["status"] == "Completed" and done["endTime"] >= done["startTime"]


def test_a_second_refresh_while_one_runs_conflicts(pbi: Wire, dataset: str) -> None:
    assert pbi.powerbi("POST", dataset).status_code == 202
    assert pbi.powerbi("POST", dataset).status_code == 409


def test_the_daily_limit_refuses_further_refreshes_until_a_day_has_passed(
    pbi: Wire, dataset: str
) -> None:
    for _ in range(3):
        assert pbi.powerbi("POST", dataset).status_code == 202
        pbi.admin("POST", "/clock", json={"advance_s": REFRESH_S + 1})
    refused = pbi.powerbi("POST", dataset)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "Invalid dataset refresh request. Number of refresh requests in last 24 hours "
        "exceeded limit"
    )
    pbi.admin("POST", "/clock", json={"advance_s": 24 * 3600})
    assert pbi.powerbi("POST", dataset).status_code == 202


def test_a_failed_refresh_reports_its_exception(pbi: Wire, dataset: str) -> None:
    pbi.admin("POST", "/powerbi/fail-next")
    request_id = pbi.powerbi("POST", dataset).headers["x-ms-request-id"]
    pbi.admin("POST", "/clock", json={"advance_s": REFRESH_S + 1})
    row = next(r for r in _history(pbi, dataset) if r["requestId"] == request_id)
    assert row["status"] == "Failed" and "errorCode" in row["serviceExceptionJson"]


def test_unknown_dataset_and_enhanced_parameters_are_refused(pbi: Wire, dataset: str) -> None:
    workspace = pbi.health()["powerbi_workspace_id"]
    missing = pbi.powerbi("POST", f"/groups/{workspace}/datasets/nope/refreshes")
    assert missing.status_code == 404
    enhanced = pbi.powerbi("POST", dataset, json={"type": "full", "commitMode": "transactional"})
    assert enhanced.status_code == 400
