"""Improvement actions in the store, on SQLite and PostgreSQL alike: one per return, its
status changed only along the lifecycle's action rows and from the expected version."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from store_helpers import FLOW, NOW, new_return

from m365perf.store import ActionStatus, NewAction, Store, TransitionRefused

LATER = NOW + timedelta(hours=1)


def _spec(return_id: int, cycle_id: int, **changes: object) -> NewAction:
    fields: dict[str, object] = {
        "flow_id": FLOW,
        "cycle_id": cycle_id,
        "return_id": return_id,
        "indicator_key": "CP01",
        "owner_id": "officer-1",
        "what": "  Two extra rounds a week.  ",
        "who_id": "officer-2",
        "due_on": date(2026, 11, 30),
        "raised_for": "red",
    }
    fields.update(changes)
    return NewAction.model_validate(fields)


def test_a_return_has_one_action_however_often_it_is_raised(store: Store) -> None:
    ret = new_return(store)
    with store.transaction() as tx:
        first, created = tx.create_action(_spec(ret.id or 0, ret.cycle_id), by="officer-1", now=NOW)
        again, created_again = tx.create_action(
            _spec(ret.id or 0, ret.cycle_id, what="Something else."), by="officer-1", now=LATER
        )
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.what == "Two extra rounds a week."
    assert (first.status, first.version, first.created_at) == (ActionStatus.NOT_STARTED, 1, NOW)
    with store.transaction() as tx:
        assert tx.find_action(ret.id or 0) == first
        assert tx.list_actions(owner_id="officer-1", status=ActionStatus.NOT_STARTED) == [first]
        assert tx.list_actions(owner_id="officer-2") == []
        assert tx.list_actions(flow_id=FLOW, indicator_key="CP01") == [first]


def test_an_action_moves_only_along_its_lifecycle_and_from_its_version(store: Store) -> None:
    ret = new_return(store)
    with store.transaction() as tx:
        action, _ = tx.create_action(_spec(ret.id or 0, ret.cycle_id), by="officer-1", now=NOW)
        noted = tx.update_action(
            action.id or 0, 1, ActionStatus.NOT_STARTED, note="Waiting on HR.", by="o", now=NOW
        )
        going = tx.update_action(
            action.id or 0, 2, ActionStatus.IN_PROGRESS, note=None, by="o", now=LATER
        )
    assert (noted.version, noted.note) == (2, "Waiting on HR.")
    assert (going.status, going.version, going.updated_at) == (ActionStatus.IN_PROGRESS, 3, LATER)
    with pytest.raises(TransitionRefused), store.transaction() as tx:
        tx.update_action(action.id or 0, 2, ActionStatus.DONE, note=None, by="o", now=LATER)
    with pytest.raises(TransitionRefused), store.transaction() as tx:
        tx.update_action(action.id or 0, 3, ActionStatus.NOT_STARTED, note=None, by="o", now=LATER)
    with store.transaction() as tx:
        done = tx.update_action(
            action.id or 0, 3, ActionStatus.DONE, note="Done.", by="o", now=LATER
        )
    assert done.status is ActionStatus.DONE
    with pytest.raises(TransitionRefused), store.transaction() as tx:
        tx.update_action(action.id or 0, 4, ActionStatus.IN_PROGRESS, note=None, by="o", now=LATER)
    with pytest.raises(TransitionRefused), store.transaction() as tx:
        tx.revise_action(
            action.id or 0, 4, what="More.", who_id="o", due_on=date(2027, 1, 1), by="o", now=LATER
        )
    with store.transaction() as tx:
        assert tx.get_action(action.id or 0) == done


def test_an_open_action_is_revised_from_its_version(store: Store) -> None:
    ret = new_return(store)
    with store.transaction() as tx:
        action, _ = tx.create_action(_spec(ret.id or 0, ret.cycle_id), by="officer-1", now=NOW)
        revised = tx.revise_action(
            action.id or 0,
            1,
            what="Three rounds.",
            who_id="officer-3",
            due_on=date(2026, 12, 18),
            by="officer-1",
            now=LATER,
        )
    assert (revised.what, revised.who_id, revised.due_on, revised.version) == (
        "Three rounds.",
        "officer-3",
        date(2026, 12, 18),
        2,
    )
    assert revised.status is ActionStatus.NOT_STARTED
    with pytest.raises(TransitionRefused), store.transaction() as tx:
        tx.revise_action(
            action.id or 0, 1, what="x", who_id="o", due_on=date(2027, 1, 1), by="o", now=LATER
        )
