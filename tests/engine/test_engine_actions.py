"""Improvement actions: a red figure needs one, it is stored and sent to the actions list,
it comes back on the owner's next request card to be updated there, and it is chased once
past its date.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine_support import (
    ANN,
    BOB,
    DAN,
    Council,
    approval_data,
    card_text,
    make_council,
    monthly,
    open_period,
    submit_data,
)

from m365perf.cards import validate_card
from m365perf.engine.context import local_day
from m365perf.store import ActionStatus, ImprovementAction, Return, ReturnStatus

ANN_MAIL = "ann.lee@contoso.gov.uk"
DAN_MAIL = "dan.fox@contoso.gov.uk"
ACTIONS = {"required_for": ["red", "special_cause_concern"], "list": "KPI Actions"}
RED = {"value__CP001": "30", "comment__CP001": "Crews were short all month."}


def _council(**options: Any) -> Council:
    return make_council(actions=ACTIONS, **options)


def _request(council: Council, email: str = ANN_MAIL, cycle: int | None = None) -> dict[str, Any]:
    cards = [
        c
        for c in council.cards_to(email)
        if str(c["card_id"]).startswith("request-")
        and (cycle is None or str(c["card_id"]).startswith(f"request-{cycle}-"))
    ]
    assert cards, f"no request card to {email}"
    card: dict[str, Any] = cards[-1]["card"]
    return card


def _ret(council: Council, key: str, cycle: int = 1) -> Return:
    with council.store.transaction() as tx:
        found = tx.find_return(cycle, key)
    assert found is not None
    return found


def _action(council: Council, ret: Return) -> ImprovementAction | None:
    with council.store.transaction() as tx:
        return tx.find_action(ret.id or 0)


def _ids(node: Any) -> list[str]:
    """Every element id in a card, in order."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("id"), str):
            found.append(node["id"])
        for value in node.values():
            found += _ids(value)
    elif isinstance(node, list):
        for item in node:
            found += _ids(item)
    return found


def _elements_after(node: Any, input_id: str) -> list[dict[str, Any]]:
    """The elements that follow the input ``input_id`` in the container holding it."""
    if isinstance(node, dict):
        for value in node.values():
            found = _elements_after(value, input_id)
            if found:
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict) and input_id in _ids(item):
                inner = _elements_after(item.get("items") or item.get("columns") or [], input_id)
                return inner or node[index + 1 :]
        for item in node:
            found = _elements_after(item, input_id)
            if found:
                return found
    return []


def _write_actions(council: Council) -> list[dict[str, Any]]:
    return [m.payload for m in council.outbox("write_action")]


def _enter_red_with_action(council: Council, **action: str) -> dict[str, Any]:
    inputs = {
        **RED,
        "actionwhat__CP001": "Two extra collection rounds a week until March.",
        "actionby__CP001": "2026-11-30",
        **action,
    }
    return council.act(ANN, "submitReturns", submit_data(_request(council), **inputs))


def test_the_request_card_asks_for_an_action_and_says_when_one_is_needed() -> None:
    council = _council()
    card = _request(council)
    validate_card(card)
    ids = _ids(card)
    for name in ("actionwhat", "actionwho", "actionby"):
        assert f"{name}__CP001" in ids
    assert (
        "Needed if the figure is red or it shows a special cause of concern: what will be "
        "done, by whom and by when."
    ) in card_text(card)


def test_a_red_figure_without_an_action_is_refused_with_the_message_by_the_action() -> None:
    council = _council()
    reply = council.act(ANN, "submitReturns", submit_data(_request(council), **RED))

    validate_card(reply)
    assert _ret(council, "CP001").status is ReturnStatus.AWAITING
    after_date = _elements_after(reply, "actionby__CP001")
    assert after_date, "the action's date input is on the re-shown card"
    assert after_date[0]["type"] == "TextBlock" and after_date[0]["color"] == "attention"
    assert after_date[0]["text"].startswith("Add an improvement action: one is required when")
    assert "Crews were short all month." in card_text(reply)  # what was typed is kept
    assert _write_actions(council) == []


def test_an_action_for_nobody_in_the_directory_or_a_past_date_is_refused() -> None:
    council = _council()
    reply = _enter_red_with_action(
        council, actionwho__CP001="nobody@example.com", actionby__CP001="2026-11-01"
    )
    text = card_text(reply)
    assert "“nobody@example.com” is nobody in the directory" in text
    assert "has passed: pick a date from today on." in text
    assert _ret(council, "CP001").status is ReturnStatus.AWAITING
    assert _action(council, _ret(council, "CP001")) is None


