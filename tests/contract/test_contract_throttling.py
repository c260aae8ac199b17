"""The clients under the sandbox's throttling: tiny budgets, real 429s, real Retry-After waits.

Each test gets its own sandbox, because what one test spends from a budget would
change when the next one is throttled.

The client is limited to one request in flight per budget here. With more, a request
already on the wire when another thread's 429 comes back reaches the sandbox inside the
Retry-After window through no fault of the client, and the request log (which sees
arrivals, not what the client knew when it sent) would count it as a violation.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from contract_support import REGISTER, RESULT_KEY, RESULTS, Bench, open_bench

from m365perf.m365.http import Limits
from m365perf.sandbox.config import Budget
from m365perf.sandbox.seed import register_rows
from m365perf.sandbox.testing import retry_after_violations

pytestmark = pytest.mark.slow

# SharePoint: 20 resource units a second (ten list reads); the service mailbox: three
# mails a second. The sandbox answers 429 with Retry-After beyond that.
TINY_BUDGETS = {
    "sharepoint": Budget(limit=20, window_s=1),
    "mailbox": Budget(limit=3, window_s=1, concurrency=4),
}
LIST_READS = 24
MAILS = 9


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    """A fresh sandbox with tiny budgets; the client trusts it for more, so the sandbox says no."""
    limits = Limits(
        sharepoint_ru_per_minute=6000.0,  # the client believes in more than the tenant gives
        sharepoint_ru_burst=200.0,
        sharepoint_concurrency=1,
        mailbox_concurrency=1,
    )
    with open_bench(tmp_path, limits=limits, budgets=TINY_BUDGETS) as started:
        yield started


def test_a_burst_of_reads_and_mails_waits_out_every_retry_after(bench: Bench) -> None:
    graph, mail = bench.m365.graph, bench.m365.mail
    register = bench.list_id(REGISTER)
    indicators = [row["IndicatorId"] for row in register_rows()][:LIST_READS]
    recipient = "zoe.turner@contoso.gov.uk"

    def read(indicator: str) -> list[str]:
        found = graph.list_items(
            bench.site_id, register, filter=f"fields/IndicatorId eq '{indicator}'"
        )
        return [item.fields["IndicatorId"] for item in found]

    def send(number: int) -> None:
        mail.send_mail(
            bench.settings.service_mailbox,
            [recipient],
            f"Reminder {number}",
            "<p>Your return is due on Friday.</p>",
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        reads = [pool.submit(read, indicator) for indicator in indicators]
        mails = [pool.submit(send, number) for number in range(MAILS)]
        read_results = [future.result() for future in reads]
        for future in mails:
            future.result()

    assert read_results == [[indicator] for indicator in indicators]
    subjects = {m["subject"] for m in bench.inbox(recipient)}
    assert subjects == {f"Reminder {n}" for n in range(MAILS)}
    log = bench.requests_log()
    throttled = {r["budget"].split(":")[0] for r in log if r["status"] == 429}
    assert throttled == {"sharepoint", "mailbox"}  # the budgets really pushed back
    assert retry_after_violations(log) == []


def test_a_batch_upsert_resends_its_throttled_parts_and_writes_each_row_once(
    bench: Bench,
) -> None:
    graph, results = bench.m365.graph, bench.list_id(RESULTS)
    period = "2026/27 Q2"
    rows = [
        {"IndicatorId": row["IndicatorId"], "Period": period, "Value": float(number)}
        for number, row in enumerate(register_rows()[:20])
    ]

    written = graph.upsert_items(bench.site_id, results, RESULT_KEY, rows)

    log = bench.requests_log()
    parts = [r for r in log if r["batch_id"] and r["path"].endswith("/items")]
    assert any(r["status"] == 429 for r in parts)  # some parts were throttled...
    assert sum(r["status"] == 201 for r in parts) == len(rows)  # ...and each went in once
    assert retry_after_violations(log) == []
    keys = graph.read_keys(
        bench.site_id, results, RESULT_KEY, filter=f"fields/Period eq '{period}'"
    )
    assert {key: ref.id for key, ref in keys.items()} == written
    assert set(keys) == {(row["IndicatorId"], period) for row in rows}
