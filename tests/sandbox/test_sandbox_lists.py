"""SharePoint lists through Graph: site and list lookup, paging, filters, writes, eTags."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from sandbox_support import Wire

from m365perf.sandbox.seed import register_rows

PREFER = {"Prefer": "HonorNonIndexedQueriesWarningMayFailRandomly"}


def _all_pages(wire: Wire, path: str, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Follow @odata.nextLink to the end; returns the items and the number of pages."""
    response = wire.graph("GET", path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    items, pages = list(body["value"]), 1
    while "@odata.nextLink" in body:
        assert body["@odata.nextLink"].startswith(f"{wire.base}/v1.0/")
        body = wire.graph("GET", body["@odata.nextLink"]).json()
        items.extend(body["value"])
        pages += 1
    return items, pages


def test_site_by_host_and_path_then_list_by_title(wire: Wire) -> None:
    site = wire.graph("GET", "/sites/contoso.sharepoint.com:/sites/performance")
    assert site.status_code == 200
    site_id = site.json()["id"]
    assert site_id.startswith("contoso.sharepoint.com,") and site_id.count(",") == 2
    found = wire.graph(
        "GET", f"/sites/{site_id}/lists", params={"$filter": "displayName eq 'KPI Register'"}
    )
    assert [lst["displayName"] for lst in found.json()["value"]] == ["KPI Register"]
    by_title = wire.graph("GET", f"/sites/{site_id}/lists/{quote('KPI Register')}")
    assert by_title.json()["id"] == found.json()["value"][0]["id"]
    missing = wire.graph("GET", "/sites/contoso.sharepoint.com:/sites/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "itemNotFound"


def test_paging_follows_next_links_through_every_item(wire: Wire) -> None:
    items, pages = _all_pages(
        wire, wire.list_path("KPI Register") + "/items", expand="fields(select=IndicatorId)"
    )
    assert pages > 3
    ids = [item["fields"]["IndicatorId"] for item in items]
    assert sorted(ids) == sorted(row["IndicatorId"] for row in register_rows())
    assert len(ids) == len(set(ids))


def test_top_sets_the_page_size_up_to_the_server_limit(wire: Wire) -> None:
    path = wire.list_path("KPI Register") + "/items"
    two = wire.graph("GET", path, params={"$top": "2"}).json()
    assert len(two["value"]) == 2 and "$top=2" in two["@odata.nextLink"]
    capped = wire.graph("GET", path, params={"$top": "999"}).json()
    assert len(capped["value"]) == wire.sandbox.config.page_size


def test_select_inside_expand_limits_the_fields(wire: Wire) -> None:
    body = wire.graph(
        "GET",
        wire.list_path("KPI Register") + "/items",
        params={"$expand": "fields($select=IndicatorId,Owner)", "$top": "1"},
    ).json()
    fields = body["value"][0]["fields"]
    assert set(fields) == {"@odata.etag", "IndicatorId", "Owner"}
    bare = wire.graph("GET", wire.list_path("KPI Register") + "/items", params={"$top": "1"})
    assert "fields" not in bare.json()["value"][0]


def test_filter_on_indexed_columns(wire: Wire) -> None:
    path = wire.list_path("KPI Register") + "/items"
    items, _ = _all_pages(
        wire, path, expand="fields(select=IndicatorId,Active)", **{"$filter": "fields/Active eq 1"}
    )
    expected = {r["IndicatorId"] for r in register_rows() if r["Active"]}
    assert {i["fields"]["IndicatorId"] for i in items} == expected
    one, _ = _all_pages(
        wire,
        path,
        expand="fields",
        **{"$filter": "fields/IndicatorId eq 'COV-058' and fields/Active eq true"},
    )
    assert [i["fields"]["Title"] for i in one] == ["Council tax collection rate"]


def test_filter_on_a_column_that_is_not_indexed_is_refused_unless_preferred(wire: Wire) -> None:
    path = wire.list_path("KPI Register") + "/items"
    refused = wire.graph("GET", path, params={"$filter": "fields/Service eq 'Adults and Health'"})
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        **refused.json()["error"],
        "code": "invalidRequest",
        "message": "Field 'Service' cannot be referenced in filter or orderby as it is not "
        "indexed. Provide the 'Prefer: HonorNonIndexedQueriesWarningMayFailRandomly' header "
        "to allow this.",
    }
    allowed = wire.graph(
        "GET",
        path,
        params={"$filter": "fields/Service eq 'Adults and Health'", "expand": "fields"},
        headers=PREFER,
    )
    assert allowed.status_code == 200
    assert {i["fields"]["Service"] for i in allowed.json()["value"]} == {"Adults and Health"}


def test_create_read_update_with_etags_and_delete(wire: Wire) -> None:
    path = wire.list_path("KPI Results") + "/items"
    created = wire.graph(
        "POST",
        path,
        json={
            "fields": {
                "Title": "COV-900 2025/26 Q1",
                "IndicatorId": "COV-900",
                "Period": "2025/26 Q1",
                "Value": 41.5,
            }
        },
    )
    assert created.status_code == 201
    item = created.json()
    assert item["id"] and item["eTag"] and item["fields"]["Value"] == 41.5
    item_path = f"{path}/{item['id']}"
    fetched = wire.graph("GET", item_path, params={"expand": "fields"}).json()
    assert fetched["eTag"] == item["eTag"]

    updated = wire.graph(
        "PATCH", f"{item_path}/fields", json={"Value": 43}, headers={"If-Match": item["eTag"]}
    )
    assert updated.status_code == 200
    assert updated.json()["Value"] == 43 and updated.json()["IndicatorId"] == "COV-900"
    new_etag = updated.json()["@odata.etag"]
    assert new_etag != item["eTag"]

    stale = wire.graph(
        "PATCH", f"{item_path}/fields", json={"Value": 1}, headers={"If-Match": item["eTag"]}
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "preconditionFailed"
    after = wire.graph("GET", item_path, params={"expand": "fields"}).json()
    assert after["fields"]["Value"] == 43 and after["eTag"] == new_etag

    assert wire.graph("DELETE", item_path).status_code == 204
    assert wire.graph("GET", item_path).status_code == 404


def test_the_result_written_is_found_by_its_indexed_key(wire: Wire) -> None:
    path = wire.list_path("KPI Results") + "/items"
    fields = {"IndicatorId": "COV-901", "Period": "2025/26 Q2", "Value": 7}
    assert wire.graph("POST", path, json={"fields": fields}).status_code == 201
    found = wire.graph(
        "GET",
        path,
        params={
            "$filter": "fields/IndicatorId eq 'COV-901' and fields/Period eq '2025/26 Q2'",
            "expand": "fields(select=Value)",
        },
    ).json()["value"]
    assert [i["fields"]["Value"] for i in found] == [7]


def test_writes_to_unknown_columns_or_with_wrong_types_are_refused(wire: Wire) -> None:
    path = wire.list_path("KPI Results") + "/items"
    unknown = wire.graph("POST", path, json={"fields": {"Colour": "red"}})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Field 'Colour' is not recognized"
    wrong = wire.graph("POST", path, json={"fields": {"Value": "forty"}})
    assert wrong.status_code == 400
    garbage = wire.graph(
        "POST", path, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 400


def test_lists_and_columns_can_be_provisioned(wire: Wire) -> None:
    site = wire.health()["site_id"]
    created = wire.graph(
        "POST",
        f"/sites/{site}/lists",
        json={
            "displayName": "Partner Returns",
            "columns": [{"name": "Partner", "text": {}, "indexed": True}],
            "list": {"template": "genericList"},
        },
    )
    assert created.status_code == 201
    list_id = created.json()["id"]
    column = wire.graph(
        "POST", f"/sites/{site}/lists/{list_id}/columns", json={"name": "Score", "number": {}}
    )
    assert column.status_code == 201
    item = wire.graph(
        "POST",
        f"/sites/{site}/lists/{list_id}/items",
        json={"fields": {"Partner": "Police", "Score": 3}},
    )
    assert item.status_code == 201
    again = wire.graph("POST", f"/sites/{site}/lists", json={"displayName": "Partner Returns"})
    assert again.status_code == 409


def _own_list(wire: Wire, name: str, *columns: dict[str, Any]) -> str:
    site = wire.health()["site_id"]
    created = wire.graph(
        "POST", f"/sites/{site}/lists", json={"displayName": name, "columns": list(columns)}
    )
    assert created.status_code == 201, created.text
    return f"/sites/{site}/lists/{created.json()['id']}"


def test_a_column_is_indexed_by_patch_and_only_its_settable_properties_change(
    wire: Wire,
) -> None:
    path = _own_list(wire, "Index Me", {"name": "Period", "text": {}})
    columns = wire.graph("GET", f"{path}/columns").json()["value"]
    title, period = columns[0], next(c for c in columns if c["name"] == "Period")
    assert title["name"] == "Title" and not period["indexed"]

    patched = wire.graph("PATCH", f"{path}/columns/{period['id']}", json={"indexed": True})
    renamed = wire.graph("PATCH", f"{path}/columns/{period['id']}", json={"number": {}})
    builtin = wire.graph("PATCH", f"{path}/columns/{title['id']}", json={"indexed": True})
    unknown = wire.graph("PATCH", f"{path}/columns/not-a-column", json={"indexed": True})

    assert patched.status_code == 200 and patched.json()["indexed"] is True
    assert renamed.status_code == 400 and builtin.status_code == 400
    assert unknown.status_code == 404
    again = wire.graph("GET", f"{path}/columns/{period['id']}").json()
    assert again["indexed"] is True and "text" in again


def test_changing_lists_and_columns_needs_sites_manage_all(wire: Wire) -> None:
    path = _own_list(wire, "Not Yours", {"name": "Period", "text": {}})
    period = next(
        c for c in wire.graph("GET", f"{path}/columns").json()["value"] if c["name"] == "Period"
    )
    token = wire.admin("POST", "/token", json={"roles": ["Sites.ReadWrite.All"]}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    base = f"{wire.base}/v1.0{path}"

    calls = [
        requests.patch(
            f"{base}/columns/{period['id']}", json={"indexed": True}, headers=headers, timeout=10
        ),
        requests.post(
            f"{base}/columns", json={"name": "X", "text": {}}, headers=headers, timeout=10
        ),
        requests.delete(base, headers=headers, timeout=10),
    ]

    assert [c.status_code for c in calls] == [403, 403, 403]
    assert wire.graph("GET", path).status_code == 200


def test_a_deleted_list_and_its_items_are_gone(wire: Wire) -> None:
    path = _own_list(wire, "Short Lived", {"name": "Period", "text": {}})
    assert wire.graph("POST", f"{path}/items", json={"fields": {"Period": "x"}}).status_code == 201

    assert wire.graph("DELETE", path).status_code == 204
    assert wire.graph("GET", path).status_code == 404
    assert wire.graph("GET", f"{path}/items").status_code == 404
