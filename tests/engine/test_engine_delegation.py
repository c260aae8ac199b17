"""Delegation and out of office: a delegate decides for an away approver, never the owner.

Ann owns CP001; Bob Ray supervises it (step 1), Cat Doe (Bob's line manager) is head of
service, Dan Fox owns CP003 and is nobody's approver for CP001.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from engine_support import (
    ANN,
    BOB,
    CAT,
    DAN,
    MONTHLY,
    PEOPLE,
    Council,
    approval_data,
    card_text,
    make_council,
    submit_data,
)

from m365perf.engine import BadAction, Engine, NotYours, UnknownSubject
from m365perf.engine.context import local_day
from m365perf.engine.delegation import covers_for, steps_for
from m365perf.flows import load_flow
from m365perf.flows.model import Approval
from m365perf.store import PersonSpec, ReturnStatus, StepStatus
from m365perf.store.testing import memory_store

BOB_EMAIL, DAN_EMAIL, ANN_EMAIL = (
    "bob.ray@contoso.gov.uk",
    "dan.fox@contoso.gov.uk",
    "ann.lee@contoso.gov.uk",
)
CAT_EMAIL = "cat.doe@contoso.gov.uk"


def _council(when_away: str = "delegate", **approval: Any) -> Council:
    council = make_council()
    flow = load_flow(MONTHLY)
    update = {"when_away": when_away, "cards": "per_item", **approval}
    changed = flow.approval.model_copy(update=update)
    flow = flow.model_copy(update={"approval": Approval.model_validate(changed.model_dump())})
    council.engine = Engine(council.store, [flow])
    return council


def _submit_green(council: Council) -> int:
    card = council.cards_to(ANN_EMAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))
    with council.store.transaction() as tx:
        cycle = tx.list_cycles()[0]
        ret = tx.find_return(cycle.id or 0, "CP001")
    assert ret is not None and ret.status is ReturnStatus.RETURNED
    return ret.id or 0


def _delegate(council: Council, delegate: str | None, **days: date) -> int:
    today = local_day(council.now)
    row = council.engine.add_delegation(
        approver=BOB_EMAIL,
        delegate=delegate,
        starts_on=days.get("starts_on", today),
        ends_on=days.get("ends_on", today + timedelta(days=7)),
        by=BOB_EMAIL,
        now=council.now,
    )
    return row.id or 0


def _approval_cards(council: Council, email: str) -> list[dict[str, Any]]:
    return [p for p in council.cards_to(email) if p["subject"].startswith("Approve")]


def _step(council: Council, return_id: int, index: int = 0) -> Any:
    with council.store.transaction() as tx:
        return tx.list_steps(return_id)[index]


def _audit(council: Council, action: str) -> list[Any]:
    with council.store.transaction() as tx:
        return [e for e in tx.list_audit() if e.action == action]


def test_a_delegate_named_after_the_step_was_asked_gets_the_card_and_decides() -> None:
    council = _council()
    return_id = _submit_green(council)
    assert _approval_cards(council, DAN_EMAIL) == []  # Dan is nobody's approver yet
    council.tick(hours=1)
    _delegate(council, DAN_EMAIL)

    (card,) = _approval_cards(council, DAN_EMAIL)
    assert card["subject"].startswith("Approve for Bob Ray:")
    with council.store.transaction() as tx:  # what a digest or the web page lists
        waiting = steps_for(tx, council.engine.ctx, DAN.user_id, local_day(council.now))
        assert steps_for(tx, council.engine.ctx, ANN.user_id, local_day(council.now)) == []
    assert [(s.return_id, d.cover.label if d.cover else None) for s, d in waiting] == [
        (return_id, "Dan Fox for Bob Ray")
    ]
    council.tick(minutes=5)
    reply = council.act(DAN, "approve", approval_data(card["card"], "approve"))

    assert "Dan Fox for Bob Ray" in card_text(reply)
    step = _step(council, return_id)
    assert (step.status, step.decided_by) == (StepStatus.APPROVED, DAN.user_id)
    (decision,) = _audit(council, "step.approved")
    assert decision.actor == DAN.user_id
    assert decision.after["acting"] == "Dan Fox for Bob Ray"
    assert decision.after["for"] == BOB.user_id
    (added,) = _audit(council, "delegation.added")
    assert added.after["label"] == "Dan Fox for Bob Ray"
    (sent,) = _audit(council, "step.delegated")
    assert sent.after["acting"] == "Dan Fox for Bob Ray" and sent.cycle_id is not None
    # Bob's own card now says who decided, with both names
    bob_updates = [
        m.payload for m in council.outbox("update_card") if BOB.user_id in m.payload["card_id"]
    ]
    assert bob_updates and "Dan Fox for Bob Ray" in card_text(bob_updates[-1]["card"])


def test_a_step_asked_while_the_delegation_runs_goes_to_both() -> None:
    council = _council()
    _delegate(council, DAN_EMAIL)
    return_id = _submit_green(council)
    assert [c["subject"][:20] for c in _approval_cards(council, DAN_EMAIL)] == [
        "Approve for Bob Ray:"
    ]
    assert len(_approval_cards(council, BOB_EMAIL)) == 1  # the approver keeps theirs
    council.engine.cover_open_steps(now=council.tick(days=1))  # the morning job: no repeat
    assert len(_approval_cards(council, DAN_EMAIL)) == 1
    reply = council.act(
        BOB, "approve", approval_data(_approval_cards(council, BOB_EMAIL)[0]["card"], "approve")
    )
    assert "Approved" in card_text(reply) and "for Bob" not in card_text(reply)
    assert _step(council, return_id).decided_by == BOB.user_id


def test_a_delegation_that_ended_no_longer_lets_the_delegate_decide() -> None:
    council = _council()
    ident = _delegate(council, DAN_EMAIL)
    return_id = _submit_green(council)
    (card,) = _approval_cards(council, DAN_EMAIL)
    council.engine.end_delegation(ident, by=BOB_EMAIL, now=council.tick(minutes=1))
    reply = council.act(DAN, "approve", approval_data(card["card"], "approve"))
    assert "not one of its approvers" in card_text(reply)
    assert _step(council, return_id).status is StepStatus.ASKED
    (ended,) = _audit(council, "delegation.ended")
    assert ended.after["label"] == "Dan Fox for Bob Ray"


def test_the_delegation_applies_only_on_its_days() -> None:
    council = _council()
    today = local_day(council.now)
    _delegate(
        council, DAN_EMAIL, starts_on=today + timedelta(days=1), ends_on=today + timedelta(days=1)
    )
    return_id = _submit_green(council)
    assert _approval_cards(council, DAN_EMAIL) == []  # not yet
    bob_card = _approval_cards(council, BOB_EMAIL)[0]["card"]
    data = {**approval_data(bob_card, "approve")}
    reply = council.act(DAN, "approve", data)  # Dan with Bob's card data, a day early
    assert "not one of its approvers" in card_text(reply)
    council.engine.cover_open_steps(now=council.tick(days=1))  # the next morning
    (card,) = _approval_cards(council, DAN_EMAIL)
    council.act(DAN, "approve", approval_data(card["card"], "approve"))
    assert _step(council, return_id).decided_by == DAN.user_id


def test_the_owner_is_never_made_their_own_approver_by_delegation() -> None:
    council = _council()
    _delegate(council, ANN_EMAIL)  # Bob names Ann, who owns CP001
    return_id = _submit_green(council)
    assert _approval_cards(council, ANN_EMAIL) == []
    assert _audit(council, "step.delegated") == []
    bob_card = _approval_cards(council, BOB_EMAIL)[0]["card"]
    reply = council.act(ANN, "approve", approval_data(bob_card, "approve"))
    assert "own return" in card_text(reply)
    assert _step(council, return_id).status is StepStatus.ASKED


def test_a_delegate_who_owns_the_return_is_passed_over_for_the_line_manager() -> None:
    council = _council("line_manager")
    _delegate(council, ANN_EMAIL)
    return_id = _submit_green(council)
    assert _approval_cards(council, ANN_EMAIL) == []
    (card,) = _approval_cards(council, CAT_EMAIL)  # Cat is Bob's line manager
    assert card["subject"].startswith("Approve for Bob Ray:")
    council.act(CAT, "approve", approval_data(card["card"], "approve"))
    assert _step(council, return_id).decided_by == CAT.user_id
    (decision,) = _audit(council, "step.approved")
    assert decision.after["acting"] == "Cat Doe for Bob Ray"
    assert decision.after["via"] == "line_manager"


def test_a_delegate_who_owns_the_return_falls_through_to_the_fallback() -> None:
    council = _council(on_self_approval="fallback", fallback=DAN_EMAIL)
    _delegate(council, ANN_EMAIL)
    _submit_green(council)
    assert _approval_cards(council, ANN_EMAIL) == []
    (card,) = _approval_cards(council, DAN_EMAIL)
    assert card["subject"].startswith("Approve for Bob Ray:")


def test_away_sends_to_the_line_manager_when_the_flow_says_so() -> None:
    council = _council("line_manager")
    return_id = _submit_green(council)
    _delegate(council, None)  # m365perf away: nobody named
    (card,) = _approval_cards(council, CAT_EMAIL)
    council.act(CAT, "approve", approval_data(card["card"], "approve"))
    assert _step(council, return_id).decided_by == CAT.user_id
    (away,) = _audit(council, "delegation.away_marked")
    assert away.after["label"] == "Bob Ray away"


@pytest.mark.parametrize("when_away", ["delegate", "wait"])
def test_away_without_line_manager_option_waits_for_the_approver(when_away: str) -> None:
    council = _council(when_away)
    return_id = _submit_green(council)
    _delegate(council, None if when_away == "delegate" else DAN_EMAIL)
    assert _approval_cards(council, CAT_EMAIL) == []
    assert _approval_cards(council, DAN_EMAIL) == []
    bob_card = _approval_cards(council, BOB_EMAIL)[0]["card"]
    reply = council.act(CAT, "approve", approval_data(bob_card, "approve"))
    assert "not one of its approvers" in card_text(reply)
    assert _step(council, return_id).status is StepStatus.ASKED


def test_bad_delegations_are_refused_with_a_reason() -> None:
    council = _council()
    today = local_day(council.now)
    with pytest.raises(UnknownSubject, match="not in the directory"):
        council.engine.add_delegation(
            approver=BOB_EMAIL,
            delegate="nobody@example.com",
            starts_on=today,
            ends_on=today,
            by=BOB_EMAIL,
            now=council.now,
        )
    with pytest.raises(BadAction, match="before it starts"):
        _delegate(council, DAN_EMAIL, starts_on=today, ends_on=today - timedelta(days=1))
    with pytest.raises(NotYours, match="Dan Fox may not change who acts for Bob Ray"):
        council.engine.add_delegation(
            approver=BOB_EMAIL,
            delegate=DAN_EMAIL,
            starts_on=today,
            ends_on=today,
            by=DAN_EMAIL,
            now=council.now,
        )
    first = _delegate(council, DAN_EMAIL)
    with pytest.raises(NotYours, match="may not change"):
        council.engine.end_delegation(first, by=ANN_EMAIL, now=council.now)

    with pytest.raises(BadAction, match=f"delegate end {first}"):
        _delegate(council, CAT_EMAIL, starts_on=today + timedelta(days=2))
    assert [v.id for v in council.engine.delegations()] == [first]
    council.engine.end_delegation(first, by=CAT_EMAIL, now=council.now)  # Bob's line manager
    assert council.engine.delegations() == []
    with pytest.raises(BadAction, match="already ended"):
        council.engine.end_delegation(first, by=BOB_EMAIL, now=council.now)


def test_london_days_bound_a_delegation() -> None:
    """1 to 31 August: from 00:00 BST on the 1st (23:00 UTC on 31 July) to midnight."""
    store = memory_store()
    flow = load_flow(MONTHLY)
    start = datetime(2026, 7, 20, 9, 0, tzinfo=UTC)
    with store.transaction() as tx:
        tx.upsert_people(
            [PersonSpec(id=i, name=n, email=e, line_manager_id=m) for i, n, e, m in PEOPLE],
            now=start,
        )
    engine = Engine(store, [flow])
    engine.add_delegation(
        approver=BOB_EMAIL,
        delegate=DAN_EMAIL,
        starts_on=date(2026, 8, 1),
        ends_on=date(2026, 8, 31),
        by=BOB_EMAIL,
        now=start,
    )

    def acting(moment: datetime) -> list[str]:
        with store.transaction() as tx:
            return [c.label for c in covers_for(tx, flow, BOB.user_id, local_day(moment))]

    assert acting(datetime(2026, 7, 31, 22, 59, tzinfo=UTC)) == []
    assert acting(datetime(2026, 7, 31, 23, 0, tzinfo=UTC)) == ["Dan Fox for Bob Ray"]
    assert acting(datetime(2026, 8, 31, 22, 59, tzinfo=UTC)) == ["Dan Fox for Bob Ray"]
    assert acting(datetime(2026, 8, 31, 23, 0, tzinfo=UTC)) == []
