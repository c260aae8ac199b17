"""Two real ``m365perf serve`` processes on one PostgreSQL schema share Microsoft 365's
budgets: against the sandbox with its throttling on and the serves told the same limits,
together they receive no 429 and send nothing inside an open Retry-After window.

Counted from the sandbox's request log (``GET /_sandbox/requests``). The budgets are the
documented ones scaled down (a minute of SharePoint units, the bot's per-second rate,
four e-mails in flight per mailbox) so a short burst of work meets them; each serve alone
would respect them, so only a budget kept in the shared store keeps the pair within them.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from dependency_support import query, wait_for
from test_failover import FLOW, Serve, serve_env

from m365perf.messages import RequestCardId
from m365perf.messages.ids import ROUND_OPEN
from m365perf.sandbox.config import Budget
from m365perf.sandbox.testing import RunningSandbox, retry_after_violations, running_sandbox
from m365perf.store import create_store

pytestmark = pytest.mark.postgres

SHAREPOINT_RU_PER_MINUTE = 240
BOT_PER_SECOND = 5
BUDGETS = {
    "sharepoint": Budget(limit=SHAREPOINT_RU_PER_MINUTE, window_s=60),
    "bot": Budget(limit=BOT_PER_SECOND, window_s=1),
    "mailbox": Budget(limit=10_000, window_s=600, concurrency=4),
    "directory": Budget(limit=3_500, window_s=10),
}
WRITE_BACKS = 120  # 240 RU of writes plus the reads: over the minute's budget
CARDS = 40  # eight seconds of the bot's rate
MAILS = 24  # slow to send, so more than four would be in flight without a shared slot


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path, budgets=BUDGETS, mail_latency_s=0.3) as running:
        yield running


def test_two_serves_stay_within_the_shared_budgets(
    sandbox: RunningSandbox, postgres_schema_url: str, tmp_path: Path
) -> None:
    url = postgres_schema_url
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(FLOW, flows / FLOW.name)
    env = serve_env(sandbox, url) | {
        "M365PERF_SHAREPOINT_RU_PER_MINUTE": str(SHAREPOINT_RU_PER_MINUTE),
        "M365PERF_BOT_SENDS_PER_SECOND": str(BOT_PER_SECOND),
        "M365PERF_MAILBOX_CONCURRENCY": "4",
        "M365PERF_OUTBOX_IDLE_S": "0.2",
    }
    serves = [Serve("a", env, flows, tmp_path), Serve("b", env, flows, tmp_path)]
    try:
        for serve in serves:
            wait_for(f"serve {serve.name} answering", serve.ready)
        queued = queue_burst(sandbox, url, env["M365PERF_SERVICE_MAILBOX"])
        wait_for("the burst sent", lambda: done(url, queued), timeout_s=90)
    finally:
        for serve in serves:
            serve.stop()

    log = requests.get(f"{sandbox.base_url}/_sandbox/requests", timeout=30).json()["value"]
    statuses = Counter((r.get("budget"), r["status"]) for r in log)
    throttled = [r for r in log if r["status"] == 429]
    assert throttled == [], f"429s the shared budgets should have avoided: {statuses}"
    assert retry_after_violations(log) == []
    assert statuses[("sharepoint", 201)] == WRITE_BACKS  # every row written, once
    # The budgets were the store's, not each process's own.
    kept = {name for (name,) in query(url, "SELECT name FROM budget_ledger")}
    assert {"sharepoint", "bot"} <= kept
    assert any(name.startswith("mailbox:") and "#slot" in name for name in kept)


def queue_burst(sandbox: RunningSandbox, url: str, mailbox: str) -> str:
    """Queue write-backs, Teams cards and e-mails at once, as a busy morning would."""
    base = f"{sandbox.base_url}/_sandbox"
    users: list[dict[str, Any]] = requests.get(f"{base}/users", timeout=10).json()["value"]
    config = sandbox.config
    site = f"{config.sharepoint_host}:{config.site_path}"
    now = datetime.now(UTC)
    store = create_store(url)
    ids: list[int] = []
    try:
        with store.transaction() as tx:
            for n in range(WRITE_BACKS):
                payload = {
                    "site": site,
                    "list": "KPI Results",
                    "key_fields": ["IndicatorId", "Period"],
                    "fields": {"IndicatorId": f"BURST-{n:03}", "Period": "2026-11", "Value": n},
                }
                ids.append(_queue(tx, "write_back", "sharepoint", payload, now))
            for n in range(CARDS):
                user = users[n % len(users)]
                payload = {
                    "card_id": str(RequestCardId(900_000 + n, user["id"], ROUND_OPEN)),
                    "channel": "teams",
                    "user": {"id": user["id"], "name": user["display_name"], "email": user["mail"]},
                    "card": _card(f"Burst card {n}"),
                    "subject": f"Burst card {n}",
                    "summary": "A card of the burst",
                    "subject_type": "return",
                    "subject_id": 1,
                }
                ids.append(_queue(tx, "send_card", "bot", payload, now))
            for n in range(MAILS):
                payload = {
                    "to": [users[n % len(users)]["mail"]],
                    "subject": f"Burst mail {n}",
                    "html": "<p>Hello</p>",
                }
                ids.append(_queue(tx, "send_mail", f"mailbox:{mailbox.lower()}", payload, now))
    finally:
        store.close()
    return ",".join(str(i) for i in ids)


def _queue(tx: Any, kind: str, budget: str, payload: dict[str, Any], now: datetime) -> int:
    message, _ = tx.enqueue(
        kind, budget=budget, payload=payload, dedup_key=uuid.uuid4().hex, now=now
    )
    assert message.id is not None
    return int(message.id)


def _card(text: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


def done(url: str, ids: str) -> bool:
    rows = query(url, f"SELECT status, count(*) FROM outbox WHERE id IN ({ids}) GROUP BY status")
    counts = {status: int(n) for status, n in rows}
    assert counts.get("parked", 0) == 0, f"rows parked: {counts}"
    return set(counts) == {"done"}
