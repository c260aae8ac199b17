"""Approval strictly in order, cycles that close by their flow's rule, rejected returns chased.

Every refused click changes nothing and says why on the card it answers with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_support import (
    ANN,
    BEN,
    BOB,
    CAT,
    DAN,
    NADIA,
    Council,
    approval_data,
    make_council,
    submit_data,
)
from engine_support import (
    card_text as raw_text,
)

from m365perf.store import CycleStatus, Return, ReturnStatus, StepStatus


def card_text(card: dict[str, Any]) -> str:
    """The card's text as a person reads it (runs joined, spaces collapsed)."""
    return " ".join(raw_text(card).split())


@pytest.fixture
def council() -> Council:
    return make_council()


def _ret(council: Council, key: str) -> Return:
    with council.store.transaction() as tx:
        return next(r for r in tx.list_returns() if r.indicator_key == key)


def _state(council: Council) -> list[tuple[Any, ...]]:
    """Everything a click could change: returns and steps, with versions."""
    with council.store.transaction() as tx:
        rows: list[tuple[Any, ...]] = []
        for r in tx.list_returns():
            rows.append((r.id, r.status, r.version))
            rows += [(s.id, s.status, s.version, s.decided_by) for s in tx.list_steps(r.id or 0)]
        rows += [(c.id, c.status, c.version) for c in tx.list_cycles()]
        return rows


def _last_card(council: Council, email: str) -> dict[str, Any]:
    card: dict[str, Any] = council.cards_to(email)[-1]["card"]
    return card


def _submit_red(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(
        ANN,
        "submitReturns",
        submit_data(card, value__CP001="30", comment__CP001="Contract change in September."),
    )


def test_a_later_step_cannot_decide_before_the_current_one(council: Council) -> None:
    _submit_red(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    assert _ret(council, "CP001").status is ReturnStatus.RETURNED
    before = _state(council)
    # Nadia (performance team, step 3) approves with step 1's card data turned to step 3.
    tampered = {**approval_data(bob_card, "approve"), "step_index": 2}
    reply = council.act(NADIA, "approve", tampered)
    assert "waiting for Supervisor check, not for you yet" in card_text(reply)
    assert _state(council) == before
    assert council.outbox("write_back") == []


def test_the_chain_is_walked_in_order_and_written_back_once(council: Council) -> None:
    _submit_red(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "approve", approval_data(bob_card, "approve"))
    # The second click on the same card changes nothing and says who decided when.
    before = _state(council)
    again = council.act(BOB, "approve", approval_data(bob_card, "approve"))
    assert "Approved by Bob Ray" in card_text(again)
    assert _state(council) == before
    cat_card = _last_card(council, "cat.doe@contoso.gov.uk")
    # The performance team is not asked yet: their step is still pending.
    assert council.cards_to("nadia.clarke@contoso.gov.uk") == []
    council.act(CAT, "approve", approval_data(cat_card, "approve"))
    # An earlier step's card clicked once a later step is current: already decided.
    stale = council.act(BOB, "approve", approval_data(bob_card, "approve"))
    assert "Approved by Bob Ray" in card_text(stale)
    nadia_card = _last_card(council, "nadia.clarke@contoso.gov.uk")
    ben_card = _last_card(council, "ben.foster@contoso.gov.uk")
    council.act(NADIA, "approve", approval_data(nadia_card, "approve"))
    # Group step: the first member decides; the other's card shows the outcome.
    late = council.act(BEN, "approve", approval_data(ben_card, "approve"))
    assert "Approved by Nadia Clarke" in card_text(late)
    updates = [m for m in council.outbox("update_card") if "ben" in m.payload["card_id"] or True]
    assert any(u.payload["card_id"] == ben_card["actions"][0]["data"]["card_id"] for u in updates)
    ret = _ret(council, "CP001")
    assert ret.status is ReturnStatus.APPROVED
    with council.store.transaction() as tx:
        steps = tx.list_steps(ret.id or 0)
    assert [s.status for s in steps] == [StepStatus.APPROVED] * 3
    assert [s.decided_by for s in steps] == [BOB.user_id, CAT.user_id, NADIA.user_id]
    writes = council.outbox("write_back")
    assert len(writes) == 1
    assert writes[0].payload["fields"]["ApprovedBy"] == "Nadia Clarke"


def test_a_step_whose_condition_does_not_hold_is_skipped_with_why(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))  # green
    council.act(
        BOB, "approve", approval_data(_last_card(council, "bob.ray@contoso.gov.uk"), "approve")
    )
    return_id = _ret(council, "CP001").id or 0
    with council.store.transaction() as tx:
        steps = tx.list_steps(return_id)
    assert [s.status for s in steps] == [StepStatus.APPROVED, StepStatus.SKIPPED, StepStatus.ASKED]
    assert "only when" in (steps[1].reason or "") or "red" in (steps[1].reason or "")
    assert council.cards_to("cat.doe@contoso.gov.uk") == []


def test_a_stranger_is_told_the_card_is_not_for_them_and_sees_no_figures(council: Council) -> None:
    _submit_red(council)
    before = _state(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    reply = council.act(DAN, "approve", approval_data(bob_card, "approve"))
    text = card_text(reply)
    assert "not one of its approvers" in text
    assert "30" not in text and "Household waste" not in text
    assert _state(council) == before


def test_a_card_for_an_older_version_is_superseded(council: Council) -> None:
    _submit_red(council)
    old_card = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "reject", approval_data(old_card, "reject", reason="Check the tonnage."))
    rejection = _last_card(council, "ann.lee@contoso.gov.uk")
    council.act(
        ANN,
        "submitReturns",
        submit_data(rejection, value__CP001="31", comment__CP001="Recounted."),
    )
    before = _state(council)
    reply = council.act(BOB, "approve", {**approval_data(old_card, "approve")})
    assert "out of date" in card_text(reply)
    assert _state(council) == before


def test_a_rejected_return_is_chased_saying_why_it_was_sent_back(council: Council) -> None:
    _submit_red(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "reject", approval_data(bob_card, "reject", reason="Check the tonnage."))
    assert _ret(council, "CP001").status is ReturnStatus.REJECTED
    sent = len(council.cards_to("ann.lee@contoso.gov.uk"))
    # Two working days after it was sent back (Mon 9 Nov) it is chased on a card of its
    # own; that morning's cycle reminder asks only for CP002, never returned.
    while council.now < datetime(2026, 11, 9, 12, 0, tzinfo=UTC):
        council.tick(hours=1)
        council.engine.fire_due_timers(worker="test", now=council.now)
    reminders = council.cards_to("ann.lee@contoso.gov.uk")[sent:]
    chases = [r for r in reminders if "Household waste recycled" in card_text(r["card"])]
    assert len(chases) == 1, "the rejected return was not chased, or chased twice"
    text = card_text(chases[0]["card"])
    assert "Sent back by Bob Ray" in text and "Check the tonnage." in text
    assert "sent back" in chases[0]["subject"]


def test_the_first_return_starts_collecting(council: Council) -> None:
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.OPEN
    _submit_red(council)
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.COLLECTING


def _approve_everything(council: Council) -> None:
    ann = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann, value__CP001="46", value__CP002="19"))
    dan = council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    council.act(DAN, "submitReturns", submit_data(dan, value__CP003="120"))
    for _ in range(3):
        for email, who in (("bob.ray@contoso.gov.uk", BOB), ("nadia.clarke@contoso.gov.uk", NADIA)):
            for payload in council.cards_to(email):
                council.act(who, "approve", approval_data(payload["card"], "approve"))


