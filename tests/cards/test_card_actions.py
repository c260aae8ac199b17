"""Improvement actions on cards: the inputs to enter one with a figure, the open ones to
update on the owner's card, and what an approver sees; every card passes the 1.5 schema."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from card_support import (
    approval,
    calls_answered,
    inputs,
    owner_request,
    sickness_days,
    texts,
    walk,
)

from m365perf.cards import (
    Draft,
    OpenAction,
    card_size,
    render_approval,
    render_owner_requests,
    validate_card,
)
from m365perf.cards.actions import action_text

HINT = "Needed if the figure is red: what will be done, by whom and by when."


def _open(action_id: int = 7, **changes: object) -> OpenAction:
    fields: dict[str, object] = {
        "action_id": action_id,
        "version": 2,
        "raised_for": "Percentage of calls answered, 2026/27 Q2: red",
        "what": "Recruit two agents for the peak hours.",
        "who_name": "Dan Fox",
        "due": date(2026, 12, 18),
        "status": "in_progress",
        "note": "One started in November.",
        "overdue": True,
    }
    fields.update(changes)
    return OpenAction(**fields)  # type: ignore[arg-type]


def test_an_indicator_asks_for_an_action_with_its_errors_under_the_date() -> None:
    item = calls_answered(
        action_hint=HINT,
        draft=Draft(value="70", action_what="Recruit.", action_by="2026-12-18"),
        action_errors=("Say by whom.",),
    )
    [card] = render_owner_requests(owner_request(item))
    validate_card(card)
    found = inputs(card)
    assert found["actionwhat__ind-calls"]["value"] == "Recruit."
    assert found["actionby__ind-calls"]["type"] == "Input.Date"
    assert found["actionby__ind-calls"]["value"] == "2026-12-18"
    assert "actionwho__ind-calls" in found
    assert HINT in texts(card)
    order = [n.get("id") or n.get("text") for n in walk(card) if n.get("type")]
    after = order[order.index("actionby__ind-calls") + 1 :]
    assert after[0] == "Say by whom."  # right under the action's last input


def test_without_an_actions_block_the_card_asks_for_no_action() -> None:
    [card] = render_owner_requests(owner_request(calls_answered()))
    assert not any(name.startswith("action") for name in inputs(card))


def test_open_actions_are_listed_to_update_and_their_versions_go_with_the_submit() -> None:
    view = owner_request(calls_answered(), actions=(_open(7), _open(8, overdue=False)))
    [card] = render_owner_requests(view)
    validate_card(card)
    found = inputs(card)
    assert found["actionstatus__7"]["value"] == "in_progress"
    assert [c["value"] for c in found["actionstatus__7"]["choices"]] == [
        "not_started",
        "in_progress",
        "done",
    ]
    assert found["actionnote__7"]["value"] == "One started in November."
    words = texts(card)
    assert "Your improvement actions" in words
    assert "Recruit two agents for the peak hours." in words
    assert len([w for w in words if w.endswith(" · Overdue")]) == 1
    [submit] = [a for a in card["actions"] if a.get("verb") == "submitReturns"]
    assert submit["data"]["action_versions"] == {"7": 2, "8": 2}


def test_a_split_request_carries_the_open_actions_on_its_first_part_only() -> None:
    many = tuple(
        replace(sickness_days(), indicator_id=f"ind-{n}", name=f"Indicator {n} " + "x" * 400)
        for n in range(40)
    )
    view = owner_request(*many, actions=(_open(7),))
    cards = render_owner_requests(view, max_bytes=12_000)
    assert len(cards) > 1
    for number, card in enumerate(cards, start=1):
        validate_card(card)
        assert card_size(card) <= 12_000
        has_actions = "actionstatus__7" in inputs(card)
        assert has_actions is (number == 1)


def test_the_approver_sees_the_actions_without_inputs() -> None:
    card = render_approval(approval(actions=(_open(7, status="not_started", note=""),)))
    validate_card(card)
    words = texts(card)
    assert "Improvement actions" in words
    assert "Recruit two agents for the peak hours." in words
    assert not any(name.startswith("action") for name in inputs(card))


@pytest.mark.parametrize("status", ["", "finished"])
def test_an_open_action_needs_a_known_status(status: str) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        _open(status=status)


def test_an_action_on_one_plain_line_for_the_approvals_web_page() -> None:
    assert action_text(_open()) == (
        "Recruit two agents for the peak hours. — Dan Fox, by Friday 18 December 2026, "
        "in progress, overdue"
    )
    assert action_text(_open(overdue=False, status="not_started", what="x " * 300), limit=20) == (
        "x x x x x x x x x x… — Dan Fox, by Friday 18 December 2026, not started"
    )