def test_an_action_entered_with_a_red_figure_is_stored_audited_and_sent_to_the_list() -> None:
    council = _council()
    _enter_red_with_action(council)

    ret = _ret(council, "CP001")
    assert ret.status is ReturnStatus.RETURNED
    action = _action(council, ret)
    assert action is not None
    assert action.what == "Two extra collection rounds a week until March."
    assert action.who_id == ANN.user_id  # blank: the owner
    assert action.due_on.isoformat() == "2026-11-30"
    assert (action.status, action.raised_for, action.version) == (
        ActionStatus.NOT_STARTED,
        "red",
        1,
    )
    with council.store.transaction() as tx:
        audit = tx.list_audit(subject_type="action", subject_id=action.id)
    assert [e.action for e in audit] == ["action.created"]
    assert audit[0].actor == ANN.user_id and audit[0].after is not None
    assert audit[0].after["due_on"] == "2026-11-30"
    [row] = _write_actions(council)
    assert row["list"] == "KPI Actions" and row["key_fields"] == ["ActionId"]
    fields = row["fields"]
    assert fields["ActionId"] == str(action.id)
    assert (fields["Indicator"], fields["Period"], fields["Status"]) == (
        "Household waste recycled",
        "2026-10",
        "not_started",
    )
    assert (fields["ActionBy"], fields["DueDate"], fields["Version"]) == (
        "Ann Lee",
        "2026-11-30",
        1,
    )


def test_the_approver_sees_the_action_entered_with_the_figure() -> None:
    council = _council()
    _enter_red_with_action(council, actionwho__CP001=DAN_MAIL)
    cards = [c for c in council.cards_to("bob.ray@contoso.gov.uk") if "approval-" in c["card_id"]]
    assert cards
    card = cards[-1]["card"]
    validate_card(card)
    text = card_text(card)
    assert "Two extra collection rounds a week until March." in text
    assert "Dan Fox, by" in text


def test_the_next_cycles_card_lists_the_action_and_updates_it_to_the_list() -> None:
    council = _council()
    _enter_red_with_action(council)
    action = _action(council, _ret(council, "CP001"))
    assert action is not None
    council.tick(days=28)
    open_period(council.engine, "2026-11", now=council.now)

    card = _request(council, cycle=2)
    validate_card(card)
    text = card_text(card)
    assert "Your improvement actions" in text
    assert "Household waste recycled, 2026-10: red" in text
    assert "Two extra collection rounds a week until March." in text
    status_input = f"actionstatus__{action.id}"
    assert status_input in _ids(card)
    [sent] = [c for c in council.cards_to(ANN_MAIL) if str(c["card_id"]).startswith("request-2-")]
    assert "Your improvement actions" in sent["summary"]  # the e-mail's plain body too

    data = submit_data(card, **{status_input: "done", f"actionnote__{action.id}": "Rounds added."})
    assert data["action_versions"] == {str(action.id): 1}
    reply = council.act(ANN, "submitReturns", data)

    validate_card(reply)
    assert "Your improvement actions" not in card_text(reply)  # done: no longer listed
    with council.store.transaction() as tx:
        done = tx.get_action(action.id or 0)
        audit = tx.list_audit(subject_type="action", subject_id=action.id)
    assert (done.status, done.note, done.version) == (ActionStatus.DONE, "Rounds added.", 2)
    assert [e.action for e in audit] == ["action.created", "action.updated"]
    assert audit[-1].before is not None and audit[-1].before["status"] == "not_started"
    rows = _write_actions(council)
    assert [r["fields"]["Version"] for r in rows] == [1, 2]
    assert (rows[-1]["fields"]["Status"], rows[-1]["fields"]["Note"]) == ("done", "Rounds added.")
    assert _ret(council, "CP001", cycle=2).status is ReturnStatus.AWAITING  # figures untouched


def test_an_update_from_a_card_drawn_before_another_update_is_refused_by_the_action() -> None:
    council = _council()
    _enter_red_with_action(council)
    action = _action(council, _ret(council, "CP001"))
    assert action is not None
    council.tick(days=28)
    open_period(council.engine, "2026-11", now=council.now)
    card = _request(council, cycle=2)
    status = f"actionstatus__{action.id}"
    council.act(ANN, "submitReturns", submit_data(card, **{status: "in_progress"}))

    reply = council.act(ANN, "submitReturns", submit_data(card, **{status: "done"}))

    after = _elements_after(reply, f"actionnote__{action.id}")
    assert after and after[0]["text"].startswith("This action changed since your card was drawn")
    with council.store.transaction() as tx:
        assert tx.get_action(action.id or 0).status is ActionStatus.IN_PROGRESS


def _mails(council: Council, to: str) -> list[dict[str, Any]]:
    return [m.payload for m in council.outbox("send_mail") if to in m.payload["to"]]