def test_a_cycle_closes_when_every_return_is_approved(council: Council) -> None:
    _approve_everything(council)
    with council.store.transaction() as tx:
        cycle = tx.list_cycles()[0]
        assert cycle.status is CycleStatus.CLOSED
        assert cycle.close_reason == "every return is approved"
        chasers = [t for t in tx.list_timers(subject_type="cycle") if t.status == "pending"]
    assert chasers == []
    assert any("closed" in m.payload["subject"] for m in council.outbox("send_mail"))


def _run_to(council: Council, until: datetime) -> None:
    while council.now < until:
        council.tick(hours=2)
        council.engine.fire_due_timers(worker="test", now=council.now)


@pytest.mark.parametrize("late", ["correction", "refuse"])
def test_a_cycle_closes_on_its_date_and_late_figures_follow_the_flow(late: str) -> None:
    council = make_council(
        close={"all_approved": False, "working_days_after_due": 2, "late_returns": late}
    )
    dan_card = council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    # Due Wednesday 11 November; closes two working days later, Friday 13th at 09:00.
    _run_to(council, datetime(2026, 11, 13, 8, 0, tzinfo=UTC))
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is not CycleStatus.CLOSED
    _run_to(council, datetime(2026, 11, 13, 12, 0, tzinfo=UTC))
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.CLOSED
    assert _ret(council, "CP003").status is ReturnStatus.MISSED
    reply = council.act(DAN, "submitReturns", submit_data(dan_card, value__CP003="120"))
    if late == "correction":
        # Closing moved the return on: the old card answers with the current one, the
        # figure Dan typed still in it, and that card takes it.
        assert "changed since" in card_text(reply)
        reply = council.act(DAN, "submitReturns", submit_data(reply, value__CP003="120"))
        ret = _ret(council, "CP003")
        assert ret.status is ReturnStatus.RETURNED and ret.late
        with council.store.transaction() as tx:
            actions = [e.action for e in tx.list_audit(subject_type="return")]
        assert "return.submitted_late" in actions
    else:
        assert "This cycle closed on" in card_text(reply)
        assert _ret(council, "CP003").status is ReturnStatus.MISSED


def test_closing_by_hand_twice_closes_once(council: Council) -> None:
    cycle_id = _ret(council, "CP001").cycle_id
    first = council.engine.close_cycle(
        cycle_id, by="perf@contoso.gov.uk", reason="Year end", now=council.now
    )
    assert first.closed and set(first.missed) == {"CP001", "CP002", "CP003"}
    council.tick(minutes=5)
    second = council.engine.close_cycle(cycle_id, by="someone", reason="again", now=council.now)
    assert not second.closed and second.closed_by == "perf@contoso.gov.uk"
    assert second.reason == "Year end"
    # Nothing chases a closed cycle.
    before = len(council.outbox("send_card"))
    _run_to(council, council.now + timedelta(days=14))
    assert len(council.outbox("send_card")) == before
