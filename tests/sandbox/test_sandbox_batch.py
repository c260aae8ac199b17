"""Graph JSON batching: parts run on their own, the envelope says 200 regardless."""

from __future__ import annotations

from typing import Any

from sandbox_support import Wire

from m365perf.sandbox.config import Budget

JSON = {"Content-Type": "application/json"}


def _by_id(response: Any) -> dict[str, dict[str, Any]]:
    return {part["id"]: part for part in response.json()["responses"]}


def test_mixed_parts_get_their_own_statuses(wire: Wire) -> None:
    items = wire.list_path("KPI Results").lstrip("/") + "/items"
    seed = wire.graph("POST", "/" + items, json={"fields": {"IndicatorId": "COV-910"}}).json()
    stale_etag = seed["eTag"]
    wire.graph("PATCH", f"/{items}/{seed['id']}/fields", json={"Period": "2025/26 Q1"})
    batch = wire.graph(
        "POST",
        "/$batch",
        json={
            "requests": [
                {
                    "id": "1",
                    "method": "POST",
                    "url": f"/{items}",
                    "headers": JSON,
                    "body": {"fields": {"IndicatorId": "COV-911", "Value": 1}},
                },
                {"id": "2", "method": "GET", "url": f"/{items}/999999"},
                {
                    "id": "3",
                    "method": "PATCH",
                    "url": f"/{items}/{seed['id']}/fields",
                    "headers": {**JSON, "If-Match": stale_etag},
                    "body": {"Value": 2},
                },
                {"id": "4", "method": "GET", "url": "/users/nadia.clarke@contoso.gov.uk/manager"},
                {"id": "5", "method": "POST", "url": f"/{items}", "body": {"fields": {}}},
            ]
        },
    )
    assert batch.status_code == 200
    parts = _by_id(batch)
    assert parts["1"]["status"] == 201 and parts["1"]["body"]["fields"]["IndicatorId"] == "COV-911"
    assert parts["2"]["status"] == 404
    assert parts["3"]["status"] == 412
    assert parts["4"]["status"] == 200
    assert parts["4"]["body"]["displayName"] == "Julia Ashworth"
    assert parts["5"]["status"] == 400  # a body without Content-Type


def test_more_than_twenty_requests_or_duplicate_ids_fail_the_batch(wire: Wire) -> None:
    part = {"method": "GET", "url": "/users/nadia.clarke@contoso.gov.uk"}
    too_many = [{"id": str(n), **part} for n in range(21)]
    assert wire.graph("POST", "/$batch", json={"requests": too_many}).status_code == 400
    twins = [{"id": "a", **part}, {"id": "A", **part}]
    assert wire.graph("POST", "/$batch", json={"requests": twins}).status_code == 400
    twenty = [{"id": str(n), **part} for n in range(20)]
    assert wire.graph("POST", "/$batch", json={"requests": twenty}).status_code == 200


def test_a_part_whose_dependency_failed_gets_424(wire: Wire) -> None:
    batch = wire.graph(
        "POST",
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users/nobody@contoso.gov.uk"},
                {
                    "id": "2",
                    "method": "GET",
                    "url": "/users/nadia.clarke@contoso.gov.uk",
                    "dependsOn": ["1"],
                },
            ]
        },
    )
    parts = _by_id(batch)
    assert parts["1"]["status"] == 404 and parts["2"]["status"] == 424


def test_throttled_parts_carry_retry_after_inside_a_200_envelope(fresh: Any) -> None:
    budgets = {"sharepoint": Budget(limit=3, window_s=60)}
    with fresh(budgets=budgets, seed=True) as wire:
        items = wire.list_path("KPI Register").lstrip("/") + "/items"
        batch = wire.graph(
            "POST",
            "/$batch",
            json={
                "requests": [
                    {"id": str(n), "method": "GET", "url": f"/{items}/{n}"} for n in range(1, 7)
                ]
            },
        )
        assert batch.status_code == 200
        statuses = sorted(p["status"] for p in batch.json()["responses"])
        assert statuses == [200, 200, 200, 429, 429, 429]
        for part in batch.json()["responses"]:
            if part["status"] == 429:
                assert int(part["headers"]["Retry-After"]) >= 1
                assert part["body"]["error"]["code"] == "activityLimitReached"
        log = [r for r in wire.requests_log() if r["batch_id"]]
        assert len({r["batch_id"] for r in log}) == 1
        assert sorted(r["status"] for r in log if r["budget"] == "sharepoint") == statuses
