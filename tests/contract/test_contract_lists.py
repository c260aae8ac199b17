"""GraphClient's list and column calls against the sandbox over HTTP, and the sandbox's
broken-tenant switches (a dropped list or column, an un-indexed filter column)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from contract_support import REGISTER, RESULTS, Bench, open_bench

from m365perf.m365.errors import BadRequest, ClientError, NotFound
from m365perf.m365.graph import ColumnDefinition

pytestmark = pytest.mark.slow

HISTORY = "KPI History"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """One sandbox: tests that change lists make their own, so none interfere."""
    with open_bench(tmp_path_factory.mktemp("lists")) as started:
        yield started


def _columns(bench: Bench, title: str) -> dict[str, ColumnDefinition]:
    site = bench.site_id
    listed = bench.m365.graph.list_columns(site, bench.m365.graph.get_list_id(site, title))
    return {c.name: c for c in listed}


def _new_list(bench: Bench, *columns: ColumnDefinition) -> tuple[str, str]:
    title = f"Test {uuid.uuid4().hex[:8]}"
    return title, bench.m365.graph.create_list(bench.site_id, title, list(columns))


def test_the_seeded_results_list_reports_its_columns_kinds_and_indexed_keys(bench: Bench) -> None:
    columns = _columns(bench, RESULTS)

    assert columns["Title"].type == "text" and not columns["Title"].read_only
    assert columns["Value"].type == "number"
    assert columns["ApprovedAt"].type == "dateTime"
    assert columns["Late"].type == "boolean"
    assert columns["Commentary"].multiline and not columns["ValueText"].multiline
    assert {n for n, c in columns.items() if c.indexed} == {"IndicatorId", "Period"}
    assert columns["Created"].read_only and columns["Modified"].read_only
    assert all(c.id for c in columns.values())


def test_the_seeded_register_and_history_index_the_columns_they_are_filtered_on(
    bench: Bench,
) -> None:
    register = _columns(bench, REGISTER)
    history = _columns(bench, HISTORY)

    assert {n for n, c in register.items() if c.indexed} == {"IndicatorId", "Frequency", "Active"}
    assert register["Active"].type == "boolean" and register["Owner"].type == "text"
    assert {n for n, c in history.items() if c.indexed} == {"IndicatorId", "Period", "Series"}


def test_a_created_list_has_title_and_the_columns_asked_for(bench: Bench) -> None:
    title, list_id = _new_list(
        bench,
        ColumnDefinition("Code", "text", indexed=True, required=True),
        ColumnDefinition("Score", "number"),
        ColumnDefinition("Notes", "text", multiline=True),
        ColumnDefinition("When", "dateTime"),
    )

    columns = {c.name: c for c in bench.m365.graph.list_columns(bench.site_id, list_id)}

    assert bench.m365.graph.get_list_id(bench.site_id, title) == list_id
    assert {"Title", "Code", "Score", "Notes", "When"} <= set(columns)
    assert columns["Code"].indexed and columns["Code"].required
    assert columns["Score"].type == "number" and not columns["Score"].indexed
    assert columns["Notes"].multiline and columns["When"].type == "dateTime"


def test_a_second_list_of_the_same_title_is_refused(bench: Bench) -> None:
    title, _ = _new_list(bench)
    with pytest.raises(ClientError) as raised:
        bench.m365.graph.create_list(bench.site_id, title, [])
    assert raised.value.status == 409


def test_a_column_added_later_takes_values_and_a_duplicate_is_refused(bench: Bench) -> None:
    graph = bench.m365.graph
    _, list_id = _new_list(bench, ColumnDefinition("Code"))

    added = graph.create_column(bench.site_id, list_id, ColumnDefinition("Score", "number"))
    graph.create_item(bench.site_id, list_id, {"Code": "A", "Score": 3})

    assert added.name == "Score" and added.type == "number" and added.id
    assert [i.fields["Score"] for i in graph.list_items(bench.site_id, list_id)] == [3]
    with pytest.raises(ClientError) as raised:
        graph.create_column(bench.site_id, list_id, ColumnDefinition("Score", "number"))
    assert raised.value.status == 409


def test_indexing_a_column_lets_a_filter_name_it(bench: Bench) -> None:
    graph = bench.m365.graph
    _, list_id = _new_list(bench, ColumnDefinition("Period"))
    graph.create_item(bench.site_id, list_id, {"Period": "2026-10"})
    graph.create_item(bench.site_id, list_id, {"Period": "2026-11"})
    where = "fields/Period eq '2026-11'"
    with pytest.raises(BadRequest):
        list(graph.list_items(bench.site_id, list_id, filter=where))
    period = next(c for c in graph.list_columns(bench.site_id, list_id) if c.name == "Period")

    changed = graph.set_column_indexed(bench.site_id, list_id, period.id)

    assert changed.indexed
    found = list(graph.list_items(bench.site_id, list_id, filter=where))
    assert [i.fields["Period"] for i in found] == ["2026-11"]


def test_single_line_text_holds_255_characters_and_multi_line_more(bench: Bench) -> None:
    graph = bench.m365.graph
    _, list_id = _new_list(
        bench, ColumnDefinition("Short"), ColumnDefinition("Long", multiline=True)
    )

    graph.create_item(bench.site_id, list_id, {"Short": "x" * 255, "Long": "y" * 2000})
    with pytest.raises(BadRequest):
        graph.create_item(bench.site_id, list_id, {"Short": "x" * 256})


def test_the_sandbox_can_drop_a_column_or_un_index_one_to_break_a_tenant(bench: Bench) -> None:
    graph = bench.m365.graph
    title, list_id = _new_list(
        bench, ColumnDefinition("Period", indexed=True), ColumnDefinition("Owner")
    )
    graph.create_item(bench.site_id, list_id, {"Period": "2026-10", "Owner": "a@b.gov.uk"})

    bench.admin("DELETE", f"/lists/{title}/columns/Owner")
    bench.admin("PATCH", f"/lists/{title}/columns/Period", json={"indexed": False})

    columns = {c.name: c for c in graph.list_columns(bench.site_id, list_id)}
    assert "Owner" not in columns and not columns["Period"].indexed
    with pytest.raises(BadRequest):
        list(graph.list_items(bench.site_id, list_id, filter="fields/Period eq '2026-10'"))


def test_the_sandbox_can_change_a_columns_kind_or_drop_a_whole_list(bench: Bench) -> None:
    graph = bench.m365.graph
    title, list_id = _new_list(bench, ColumnDefinition("Value", "number"))

    bench.admin("PATCH", f"/lists/{title}/columns/Value", json={"kind": "text"})
    assert next(
        c for c in graph.list_columns(bench.site_id, list_id) if c.name == "Value"
    ).type == ("text")
    bench.admin("DELETE", f"/lists/{title}")
    with pytest.raises(NotFound):
        graph.get_list_id(bench.site_id, title)
