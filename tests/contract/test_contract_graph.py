"""GraphClient against the sandbox over HTTP: sites, lists, paging, filters, eTags, users."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from contract_support import (
    REGISTER,
    RESULT_KEY,
    RESULTS,
    SHAREPOINT_HOST,
    SITE_PATH,
    Bench,
    open_bench,
)

from m365perf.m365.errors import BadRequest, NotFound, PreconditionFailed
from m365perf.m365.http import Limits
from m365perf.sandbox.seed import register_rows

pytestmark = pytest.mark.slow

PAGE_SIZE = 20


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """One sandbox for the module: each test writes under its own Period, so none interfere.

    The client may spend the whole minute's allowance at once (burst 1,000 RU, still under
    the sandbox's documented 1,250), so its own pacing does not slow these tests down.
    """
    limits = Limits(sharepoint_ru_burst=1000.0)
    with open_bench(
        tmp_path_factory.mktemp("graph"), limits=limits, page_size=PAGE_SIZE
    ) as started:
        yield started


def test_the_site_is_found_by_host_and_path_and_its_lists_by_title(bench: Bench) -> None:
    graph = bench.m365.graph
    site_id = graph.get_site_id(SHAREPOINT_HOST, SITE_PATH)
    assert site_id == bench.site_id
    assert graph.get_list_id(site_id, REGISTER) == bench.list_id(REGISTER)
    assert graph.get_list_id(site_id, RESULTS) == bench.list_id(RESULTS)
    with pytest.raises(NotFound):
        graph.get_list_id(site_id, "KPI Registr")


def test_reading_a_list_follows_every_page_and_returns_each_item_once(bench: Bench) -> None:
    seeded = register_rows(bench.sandbox.config.mail_domain)
    pages = math.ceil(len(seeded) / PAGE_SIZE)
    assert pages > 3
    before = bench.last_request_id()

    items = list(bench.m365.graph.list_items(bench.site_id, bench.list_id(REGISTER)))

    assert len(items) == len(seeded)
    assert len({item.id for item in items}) == len(seeded)
    assert [item.fields["IndicatorId"] for item in items] == [r["IndicatorId"] for r in seeded]
    assert all(item.etag for item in items)
    reads = [r for r in bench.requests_log(before) if r["path"].endswith("/items")]
    assert len(reads) == pages and {r["status"] for r in reads} == {200}


def test_only_the_selected_columns_come_back(bench: Bench) -> None:
    graph, register = bench.m365.graph, bench.list_id(REGISTER)

    items = list(graph.list_items(bench.site_id, register, fields=["IndicatorId", "Unit"]))
    one = graph.get_item(bench.site_id, register, items[0].id, fields=["Title"])

    assert len(items) == len(register_rows(bench.sandbox.config.mail_domain))
    for item in items:
        assert set(item.fields) - {"@odata.etag"} == {"IndicatorId", "Unit"}
    assert set(one.fields) - {"@odata.etag"} == {"Title"}


def test_a_filter_on_an_indexed_column_finds_just_that_item(bench: Bench) -> None:
    wanted = register_rows(bench.sandbox.config.mail_domain)[9]

    found = list(
        bench.m365.graph.list_items(
            bench.site_id,
            bench.list_id(REGISTER),
            filter=f"fields/IndicatorId eq '{wanted['IndicatorId']}'",
        )
    )

    assert [item.fields["Title"] for item in found] == [wanted["Title"]]


def test_a_filter_on_a_column_that_is_not_indexed_is_refused_with_graphs_message(
    bench: Bench,
) -> None:
    graph, register = bench.m365.graph, bench.list_id(REGISTER)

    with pytest.raises(BadRequest) as refused:
        list(graph.list_items(bench.site_id, register, filter="fields/Unit eq 'currency'"))

    assert refused.value.status == 400
    assert "invalidRequest" in refused.value.body_excerpt
    assert "Field 'Unit' cannot be referenced in filter" in refused.value.body_excerpt
    assert "HonorNonIndexedQueriesWarningMayFailRandomly" in refused.value.body_excerpt
    # Asking explicitly for the risky query is the documented way round it.
    risky = list(
        graph.list_items(
            bench.site_id, register, filter="fields/Unit eq 'currency'", honor_non_indexed=True
        )
    )
    seeded = [r for r in register_rows(bench.sandbox.config.mail_domain) if r["Unit"] == "currency"]
    assert sorted(i.fields["IndicatorId"] for i in risky) == sorted(
        r["IndicatorId"] for r in seeded
    )


def test_an_update_with_a_stale_etag_is_refused_and_changes_nothing(bench: Bench) -> None:
    graph, results = bench.m365.graph, bench.list_id(RESULTS)
    created = graph.create_item(
        bench.site_id, results, {"IndicatorId": "COV-001", "Period": "etag test", "Value": 1.0}
    )

    graph.update_fields(bench.site_id, results, created.id, {"Value": 2.0}, etag=created.etag)
    with pytest.raises(PreconditionFailed) as stale:
        graph.update_fields(bench.site_id, results, created.id, {"Value": 3.0}, etag=created.etag)

    assert stale.value.status == 412
    current = graph.get_item(bench.site_id, results, created.id)
    assert current.fields["Value"] == 2.0
    assert current.etag != created.etag
    graph.update_fields(bench.site_id, results, created.id, {"Value": 4.0}, etag=current.etag)
    assert graph.get_item(bench.site_id, results, created.id).fields["Value"] == 4.0


def test_upserting_twice_updates_the_items_the_first_run_created(bench: Bench) -> None:
    graph, results = bench.m365.graph, bench.list_id(RESULTS)
    period = "upsert test"
    values = {f"COV-{n:03d}": float(n) for n in range(1, 26)}  # two batches: 20 and 5

    def rows(change: float) -> list[dict[str, object]]:
        return [
            {"IndicatorId": i, "Period": period, "Value": v + change} for i, v in values.items()
        ]

    first = graph.upsert_items(bench.site_id, results, RESULT_KEY, rows(0.0))
    second = graph.upsert_items(bench.site_id, results, RESULT_KEY, rows(0.5))

    assert second == first
    keys = graph.read_keys(
        bench.site_id, results, RESULT_KEY, filter=f"fields/Period eq '{period}'"
    )
    assert set(keys) == {(indicator, period) for indicator in values}
    stored = graph.list_items(
        bench.site_id,
        results,
        fields=["IndicatorId", "Value"],
        filter=f"fields/Period eq '{period}'",
    )
    assert sorted((i.fields["IndicatorId"], i.fields["Value"]) for i in stored) == [
        (indicator, value + 0.5) for indicator, value in values.items()
    ]


def test_users_are_found_by_upn_or_id_with_their_managers(bench: Bench) -> None:
    graph, people = bench.m365.graph, bench.directory()
    by_id = {person["id"]: person for person in people.values()}
    managed = [p for p in people.values() if p["manager_id"] in by_id]
    top = [p for p in people.values() if p["manager_id"] is None]
    assert managed and top

    for person in managed[:5]:
        user = graph.get_user(person["upn"])
        assert (user.id, user.display_name, user.mail) == (
            person["id"],
            person["display_name"],
            person["mail"],
        )
        assert graph.get_user(person["id"]).user_principal_name == person["upn"]
        manager = graph.get_manager(person["upn"])
        assert manager is not None
        assert manager.user_principal_name == by_id[person["manager_id"]]["upn"]
    assert graph.get_manager(top[0]["upn"]) is None
    with pytest.raises(NotFound):
        graph.get_user("nobody@contoso.gov.uk")


def test_a_register_s_people_are_read_twenty_to_a_batch_and_not_again_at_the_next_sync(
    bench: Bench,
) -> None:
    from m365perf.sync import DirectoryCache, EntraPeople

    people = bench.directory()
    by_id = {person["id"]: person for person in people.values()}
    named = sorted(upn for upn, p in people.items() if p["manager_id"] in by_id)[:25]
    directory = EntraPeople(bench.m365.graph, DirectoryCache())
    before = bench.last_request_id()

    found, unknown = directory.people([*named, "nobody@contoso.gov.uk"])

    wire = [r for r in bench.requests_log(before) if not r.get("batch_id") or "$batch" in r["path"]]
    reads = [r for r in wire if "/users" in r["path"] or r["path"].endswith("/$batch")]
    assert all(r["path"].endswith("/$batch") for r in reads)  # no one-by-one user reads
    stored = {p.email: p for p in found}
    assert set(named) <= set(stored)
    for upn in named:
        manager = by_id[people[upn]["manager_id"]]
        assert stored[upn].line_manager_id == manager["id"]
        assert manager["upn"] in stored  # managers are people too, up the chain
    assert unknown == ["nobody@contoso.gov.uk"]
    # 26 people asked for, then their managers, then theirs: full envelopes of 20 per wave
    assert len(reads) <= 2 + 1 + 1 + 1

    again = bench.last_request_id()
    assert directory.people(named)[0]
    assert bench.requests_log(again) == []  # the next sync reads nobody again
