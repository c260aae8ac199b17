"""List columns through Graph, on the wire: the kinds read, the bodies sent, the paging."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses
from m365_support import FakeClock
from test_m365_graph import BASE, SITE, make_graph

from m365perf.m365.graph import ColumnDefinition

COLUMNS = f"{BASE}/sites/{SITE}/lists/results/columns"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_columns_are_read_with_their_kind_index_and_every_page(
    mocked: responses.RequestsMock,
) -> None:
    next_link = f"{COLUMNS}?$skiptoken=2"
    mocked.get(
        COLUMNS,
        json={
            "value": [
                {"id": "c1", "name": "Period", "indexed": True, "required": True, "text": {}},
                {"id": "c2", "name": "Owner", "personOrGroup": {"chooseFromType": "peopleOnly"}},
            ],
            "@odata.nextLink": next_link,
        },
    )
    mocked.get(
        next_link,
        json={
            "value": [
                {"id": "c3", "name": "Notes", "text": {"allowMultipleLines": True}},
                {"id": "c4", "name": "Created", "readOnly": True, "dateTime": {}},
            ]
        },
    )
    graph, _ = make_graph(FakeClock())

    columns = {c.name: c for c in graph.list_columns(SITE, "results")}

    assert list(columns) == ["Period", "Owner", "Notes", "Created"]
    assert columns["Period"].indexed and columns["Period"].required
    assert columns["Owner"].type == "personOrGroup"
    assert columns["Notes"].type == "text" and columns["Notes"].multiline
    assert columns["Created"].read_only and columns["Created"].type == "dateTime"


def test_a_list_is_created_as_a_generic_list_with_each_columns_facet(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/sites/{SITE}/lists", json={"id": "new-list"}, status=201)
    graph, _ = make_graph(FakeClock())

    list_id = graph.create_list(
        SITE,
        "KPI Results",
        [
            ColumnDefinition("Period", indexed=True, required=True),
            ColumnDefinition("Value", "number"),
            ColumnDefinition("Commentary", multiline=True),
        ],
    )

    assert list_id == "new-list"
    body = json.loads(mocked.calls[0].request.body or b"{}")
    assert body["displayName"] == "KPI Results"
    assert body["list"] == {"template": "genericList"}
    period, value, commentary = body["columns"]
    assert period == {
        "name": "Period",
        "displayName": "Period",
        "indexed": True,
        "required": True,
        "text": {},
    }
    assert value["number"] == {} and "text" not in value
    assert commentary["text"] == {"allowMultipleLines": True}


def test_indexing_a_column_patches_just_the_flag(mocked: responses.RequestsMock) -> None:
    mocked.patch(f"{COLUMNS}/c1", json={"id": "c1", "name": "Period", "indexed": True, "text": {}})
    graph, _ = make_graph(FakeClock())

    column = graph.set_column_indexed(SITE, "results", "c1")

    assert column.indexed and column.name == "Period"
    assert json.loads(mocked.calls[0].request.body or b"{}") == {"indexed": True}
