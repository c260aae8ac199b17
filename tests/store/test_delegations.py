"""Delegations in the store: recorded, found by day, ended once; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from store_helpers import NOW

from m365perf.store import Store

LATER = NOW + timedelta(hours=2)


def _add(store: Store, approver: str = "priya", delegate: str | None = "sam", **kw: object) -> int:
    with store.transaction() as tx:
        row = tx.add_delegation(
            approver,
            delegate_id=delegate,
            starts_on=kw.pop("starts_on", date(2026, 10, 5)),  # type: ignore[arg-type]
            ends_on=kw.pop("ends_on", date(2026, 10, 9)),  # type: ignore[arg-type]
            flow_id=kw.pop("flow_id", None),  # type: ignore[arg-type]
            by="priya",
            now=NOW,
        )
    assert row.id is not None
    return row.id


def test_a_delegation_applies_on_its_first_and_last_day_only(store: Store) -> None:
    ident = _add(store)
    with store.transaction() as tx:
        on = {d: [r.id for r in tx.list_delegations(on=date(2026, 10, d))] for d in (4, 5, 9, 10)}
        (row,) = tx.list_delegations(approver_id="priya")
    assert on == {4: [], 5: [ident], 9: [ident], 10: []}
    assert (row.delegate_id, row.created_by, row.ended_at) == ("sam", "priya", None)
    assert row.active_on(date(2026, 10, 5)) and not row.active_on(date(2026, 10, 10))


def test_delegations_are_found_by_day_and_by_delegate(store: Store) -> None:
    ident = _add(store)
    with store.transaction() as tx:
        assert [r.id for r in tx.list_delegations(on=date(2026, 10, 5))] == [ident]
        assert tx.list_delegations(on=date(2026, 10, 10)) == []
        assert [r.id for r in tx.list_delegations(delegate_id="sam")] == [ident]
        assert tx.list_delegations(delegate_id="priya") == []


def test_ending_a_delegation_stops_it_and_keeps_the_row(store: Store) -> None:
    ident = _add(store)
    with store.transaction() as tx:
        ended = tx.end_delegation(ident, by="nadia", now=LATER)
        again = tx.end_delegation(ident, by="someone-else", now=LATER + timedelta(hours=1))
    assert (ended.ended_by, ended.ended_at) == ("nadia", LATER)
    assert (again.ended_by, again.ended_at) == ("nadia", LATER)  # the first end stands
    with store.transaction() as tx:
        assert tx.list_delegations(on=date(2026, 10, 6)) == []
        assert tx.list_delegations(approver_id="priya") == []
        assert [r.id for r in tx.list_delegations(include_ended=True)] == [ident]


def test_away_with_nobody_named_and_one_flow(store: Store) -> None:
    ident = _add(store, delegate=None, flow_id="monthly")
    with store.transaction() as tx:
        (row,) = tx.list_delegations(on=date(2026, 10, 6))
    assert (row.id, row.delegate_id, row.flow_id) == (ident, None, "monthly")
    assert row.covers_flow("monthly") and not row.covers_flow("quarterly")


@pytest.mark.parametrize(
    ("delegate", "starts_on", "ends_on", "message"),
    [
        ("priya", date(2026, 10, 5), date(2026, 10, 9), "own delegate"),
        ("sam", date(2026, 10, 9), date(2026, 10, 5), "before it starts"),
        ("", date(2026, 10, 5), date(2026, 10, 9), "delegate_id"),
    ],
)
def test_a_bad_delegation_is_refused_and_nothing_is_saved(
    store: Store, delegate: str, starts_on: date, ends_on: date, message: str
) -> None:
    with pytest.raises(ValueError, match=message), store.transaction() as tx:
        tx.add_delegation(
            "priya", delegate_id=delegate, starts_on=starts_on, ends_on=ends_on, by="x", now=NOW
        )
    with store.transaction() as tx:
        assert tx.list_delegations(include_ended=True) == []
