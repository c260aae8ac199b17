"""An empty or unreadable register never opens a cycle at the scheduled opening time.

Against the sandbox over HTTP: the service's scheduler reaches the monthly flow's
opening time with a register that has no due row, or a register list that is not
there. It logs one clear message (no traceback), opens no cycle and sends nothing to
anyone; the CSV side of the same promise is in ``tests/cli/test_cli_cycle.py``.
"""

from __future__ import annotations

import logging

import pytest
from integration_support import bench, monthly_flow, opening_time, sandbox_health

from m365perf.flows import Flow
from m365perf.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.slow

PERIOD = "2026-10"


def _with_register(flow: Flow, **changes: object) -> Flow:
    return flow.model_copy(update={"source": flow.source.model_copy(update=changes)})


@pytest.mark.parametrize(
    ("case", "changes", "message"),
    [
        (
            "no row is due",
            {"filter": {"Frequency": "Fortnightly"}},
            "monthly-corporate-kpis 2026-10: no register row is due (does the flow's filter "
            "match any row?), so no indicator can be asked; no cycle was opened; will try "
            "again at the next opening time",
        ),
        (
            "the register list is not there",
            {"list_title": "KPI Register (archived)"},
            "cannot open monthly-corporate-kpis 2026-10: its register cannot be read (",
        ),
    ],
)
def test_the_scheduled_open_opens_nothing_and_sends_nothing(
    sandbox: RunningSandbox,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    case: str,
    changes: dict[str, object],
    message: str,
) -> None:
    flow = _with_register(monthly_flow(sandbox_health(sandbox)), **changes)
    start = opening_time(flow, PERIOD)
    with bench(sandbox, database_url, start=start, flow=flow) as council:
        with caplog.at_level(logging.WARNING, logger="m365perf"):
            assert council.service.open_due_cycles() == [], case
        council.service.settle()
        with council.store.transaction() as tx:
            assert tx.list_cycles() == []
        for upn in council.everyone():
            assert council.chat_cards(upn) == [], upn
            assert council.mails(upn) == [], upn
    said = [r for r in caplog.records if r.name.startswith("m365perf.service")]
    assert any(r.getMessage().startswith(message) for r in said), [r.getMessage() for r in said]
    assert all(r.exc_info is None for r in said), "a clear message, not a traceback"
