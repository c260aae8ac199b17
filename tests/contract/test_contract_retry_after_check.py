"""The request-log check the throttling contract relies on: who really ignored a Retry-After."""

from __future__ import annotations

from typing import Any

from m365perf.sandbox.testing import retry_after_violations


def _row(
    id: int, at: float, status: int, *, retry_after: int | None = None, batch: str | None = None
) -> dict[str, Any]:
    return {
        "id": id,
        "at": at,
        "method": "POST" if batch else "GET",
        "path": "/v1.0/sites/s/lists/l/items",
        "status": status,
        "budget": "sharepoint",
        "retry_after": retry_after,
        "fault": None,
        "batch_id": batch,
    }


def test_parts_of_one_batch_are_not_blamed_for_each_others_429() -> None:
    log = [
        _row(1, 10.00, 201, batch="b1"),
        _row(2, 10.01, 429, retry_after=2, batch="b1"),
        _row(3, 10.02, 429, retry_after=3, batch="b1"),  # left the client with part 2
    ]

    assert retry_after_violations(log) == []


def test_a_later_batch_sent_inside_the_window_is_named() -> None:
    log = [
        _row(1, 10.00, 429, retry_after=2, batch="b1"),
        _row(2, 11.00, 201, batch="b2"),
        _row(3, 12.50, 201, batch="b3"),
    ]

    assert [r["id"] for r in retry_after_violations(log)] == [2]


def test_a_plain_request_inside_another_requests_window_is_named() -> None:
    log = [
        _row(1, 10.00, 429, retry_after=1),
        _row(2, 10.50, 200),
        _row(3, 11.00, 200),
    ]

    assert [r["id"] for r in retry_after_violations(log)] == [2]