def _run_to(council: Council, days: int) -> None:
    for _ in range(days * 12):
        council.tick(hours=2)
        council.engine.fire_due_timers(worker="test", now=council.now)


def test_an_overdue_action_is_chased_once_a_day_per_person_until_done() -> None:
    council = _council()
    due = local_day(council.now) + timedelta(days=6)  # Wednesday 11 November
    _enter_red_with_action(council, actionwho__CP001=DAN_MAIL, actionby__CP001=due.isoformat())
    action = _action(council, _ret(council, "CP001"))
    assert action is not None

    _run_to(council, 6)  # to Wednesday: not overdue yet
    assert [m for m in _mails(council, DAN_MAIL) if "improvement action" in m["subject"]] == []
    _run_to(council, 2)  # Thursday: the working day after
    chases = [m for m in _mails(council, DAN_MAIL) if "improvement action" in m["subject"]]
    assert len(chases) == 1
    assert chases[0]["cc"] == [ANN_MAIL]
    assert "Two extra collection rounds a week until March." in chases[0]["text"]
    assert "Household waste recycled, 2026-10: red" in chases[0]["text"]
    with council.store.transaction() as tx:
        chased = tx.list_audit(subject_type="action", subject_id=action.id)
    assert [e.action for e in chased][-1] == "action.chased"

    _run_to(council, 1)  # the flow chases every 2 working days while overdue
    assert len([m for m in _mails(council, DAN_MAIL) if "improvement" in m["subject"]]) == 1
    _run_to(council, 3)
    assert len([m for m in _mails(council, DAN_MAIL) if "improvement" in m["subject"]]) == 2

    with council.store.transaction() as tx:
        tx.update_action(
            action.id or 0, 1, ActionStatus.DONE, note=None, by=DAN.user_id, now=council.now
        )
    _run_to(council, 10)
    assert len([m for m in _mails(council, DAN_MAIL) if "improvement" in m["subject"]]) == 2


def test_approving_the_red_return_keeps_the_action_open() -> None:
    council = _council()
    _enter_red_with_action(council)
    card = [c for c in council.cards_to("bob.ray@contoso.gov.uk") if "approval-" in c["card_id"]]
    council.act(BOB, "approve", approval_data(card[-1]["card"], "approve"))
    action = _action(council, _ret(council, "CP001"))
    assert action is not None and action.status is ActionStatus.NOT_STARTED


def test_a_special_cause_of_concern_needs_an_action_even_when_not_red() -> None:
    steady = [18.0, 18.2, 17.9, 18.1, 18.0, 18.2, 17.9, 18.1, 18.0, 18.1, 17.9, 18.0]
    council = _council(history={"CP002": monthly("2025-10", steady)})
    concern = {"value__CP002": "21.5", "comment__CP002": "A backlog after the system change."}

    reply = council.act(ANN, "submitReturns", submit_data(_request(council), **concern))

    assert "one is required when the figure is showing a special cause of concern" in card_text(
        reply
    )
    assert _ret(council, "CP002").status is ReturnStatus.AWAITING
    council.act(
        ANN,
        "submitReturns",
        submit_data(
            reply,  # the card as re-shown, with "I confirm": the figure is outside its limits
            **concern,
            confirm__CP002="true",
            actionwhat__CP002="Agency staff clear the backlog.",
            actionby__CP002="2026-12-18",
        ),
    )
    ret = _ret(council, "CP002")
    assert ret.status is ReturnStatus.RETURNED and ret.rag is not None
    assert ret.rag.value == "amber"
    action = _action(council, ret)
    assert action is not None and action.raised_for == "special_cause_concern"


def test_the_approvers_digest_shows_an_open_action_from_the_previous_cycle() -> None:
    council = _council(cards="digest")
    _enter_red_with_action(council, actionwho__CP001=DAN_MAIL)  # by Monday 30 November
    council.tick(days=28)  # Thursday 3 December: the action is overdue
    open_period(council.engine, "2026-11", now=council.now)
    council.act(
        ANN,
        "submitReturns",
        submit_data(_request(council, cycle=2), value__CP001="47", comment__CP001="Recovered."),
    )
    council.tick(minutes=2)  # the digest's debounce window
    council.engine.fire_due_timers(worker="test", now=council.now)

    digests = [
        c
        for c in council.cards_to("bob.ray@contoso.gov.uk")
        if c["card_id"].startswith("digest-2-")
    ]
    assert digests, "Bob's digest for 2026-11 was sent"
    card = digests[-1]["card"]
    validate_card(card)
    assert (
        "Action: Two extra collection rounds a week until March. — Dan Fox, by Monday 30 "
        "November 2026 · Not started · Overdue"
    ) in card_text(card).replace("\n", "")  # one line of text runs
