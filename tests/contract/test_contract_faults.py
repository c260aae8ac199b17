"""The clients against a sandbox that fails on purpose: 503s and dropped connections.

The faults come from the sandbox's seeded RNG, one draw per request in arrival order,
so these single-threaded tests meet the same faults on every run. A drop happens after
the sandbox's handler ran: the write took effect but the client never heard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_support import REGISTER, RESULT_KEY, RESULTS, Bench, open_bench

from m365perf.m365.errors import BatchError, TransportError
from m365perf.m365.http import Limits, RetryPolicy
from m365perf.sandbox.config import Faults
from m365perf.sandbox.seed import register_rows

pytestmark = pytest.mark.slow

FAULTS = Faults(share_503=0.15, share_drop=0.15, retry_after_s=0)
SEED = 20260401
DISPATCHER_RUNS = 12


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    """A sandbox of its own per test: another test's requests would shift the fault draws."""
    # Short backoff after a dropped connection keeps the test quick; the logic is the same.
    limits = Limits(
        sharepoint_ru_burst=1000.0, retry=RetryPolicy(backoff_base_s=0.02, backoff_cap_s=0.1)
    )
    with open_bench(
        tmp_path, limits=limits, page_size=20, throttle=False, faults=FAULTS, rng_seed=SEED
    ) as started:
        yield started


def test_reads_are_retried_through_503s_and_dropped_connections(bench: Bench) -> None:
    graph = bench.m365.graph
    seeded = register_rows(bench.sandbox.config.mail_domain)
    people = bench.directory()

    items = list(graph.list_items(bench.site_id, bench.list_id(REGISTER)))
    users = [graph.get_user(upn) for upn in sorted(people)]

    assert [item.fields["IndicatorId"] for item in items] == [r["IndicatorId"] for r in seeded]
    assert [user.id for user in users] == [people[upn]["id"] for upn in sorted(people)]
    faults = {r["fault"] for r in bench.requests_log() if r["method"] == "GET"}
    assert {"503", "drop"} <= faults  # both kinds of failure were met, and got through


def test_a_batch_written_again_after_failures_holds_each_key_exactly_once(
    bench: Bench,
) -> None:
    """What the dispatcher does: run the upsert again until it goes through.

    A dropped ``$batch`` may have created items the client was never told about; the
    next run reads the keys first, so it updates those items instead of adding twins.
    """
    graph, results = bench.m365.graph, bench.list_id(RESULTS)
    period = "2026/27 Q3"
    rows = [
        {"IndicatorId": row["IndicatorId"], "Period": period, "Value": float(number)}
        for number, row in enumerate(register_rows()[:45])
    ]
    failures: list[Exception] = []

    for _ in range(DISPATCHER_RUNS):
        try:
            written = graph.upsert_items(bench.site_id, results, RESULT_KEY, rows)
            break
        except (TransportError, BatchError) as failure:
            assert failure.transient
            failures.append(failure)
    else:
        pytest.fail(f"the upsert never went through: {failures}")

    log = bench.requests_log()
    dropped = {r["batch_id"] for r in log if r["fault"] == "drop" and r["path"].endswith("$batch")}
    # The dangerous case happened: items were created by a batch whose reply was lost.
    assert any(r["batch_id"] in dropped and r["status"] == 201 for r in log)
    keys = graph.read_keys(
        bench.site_id, results, RESULT_KEY, filter=f"fields/Period eq '{period}'"
    )
    assert set(keys) == {(row["IndicatorId"], period) for row in rows}
    assert {key: ref.id for key, ref in keys.items()} == written
    stored = graph.list_items(
        bench.site_id,
        results,
        fields=["IndicatorId", "Value"],
        filter=f"fields/Period eq '{period}'",
    )
    assert sorted((i.fields["IndicatorId"], i.fields["Value"]) for i in stored) == sorted(
        (row["IndicatorId"], row["Value"]) for row in rows
    )
