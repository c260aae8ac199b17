"""Final approval → row in SharePoint: from the write-back the approval queues to the row
written, with the dispatcher's continuous loop as ``serve`` runs it (idle 0.5 s).

Single: one approval at a time (10; ``--small`` 3). Burst: 100 approvals at once (``--small``
20). Each row's latency is its outbox row's done time (stamped once SharePoint has
answered the write) less its queue time. The click's own transaction that queues the
write-back is the click benchmark's; the sandbox's documented budgets are on.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from harness import Figure

DESCRIPTION = "final approval → row in SharePoint, single and a burst of 100: p95"

GOAL_S = 2.0


def run(small: bool) -> list[Figure]:
    from scenarios import _budgets as b

    singles, burst = (3, 20) if small else (10, 100)
    with (
        b.sandbox() as running,
        tempfile.TemporaryDirectory() as folder,
        b.production_store(Path(folder)) as (store, backend),
    ):
        live = b.engine(running, store)
        with b.draining(live, idle_s=0.5):
            one = []
            for n in range(singles):
                (row_id,) = b.queue(store, b.write_backs(running, 1, tag=f"s{n}"))
                b.wait_done(store, [row_id])
                one += _latencies(store, [row_id])
                time.sleep(0.3)  # the loop is idle again, as between two people's clicks
            ids = b.queue(store, b.write_backs(running, burst, tag="burst"))
            b.wait_done(store, ids)
            many = _latencies(store, ids)
    return [
        Figure(
            "single approval → row, p95",
            _p95(one),
            "s",
            goal=GOAL_S,
            note=f"{singles} runs; {backend}",
        ),
        Figure(f"burst of {burst} → rows, p95", _p95(many), "s", goal=GOAL_S),
    ]


def _latencies(store, ids: list[int]) -> list[float]:  # type: ignore[no-untyped-def]
    wanted = set(ids)
    with store.transaction() as tx:
        rows = [m for m in tx.list_outbox() if m.id in wanted]
    return [(m.updated_at - m.created_at).total_seconds() for m in rows]


def _p95(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]
