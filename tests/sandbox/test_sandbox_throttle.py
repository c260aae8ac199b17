"""Budgets answer 429 with Retry-After, and the request log shows who ignored it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from m365perf.sandbox.config import Budget
from m365perf.sandbox.testing import retry_after_violations

SMALL = {
    "sharepoint": Budget(limit=4, window_s=60),
    "mailbox": Budget(limit=100, window_s=60, concurrency=4),
    "bot": Budget(limit=2, window_s=60),
}


def test_sharepoint_budget_throttles_with_retry_after_and_ratelimit_headers(fresh: Any) -> None:
    with fresh(budgets=SMALL) as wire:
        item = wire.list_path("KPI Register") + "/items/1"
        statuses = [wire.graph("GET", item) for _ in range(5)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 200, 429]
        throttled = statuses[-1]
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.headers["RateLimit-Limit"] == "4"
        assert throttled.headers["RateLimit-Remaining"] == "0"
        # As Microsoft's documented 429: the reset is the Retry-After, not a full refill.
        assert throttled.headers["RateLimit-Reset"] == throttled.headers["Retry-After"]
        assert int(statuses[3].headers["RateLimit-Reset"]) == 60  # a warning: a minute to full
        assert throttled.json()["error"]["code"] == "activityLimitReached"
        assert "RateLimit-Limit" in statuses[3].headers  # 80% used: warned before the 429
        assert "RateLimit-Limit" not in statuses[0].headers
        rows = [r for r in wire.requests_log(budget="sharepoint") if r["status"] == 429]
        assert len(rows) == 1 and rows[0]["retry_after"] == int(throttled.headers["Retry-After"])


def test_the_log_names_a_request_sent_before_retry_after_passed(fresh: Any) -> None:
    with fresh(budgets=SMALL) as wire:
        item = wire.list_path("KPI Register") + "/items/1"
        for _ in range(5):
            wire.graph("GET", item)
        assert retry_after_violations(wire.requests_log()) == []
        impatient = wire.graph("GET", item)
        assert impatient.status_code == 429
        offenders = retry_after_violations(wire.requests_log())
        assert [o["path"] for o in offenders] == ["/v1.0" + item]
        assert offenders[0]["status"] == 429
        other_budget = wire.graph("GET", "/users/nadia.clarke@contoso.gov.uk")
        assert other_budget.status_code == 200  # a throttled budget does not block others


def _mail(to: str) -> dict[str, Any]:
    return {
        "message": {
            "subject": "Reminder",
            "body": {"contentType": "Text", "content": "Your return is due."},
            "toRecipients": [{"emailAddress": {"address": to}}],
        }
    }


def test_a_mailbox_takes_four_requests_at_once(fresh: Any) -> None:
    with fresh(budgets=SMALL, mail_latency_s=2.0) as wire:
        wire.token()
        sender = "/users/performance@contoso.gov.uk/sendMail"
        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [
                pool.submit(wire.graph, "POST", sender, json=_mail("zoe.turner@contoso.gov.uk"))
                for _ in range(6)
            ]
            results = [f.result() for f in futures]
        statuses = sorted(r.status_code for r in results)
        assert statuses == [202, 202, 202, 202, 429, 429]
        refused = next(r for r in results if r.status_code == 429)
        assert refused.json()["error"]["message"] == (
            "Application is over its MailboxConcurrency limit."
        )
        other = wire.graph("GET", "/users/zoe.turner@contoso.gov.uk")
        assert other.status_code == 200


def test_bot_sends_are_budgeted(fresh: Any) -> None:
    with fresh(budgets=SMALL) as wire:
        user = wire.user("owen.walsh@contoso.gov.uk")
        config = wire.sandbox.config
        body = {
            "bot": {"id": f"28:{config.bot_app_id}"},
            "members": [{"id": user["teams_id"]}],
            "channelData": {"tenant": {"id": config.tenant_id}},
            "isGroup": False,
        }
        statuses = [wire.bot("POST", "/conversations", json=body).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]


def test_throttling_can_be_switched_off(fresh: Any) -> None:
    with fresh(budgets=SMALL, throttle=False) as wire:
        item = wire.list_path("KPI Register") + "/items/1"
        assert {wire.graph("GET", item).status_code for _ in range(8)} == {200}
