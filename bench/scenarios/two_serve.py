"""One against two ``m365perf serve`` processes on one PostgreSQL schema draining a burst.

The burst (owner cards to 100 people, e-mails from the service mailbox, write-backs) is
queued at once with the sandbox's documented budgets on and the serves told the same
limits; the figure is how much faster two drain it than one, with the 429s and the
requests sent inside an open Retry-After window counted from the sandbox's request log
(both should be 0: the budgets are shared in the database). Click throughput with two
serves is not measured here. ``--small``: a burst a tenth the size. Needs PostgreSQL
(``M365PERF_BENCH_POSTGRES_URL``, default the tests' local one).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import Figure

DESCRIPTION = "one vs two serve processes on PostgreSQL: drain speed-up, 429s, Retry-After"


def run(small: bool) -> list[Figure]:
    from scenarios import _budgets as b

    cards, mails, rows = (40, 10, 20) if small else (400, 100, 200)
    drained: dict[int, float] = {}
    bounds: dict[int, float] = {}
    throttled = violations = 0
    for count in (1, 2):
        took, t429, bad, bounds[count] = _drain(b, count, cards, mails, rows)
        if took is None:
            return [Figure("two serves: skipped", 0, "", note="PostgreSQL not reachable")]
        drained[count], throttled, violations = took, throttled + t429, violations + bad
    speedup = drained[1] / drained[2]
    burst = cards + mails + rows
    return [
        Figure(
            "outbox drain speed-up, two serves over one",
            speedup,
            "x",
            goal=1.6,
            better="higher",
            note=f"{burst} rows: {drained[1]:.1f}s with one, {drained[2]:.1f}s with two",
        ),
        Figure(
            "two serves: drain time / bot budget bound",
            drained[2] / bounds[2] if bounds[2] else float("inf"),
            "x",
            goal=1.15,
            note=f"bound {bounds[2]:.1f}s (one serve: {drained[1] / bounds[1]:.2f}x of "
            f"{bounds[1]:.1f}s)",
        ),
        Figure("HTTP 429s (both runs)", throttled, "responses", note="want 0"),
        Figure(
            "sent inside an open Retry-After (both runs)", violations, "requests", note="want 0"
        ),
    ]


def _drain(b, serves: int, cards: int, mails: int, rows: int):  # type: ignore[no-untyped-def]
    from dependency_support import wait_for
    from test_failover import FLOW, Serve, serve_env

    from m365perf.sandbox.testing import retry_after_violations
    from m365perf.store import create_store

    with (
        b.postgres_schema() as url,
        b.sandbox(mail_latency_s=0.05) as running,
        tempfile.TemporaryDirectory() as folder,
    ):
        if url is None:
            return None, 0, 0, 0.0
        work = Path(folder)
        flows = work / "flows"
        flows.mkdir()
        # The flow opens nothing during the run: the burst is the only work.
        text = FLOW.read_text().replace('collect_from: "2025/26"', 'collect_from: "2030/31"')
        (flows / FLOW.name).write_text(text)
        env = serve_env(running, url) | {"M365PERF_LOG_FORMAT": "text"}
        started = [Serve(f"s{n}", env, flows, work) for n in range(serves)]
        store = create_store(url)
        try:
            for serve in started:
                wait_for(f"serve {serve.name} answering", serve.ready, timeout_s=60)
            mailbox = env["M365PERF_SERVICE_MAILBOX"].lower()
            burst = b.owner_cards(running, cards, 100) + b.write_backs(running, rows)
            burst += [
                (
                    "send_mail",
                    f"mailbox:{mailbox}",
                    {"to": [u["mail"]], "subject": f"Reminder {n}", "html": "<p>Due Friday</p>"},
                )
                for n, u in enumerate((b.users(running) * (mails // 50 + 1))[:mails])
            ]
            ids = b.queue(store, burst)
            took = b.wait_done(store, ids, timeout_s=600)
        finally:
            for serve in started:
                serve.stop()
            store.close()
        log = b.request_log(running)
        bound = b.implied_bound_s(b.spent(log, "bot"), 50, 1)
        throttled = sum(1 for r in log if r["status"] == 429)
        return took, throttled, len(retry_after_violations(log)), bound
