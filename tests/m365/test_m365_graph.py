"""SharePoint lists and users through Graph: paging, filters, eTags, $batch, upserts."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from m365_support import FakeClock

from m365perf.m365.auth import StaticToken
from m365perf.m365.errors import (
    BadRequest,
    BatchError,
    DuplicateKeyError,
    PreconditionFailed,
    Unauthorized,
)
from m365perf.m365.graph import (
    BatchRequest,
    GraphClient,
    create_item_request,
    update_fields_request,
)
from m365perf.m365.http import ApiClient, Budgets, HttpCore, Limits, RetryPolicy, new_session

BASE = "http://127.0.0.1:8931/v1.0"  # the sandbox's shape: plain http on loopback
SITE = ",".join(
    [
        "contoso.sharepoint.com",
        "2c712604-1370-44e7-a1f5-426573b2e6c2",
        "2d2244c3-251a-49ea-93a8-39e2b3c1f1c1",
    ]
)
ITEMS = f"{BASE}/sites/{SITE}/lists/results/items"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def make_graph(clock: FakeClock, *, limits: Limits | None = None) -> tuple[GraphClient, Budgets]:
    budgets = Budgets(limits or Limits(), clock)
    core = HttpCore(new_session("ISV|m365perf|test"), clock=clock, rng=random.Random(1))
    api = ApiClient(core, BASE, tokens=StaticToken("t"), budget=budgets.graph, retry=RetryPolicy())
    graph = GraphClient(
        api, sharepoint=budgets.sharepoint, batch_rounds=budgets.limits.batch_rounds
    )
    return graph, budgets


def item(item_id: str, etag: str, **fields: Any) -> dict[str, Any]:
    return {"id": item_id, "eTag": etag, "fields": fields}


def test_site_and_list_are_resolved_by_path_and_title(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.get(f"{BASE}/sites/contoso.sharepoint.com:/sites/kpi", json={"id": SITE})
    mocked.get(f"{BASE}/sites/{SITE}/lists/KPI%20Results", json={"id": "results"})
    graph, _ = make_graph(clock)

    site_id = graph.get_site_id("contoso.sharepoint.com", "sites/kpi")

    assert site_id == SITE
    assert graph.get_list_id(site_id, "KPI Results") == "results"


def test_every_next_link_is_followed_as_given(clock: FakeClock, mocked: responses.RequestsMock):
    next_link = f"{ITEMS}?expand=fields&$skiptoken=UGFnZWQ9VFJVRSZwX0lEPTI"
    mocked.get(ITEMS, json={"value": [item("1", "e1", Title="a")], "@odata.nextLink": next_link})
    mocked.get(next_link, json={"value": [item("2", "e2", Title="b"), item("3", "e3", Title="c")]})
    graph, _ = make_graph(clock)

    items = list(graph.list_items(SITE, "results", fields=["Title", "Period"]))

    assert [i.id for i in items] == ["1", "2", "3"]
    assert items[2].fields == {"Title": "c"} and items[2].etag == "e3"
    assert mocked.calls[0].request.url == f"{ITEMS}?expand=fields(select=Title,Period)"
    assert mocked.calls[1].request.url == next_link


def test_filter_goes_without_the_prefer_header_so_non_indexed_fails_loudly(
    clock: FakeClock, mocked: responses.RequestsMock
):
    message = (
        "Field 'Status' cannot be referenced in filter or orderby as it is not indexed. "
        "Provide the 'Prefer: HonorNonIndexedQueriesWarningMayFailRandomly' header to allow this."
    )
    mocked.get(ITEMS, status=400, json={"error": {"code": "invalidRequest", "message": message}})
    graph, _ = make_graph(clock)

    with pytest.raises(BadRequest, match="not indexed"):
        list(graph.list_items(SITE, "results", filter="fields/Status eq 'Pending'"))

    sent = mocked.calls[0].request
    assert "Prefer" not in sent.headers
    assert sent.url.endswith("&$filter=fields/Status%20eq%20'Pending'")


def test_prefer_header_only_when_asked(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(ITEMS, json={"value": []})
    graph, _ = make_graph(clock)

    list(graph.list_items(SITE, "results", filter="fields/Status eq 'x'", honor_non_indexed=True))

    assert (
        mocked.calls[0].request.headers["Prefer"] == "HonorNonIndexedQueriesWarningMayFailRandomly"
    )


def test_create_and_update_with_etag(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.post(ITEMS, status=201, json=item("7", '"{ABC},1"', Title="KPI-01"))
    mocked.patch(f"{ITEMS}/7/fields", status=412, json={"error": {"code": "resourceModified"}})
    graph, _ = make_graph(clock)

    created = graph.create_item(SITE, "results", {"Title": "KPI-01", "Value": 12.5})
    with pytest.raises(PreconditionFailed):
        graph.update_fields(SITE, "results", created.id, {"Value": 13}, etag='"{ABC},0"')

    assert json.loads(mocked.calls[0].request.body) == {
        "fields": {"Title": "KPI-01", "Value": 12.5}
    }
    assert mocked.calls[1].request.headers["If-Match"] == '"{ABC},0"'
    assert json.loads(mocked.calls[1].request.body) == {"Value": 13}


def test_read_keys_maps_key_tuples_to_id_and_etag(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(
        ITEMS,
        json={
            "value": [
                item("1", "e1", IndicatorCode="KPI-01", Period="2026/27 Q1"),
                item("2", "e2", IndicatorCode="KPI-01", Period="2026/27 Q2"),
            ]
        },
    )
    graph, _ = make_graph(clock)

    keys = graph.read_keys(SITE, "results", ["IndicatorCode", "Period"])

    assert {k: (v.id, v.etag) for k, v in keys.items()} == {
        ("KPI-01", "2026/27 Q1"): ("1", "e1"),
        ("KPI-01", "2026/27 Q2"): ("2", "e2"),
    }


def test_read_keys_refuses_to_guess_between_duplicates(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.get(
        ITEMS,
        json={
            "value": [item("1", "e1", Code="K", Period="P"), item("9", "e9", Code="K", Period="P")]
        },
    )
    graph, _ = make_graph(clock)

    with pytest.raises(DuplicateKeyError) as caught:
        graph.read_keys(SITE, "results", ["Code", "Period"])

    assert caught.value.item_ids == ["1", "9"]


def _batch_callback(rounds: list[list[dict[str, Any]]], answer: Any) -> Any:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sent = json.loads(request.body)["requests"]
        rounds.append(sent)
        return 200, {}, json.dumps({"responses": answer(len(rounds), sent)})

    return callback


def test_batch_retries_only_throttled_sub_requests_on_their_longest_retry_after(
    clock: FakeClock, mocked: responses.RequestsMock
):
    rounds: list[list[dict[str, Any]]] = []

    def answer(round_number: int, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if round_number == 1:
            return [  # out of order on purpose: correlation is by id
                {"id": "c", "status": 429, "headers": {"retry-after": "3"}, "body": {}},
                {"id": "a", "status": 201, "headers": {}, "body": {"id": "101"}},
                {"id": "b", "status": 429, "headers": {"Retry-After": "7"}, "body": {}},
                {
                    "id": "d",
                    "status": 403,
                    "headers": {},
                    "body": {"error": {"code": "accessDenied", "message": "Access denied"}},
                },
            ]
        return [
            {"id": r["id"], "status": 201, "headers": {}, "body": {"id": "2" + r["id"]}}
            for r in sent
        ]

    mocked.add_callback(responses.POST, f"{BASE}/$batch", callback=_batch_callback(rounds, answer))
    graph, _ = make_graph(clock)
    requests_ = [create_item_request(i, SITE, "results", {"Title": i}) for i in "abcd"]

    with pytest.raises(BatchError) as caught:
        graph.batch(requests_)

    error = caught.value
    assert [(f.id, f.status, f.message) for f in error.failures] == [
        ("d", 403, "accessDenied: Access denied")
    ]
    assert error.transient is False
    assert set(error.succeeded) == {"a", "b", "c"}
    assert error.succeeded["b"].body == {"id": "2b"}
    assert sorted(r["id"] for r in rounds[1]) == ["b", "c"]
    assert 7.0 in clock.sleeps  # the longest sub-request retry-after, waited once
    assert sum(clock.sleeps) == pytest.approx(7.0)
    sent_first = {r["id"]: r for r in rounds[0]}
    assert sent_first["a"] == {
        "id": "a",
        "method": "POST",
        "url": f"/sites/{SITE}/lists/results/items",
        "body": {"fields": {"Title": "a"}},
        "headers": {"Content-Type": "application/json"},
    }


def test_batch_gives_up_on_throttled_after_its_rounds(
    clock: FakeClock, mocked: responses.RequestsMock
):
    rounds: list[list[dict[str, Any]]] = []

    def answer(_round: int, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": r["id"], "status": 429, "headers": {"Retry-After": "2"}, "body": {}}
            for r in sent
        ]

    mocked.add_callback(responses.POST, f"{BASE}/$batch", callback=_batch_callback(rounds, answer))
    graph, _ = make_graph(clock, limits=Limits(batch_rounds=3))

    with pytest.raises(BatchError) as caught:
        graph.batch([BatchRequest("x", "GET", f"sites/{SITE}/lists/results/items/1", ru_cost=1)])

    assert len(rounds) == 3
    assert caught.value.transient is True
    assert caught.value.retry_after == 2.0


def test_batch_is_chunked_into_twenties(clock: FakeClock, mocked: responses.RequestsMock):
    rounds: list[list[dict[str, Any]]] = []

    def answer(_round: int, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": r["id"], "status": 200, "headers": {}, "body": {}} for r in sent]

    mocked.add_callback(responses.POST, f"{BASE}/$batch", callback=_batch_callback(rounds, answer))
    graph, _ = make_graph(clock)

    result = graph.batch(
        [update_fields_request(str(n), SITE, "results", str(n), {"V": n}) for n in range(45)]
    )

    assert [len(r) for r in rounds] == [20, 20, 5]
    assert len(result) == 45


def test_batch_rejects_duplicate_ids(clock: FakeClock):
    graph, _ = make_graph(clock)
    with pytest.raises(ValueError, match="unique"):
        graph.batch([BatchRequest("A", "GET", "x"), BatchRequest("a", "GET", "y")])


def test_upsert_updates_known_keys_and_creates_the_rest(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.get(ITEMS, json={"value": [item("5", "e5", Code="KPI-01", Period="Q1")]})
    rounds: list[list[dict[str, Any]]] = []

    def answer(_round: int, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "id": r["id"],
                "status": 201 if r["method"] == "POST" else 200,
                "headers": {},
                "body": {"id": "6"} if r["method"] == "POST" else {},
            }
            for r in sent
        ]

    mocked.add_callback(responses.POST, f"{BASE}/$batch", callback=_batch_callback(rounds, answer))
    graph, _ = make_graph(clock)

    ids = graph.upsert_items(
        SITE,
        "results",
        ["Code", "Period"],
        [{"Code": "KPI-01", "Period": "Q1", "Value": 3}, {"Code": "KPI-02", "Period": "Q1"}],
    )

    assert ids == {("KPI-01", "Q1"): "5", ("KPI-02", "Q1"): "6"}
    by_id = {r["id"]: r for r in rounds[0]}
    assert by_id["0"]["method"] == "PATCH" and by_id["0"]["headers"]["If-Match"] == "e5"
    assert by_id["0"]["url"].endswith("/items/5/fields")
    assert by_id["1"]["method"] == "POST"


def test_sharepoint_budget_spends_two_units_per_write(
    clock: FakeClock, mocked: responses.RequestsMock
):
    for _ in range(3):
        mocked.post(ITEMS, status=201, json=item("1", "e"))
    graph, _ = make_graph(clock, limits=Limits(sharepoint_ru_per_minute=60, sharepoint_ru_burst=4))

    for _ in range(3):
        graph.create_item(SITE, "results", {"Title": "x"})

    # A burst of 4 less the quarter second kept back for arrival jitter (3.75 RU): the
    # second create waits 0.25 s, the third the 2 RU it costs at 1 RU/s.
    assert clock.sleeps == [pytest.approx(0.25), pytest.approx(2.0)]


def test_users_and_managers(clock: FakeClock, mocked: responses.RequestsMock):
    select = "$select=id,displayName,mail,userPrincipalName"
    mocked.get(
        f"{BASE}/users/jo@council.gov.uk?{select}",
        json={
            "id": "u1",
            "displayName": "Jo",
            "mail": "jo@council.gov.uk",
            "userPrincipalName": "jo@council.gov.uk",
        },
    )
    mocked.get(
        f"{BASE}/users/u1/manager?{select}",
        json={"id": "m1", "displayName": "Sam", "userPrincipalName": "sam@council.gov.uk"},
    )
    mocked.get(
        f"{BASE}/users/m1/manager?{select}",
        status=404,
        json={"error": {"code": "Request_ResourceNotFound"}},
    )
    graph, _ = make_graph(clock)

    jo = graph.get_user("jo@council.gov.uk")
    manager = graph.get_manager(jo.id)

    assert (jo.id, jo.mail) == ("u1", "jo@council.gov.uk")
    assert manager is not None and manager.display_name == "Sam" and manager.mail is None
    assert graph.get_manager("m1") is None


def test_installing_the_teams_app_for_a_user(clock: FakeClock, mocked: responses.RequestsMock):
    """201 is a fresh install, Graph's 409 "already installed" is not an error; a 403 is."""
    url = f"{BASE}/users/u1/teamwork/installedApps"
    mocked.post(url, status=201, json={})
    mocked.post(url, status=409, json={"error": {"code": "Conflict", "message": "installed"}})
    mocked.post(url, status=403, json={"error": {"code": "Forbidden", "message": "no"}})
    graph, _ = make_graph(clock)

    assert graph.install_teams_app("u1", "app-9") is True
    assert graph.install_teams_app("u1", "app-9") is False
    with pytest.raises(Unauthorized):
        graph.install_teams_app("u1", "app-9")
    sent = json.loads(mocked.calls[0].request.body or b"{}")
    assert sent == {"teamsApp@odata.bind": f"{BASE}/appCatalogs/teamsApps/app-9"}
