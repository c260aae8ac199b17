"""PowerBIClient against the sandbox: trigger, poll by request id, and the shared-capacity limits.

Polling "sleeps" on :class:`SandboxClock`, which moves the sandbox's clock instead of
waiting, so a two-minute refresh completes in a few requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from contract_support import Bench, SandboxClock, open_bench

from m365perf.m365.errors import BadRequest, ClientError
from m365perf.m365.powerbi import Refresh

pytestmark = pytest.mark.slow

REFRESH_S = 120.0
DAILY_LIMIT = 3
DAY_S = 24 * 3600


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """One sandbox; each test starts on a new sandbox day, so the daily count is its own."""
    with open_bench(
        tmp_path_factory.mktemp("powerbi"),
        powerbi_refresh_s=REFRESH_S,
        powerbi_daily_limit=DAILY_LIMIT,
    ) as started:
        yield started


@pytest.fixture
def clock(bench: Bench) -> SandboxClock:
    """A sandbox clock moved a day on: earlier tests' refreshes are finished and uncounted."""
    moved = SandboxClock(bench)
    moved.sleep(DAY_S + 1)
    return moved


def _run_to_end(bench: Bench, clock: SandboxClock) -> Refresh:
    powerbi = bench.m365.powerbi
    request_id = powerbi.trigger_refresh(bench.workspace_id, bench.dataset_id)
    return powerbi.wait_for_refresh(
        bench.workspace_id, bench.dataset_id, request_id, poll_every_s=30, clock=clock
    )


def test_a_refresh_is_polled_by_its_request_id_until_it_completes(
    bench: Bench, clock: SandboxClock
) -> None:
    powerbi = bench.m365.powerbi
    seen: list[str] = []
    request_id = powerbi.trigger_refresh(bench.workspace_id, bench.dataset_id)
    clock.slept.clear()

    refresh = powerbi.wait_for_refresh(
        bench.workspace_id,
        bench.dataset_id,
        request_id,
        poll_every_s=30,
        clock=clock,
        on_poll=lambda r: seen.append(r.status if r else "not listed"),
    )

    assert refresh.request_id == request_id
    assert refresh.status == "Completed" and refresh.finished
    assert refresh.end_time is not None and refresh.service_exception_json is None
    assert seen[0] == "Unknown" and seen[-1] == "Completed"
    assert REFRESH_S <= sum(clock.slept) < REFRESH_S + 30  # stopped at the first poll after


def test_a_failed_refresh_is_reported_with_its_reason_not_raised(
    bench: Bench, clock: SandboxClock
) -> None:
    bench.admin("POST", "/powerbi/fail-next")

    refresh = _run_to_end(bench, clock)

    assert refresh.status == "Failed"
    assert refresh.service_exception_json is not None
    assert "errorCode" in json.loads(refresh.service_exception_json)


def test_a_second_refresh_while_one_runs_is_refused(bench: Bench, clock: SandboxClock) -> None:
    powerbi = bench.m365.powerbi
    running = powerbi.trigger_refresh(bench.workspace_id, bench.dataset_id)

    with pytest.raises(ClientError) as refused:
        powerbi.trigger_refresh(bench.workspace_id, bench.dataset_id)

    assert refused.value.status == 409
    assert not refused.value.transient
    finished = powerbi.wait_for_refresh(
        bench.workspace_id, bench.dataset_id, running, poll_every_s=30, clock=clock
    )
    assert finished.status == "Completed"


def test_the_daily_refresh_limit_surfaces_as_a_bad_request(
    bench: Bench, clock: SandboxClock
) -> None:
    for _ in range(DAILY_LIMIT):
        assert _run_to_end(bench, clock).status == "Completed"

    with pytest.raises(BadRequest) as refused:
        bench.m365.powerbi.trigger_refresh(bench.workspace_id, bench.dataset_id)

    assert refused.value.status == 400
    assert not refused.value.transient
    assert "exceeded limit" in refused.value.body_excerpt
    clock.sleep(DAY_S)  # the next day the allowance is back
    assert _run_to_end(bench, clock).status == "Completed"
