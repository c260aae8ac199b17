"""What lists a flow needs in SharePoint, as plain data: no I/O, so doctor and provision agree.

The results list is derived from :data:`m365perf.flows.results.RESULT_COLUMNS`, the very
list write-back builds its rows from; its key columns (the flow's ``writeback.key``) are
indexed because write-back filters on them to find the item it updates.
"""

from __future__ import annotations

from dataclasses import dataclass

from m365perf.flows.model import Flow
from m365perf.flows.results import (
    ACTION_COLUMNS,
    ACTION_KEY,
    HISTORY_COLUMNS,
    HISTORY_KEY,
    RESULT_COLUMNS,
    result_key,
)

BUILTIN_COLUMNS = frozenset({"Title"})
"""Columns every generic list has from its template: checked, never created."""

ANY_TYPE = "any"
"""A register column read as text whatever its kind (text, number, boolean, choice…)."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column as Graph knows it: ``type`` is the kind ("text", "number", "dateTime"…)."""

    name: str
    type: str = "text"
    indexed: bool = False
    required: bool = False
    multiline: bool = False


@dataclass(frozen=True)
class ListSpec:
    """A list on a site (``host:/path``), by display title, with the columns it must have."""

    site: str
    title: str
    columns: tuple[ColumnSpec, ...]

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def indexed(self) -> tuple[str, ...]:
        """The columns queries filter on: they must be indexed."""
        return tuple(c.name for c in self.columns if c.indexed)


def results_list(flow: Flow) -> ListSpec:
    """The results list write-back upserts approved rows into, keyed on (indicator, period)."""
    key_id, key_period = result_key(flow.writeback)
    keys = (
        ColumnSpec(key_id, indexed=True, required=True),
        ColumnSpec(key_period, indexed=True, required=True),
    )
    rest = tuple(
        ColumnSpec(c.name, c.kind, multiline=c.multiline)
        for c in RESULT_COLUMNS
        if c.name not in (key_id, key_period)
    )
    return ListSpec(flow.writeback.site, flow.writeback.list_title, keys + rest)


def history_list(flow: Flow) -> ListSpec | None:
    """The history list past values live in, when the flow names one (``writeback.history``)."""
    title = flow.writeback.history_list
    if title is None:
        return None
    columns = tuple(
        ColumnSpec(
            c.name,
            c.kind,
            indexed=c.name in HISTORY_KEY,
            required=c.name in HISTORY_KEY,
            multiline=c.multiline,
        )
        for c in HISTORY_COLUMNS
    )
    return ListSpec(flow.writeback.site, title, columns)


def actions_list(flow: Flow) -> ListSpec | None:
    """The list improvement actions are upserted into, keyed on ``ActionId`` (indexed)."""
    if flow.actions is None:
        return None
    columns = tuple(
        ColumnSpec(
            c.name,
            c.kind,
            indexed=c.name == ACTION_KEY,
            required=c.name == ACTION_KEY,
            multiline=c.multiline,
        )
        for c in ACTION_COLUMNS
    )
    return ListSpec(flow.writeback.site, flow.actions.list_title, columns)
