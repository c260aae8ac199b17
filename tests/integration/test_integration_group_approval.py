"""Both members of the performance team click Approve at the same moment.

The group step needs one of them. Through the real bot endpoint, with both clicks in
flight together: one decision is recorded, the other approver's card says who decided,
and SharePoint gets one results row.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from integration_support import (
    MONTHLY,
    PERFORMANCE_TEAM,
    Bench,
    bench,
    card_text,
    monthly_flow,
    opening_time,
    replied_card,
    results_rows,
    sandbox_health,
)

from m365perf.domain.lifecycle import CURRENT_STEP
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import RunningSandbox
from m365perf.store import ReturnStatus, StepStatus

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
OWNER = "zoe.turner@contoso.gov.uk"
INDICATOR = "COV-003"  # Visitor trips: no target, so no head-of-service step


def _open_and_return(council: Bench) -> int:
    """Open the October cycle, deliver the cards, and have Zoe return her indicator."""
    opened = council.service.open_due_cycles()
    assert [o.created for o in opened] == [True]
    council.service.settle()
    card = council.request_card(OWNER)
    report = council.act(
        OWNER,
        card,
        "submitReturns",
        {f"value__{INDICATOR}": "1840", f"comment__{INDICATOR}": "Summer events brought visitors."},
    )
    assert "Everything due from you for this period has been returned." in card_text(
        replied_card(report)
    )
    (ret,) = [r for r in council.returns(opened[0].cycle_id) if r.indicator_key == INDICATOR]
    assert ret.status is ReturnStatus.RETURNED
    return ret.id or 0


def _approve_up_to_the_group(council: Bench, return_id: int) -> int:
    """Let each named approver before the performance team approve; the group's step index."""
    for _ in range(5):
        council.service.settle()
        waiting = [s for s in council.steps(return_id) if s.status in CURRENT_STEP]
        assert waiting, "the chain ended before the performance team was asked"
        step = waiting[0]
        approvers = {council.user(a)["upn"] for a in step.approvers}
        if approvers == set(PERFORMANCE_TEAM):
            return step.step_index
        upn = sorted(approvers)[0]
        report = council.act(upn, council.approval_card(upn, return_id, step.step_index), "approve")
        assert "Approved by" in card_text(replied_card(report))
    raise AssertionError("the performance team was never asked")


def test_two_approvers_at_once_one_decision_one_results_row(
    sandbox: RunningSandbox, database_url: str
) -> None:
    start = opening_time(monthly_flow(sandbox_health(sandbox)), PERIOD)
    with bench(sandbox, database_url, start=start) as council:
        return_id = _open_and_return(council)
        group_step = _approve_up_to_the_group(council, return_id)
        cards = {upn: council.approval_card(upn, return_id, group_step) for upn in PERFORMANCE_TEAM}

        replies = _click_together(council, cards)

        steps = council.steps(return_id)
        decided = steps[group_step]
        assert decided.status is StepStatus.APPROVED
        winner = council.user(decided.decided_by or "")
        loser = next(upn for upn in PERFORMANCE_TEAM if upn != winner["upn"])
        with council.store.transaction() as tx:
            ret = tx.get_return(return_id)
            events = tx.list_audit()
        assert ret.status is ReturnStatus.APPROVED
        group_decisions = [
            e
            for e in events
            if e.action in ("step.approved", "step.rejected")
            and e.subject_id == str(return_id)
            and (e.after or {}).get("step") == decided.name
        ]
        assert len(group_decisions) == 1
        assert sum(1 for e in events if e.action == "return.approved") == 1

        # the loser's own click was answered with who decided, not with a second decision
        lost = card_text(replied_card(replies[loser]))
        assert f"Approved by {winner['display_name']}" in lost
        assert council.user(loser)["display_name"] not in lost
        assert find_actions(replied_card(replies[loser])) == []

        council.service.settle()
        # and the card left in the loser's chat says the same
        (left,) = [p for p in council.chat_cards(loser) if p.where == cards[loser].where]
        assert f"Approved by {winner['display_name']}" in left.text
        rows = [
            r
            for r in results_rows(sandbox, council.health)
            if (r.get("IndicatorId"), r.get("Period")) == (INDICATOR, PERIOD)
        ]
        assert len(rows) == 1
        assert rows[0]["Value"] == 1840
        assert rows[0]["ApprovedBy"] == winner["display_name"]
        with council.store.transaction() as tx:
            write_backs = [
                m for m in tx.list_outbox(kind="write_back") if m.payload["return_id"] == return_id
            ]
            assert tx.find_cycle(MONTHLY, PERIOD) is not None
        assert len(write_backs) == 1


def _click_together(council: Bench, cards: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Both approvers click Approve, released by one barrier; each from its own connection."""
    gate = threading.Barrier(len(cards))
    replies: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def click(upn: str) -> None:
        try:
            with requests.Session() as http:
                gate.wait(timeout=10)
                replies[upn] = council.act(upn, cards[upn], "approve", http=http)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(upn,)) for upn in cards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a click never came back"
    if errors:
        raise errors[0]
    return replies
