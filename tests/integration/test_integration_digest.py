"""One approver, one digest: a mixed set of decisions on it, through the real bot endpoint.

Sian Roberts supervises eight monthly indicators of one service. She gets one card in
Teams listing all of them; she rejects one with a reason, approves all the items without
flags in one click (the flagged one is left), then approves the flagged one on its own.
Every approver after her gets one digest too; SharePoint's results list ends with a row
for each approved item and none for the rejected one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from integration_support import (
    Bench,
    Posted,
    bench,
    card_text,
    monthly_flow,
    opening_time,
    replied_card,
    results_rows,
    sandbox_health,
)

from m365perf.cards.digest import (
    APPROVE_ALL_VERB,
    APPROVE_VERB,
    REJECT_VERB,
    reason_input_id,
)
from m365perf.domain.kinds import Frequency
from m365perf.engine.digest import read_digest
from m365perf.messages.ids import CardId, CardIdError, DigestCardId
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import RunningSandbox
from m365perf.store import ApprovalStep, ReturnStatus, StepStatus

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
SUPERVISOR = "sian.roberts@contoso.gov.uk"
NO_DATA_OWNER = "owen.walsh@contoso.gov.uk"
REASON = "The tonnage does not match the weighbridge report: please check it."


def _digest_id(posted: Posted) -> DigestCardId | None:
    for action in find_actions(posted.card):
        try:
            card_id = CardId.parse(str((action.get("data") or {}).get("card_id", "")))
        except CardIdError:
            continue
        if isinstance(card_id, DigestCardId):
            return card_id
    return None


def _digests(council: Bench, upn: str) -> list[Posted]:
    return [p for p in council.chat_cards(upn) if _digest_id(p) is not None]


def _let_digests_go(council: Bench) -> None:
    """Past the digest's debounce window, and everything due sent."""
    council.clock.now += timedelta(minutes=2)
    council.service.settle()


def _return_everything(council: Bench) -> str:
    """Every owner returns every figure; Owen says one has no data. That indicator's id."""
    no_data = ""
    for upn in council.everyone():
        asking = [p for p in council.chat_cards(upn) if p.action("submitReturns")]
        if not asking:
            continue
        posted = asking[-1]
        inputs: dict[str, str] = {}
        for key in posted.data("submitReturns")["versions"]:
            if upn == NO_DATA_OWNER and not no_data:
                no_data = key
                inputs[f"nodata__{key}"] = "true"
                inputs[f"nodatareason__{key}"] = "The weighbridge system was down all month."
                continue
            with council.store.transaction() as tx:
                history = tx.history(key, Frequency.MONTHLY)
            inputs[f"value__{key}"] = str(history[-1].value) if history else "50"
            inputs[f"comment__{key}"] = "Taken from the service's system at month end."
        reply = replied_card(council.act(upn, posted, "submitReturns", inputs))
        confirm = [
            str(n["id"]) for n in _nodes(reply) if str(n.get("id", "")).startswith("confirm__")
        ]
        if confirm:
            council.act(upn, posted, "submitReturns", {**inputs, **dict.fromkeys(confirm, "true")})
    assert no_data, f"{NO_DATA_OWNER} had nothing to return"
    return no_data


def _nodes(card: object) -> Iterator[dict[str, object]]:
    stack = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _item_action(posted_card: dict[str, Any], verb: str, return_id: int) -> dict[str, Any]:
    for action in find_actions(posted_card):
        data = action.get("data") or {}
        if action.get("verb") == verb and int(data.get("return_id", 0)) == return_id:
            return action
    raise AssertionError(f"no {verb} for return {return_id} on:\n{card_text(posted_card)}")


def _return_of(council: Bench, cycle_id: int, key: str) -> int:
    return next(r.id or 0 for r in council.returns(cycle_id) if r.indicator_key == key)


def test_a_mixed_digest_is_decided_item_by_item_and_reaches_sharepoint(
    sandbox: RunningSandbox, database_url: str
) -> None:
    health = sandbox_health(sandbox)
    flow = monthly_flow(health, cards="digest")
    start = opening_time(flow, PERIOD)
    with bench(sandbox, database_url, start=start, flow=flow) as council:
        (opened,) = council.service.open_due_cycles()
        council.service.settle()
        cycle_id = opened.cycle_id
        no_data_key = _return_everything(council)
        council.service.settle()
        assert _digests(council, SUPERVISOR) == [], "a digest waits for its debounce window"
        _let_digests_go(council)

        (digest,) = _digests(council, SUPERVISOR)
        sian = council.user(SUPERVISOR)
        view = read_digest(council.store, council.service.engine.ctx, cycle_id, sian["id"])
        assert len(view.items) == 8 and len(view.services) == 1
        assert "Climate, Highways and Streetscene" in digest.text
        flagged = _return_of(council, cycle_id, no_data_key)
        assert [i.return_id for i in view.items if i.flagged] == [flagged]
        unflagged = [i.return_id for i in view.items if not i.flagged]
        rejected, approved_all = unflagged[0], unflagged[1:]

        # 1. reject one, with a reason
        action = _item_action(digest.card, REJECT_VERB, rejected)
        report = council.act(
            SUPERVISOR, digest, REJECT_VERB, {**action["data"], reason_input_id(rejected): REASON}
        )
        after_reject = replied_card(report)
        assert "rejected and sent back to its owner" in card_text(after_reject)
        assert f"Approve all {len(approved_all)} without flags" in card_text(after_reject)

        # 2. approve all without flags, on the card as it now stands in her chat
        (digest,) = _digests(council, SUPERVISOR)
        report = council.act(SUPERVISOR, digest, APPROVE_ALL_VERB)
        after_all = card_text(replied_card(report))
        assert f"{len(approved_all)} items approved." in after_all
        assert "No data" in after_all, "the flagged item is still there"
        assert not [a for a in find_actions(replied_card(report)) if a["verb"] == APPROVE_ALL_VERB]

        # 3. approve the flagged item on its own
        (digest,) = _digests(council, SUPERVISOR)
        report = _click_item(council, digest, APPROVE_VERB, flagged)
        assert "Nothing is waiting for you" in card_text(replied_card(report))

        steps = {s.return_id: s for s in _first_steps(council, cycle_id)}
        assert steps[rejected].status is StepStatus.REJECTED and steps[rejected].reason == REASON
        for return_id in [*approved_all, flagged]:
            assert steps[return_id].status is StepStatus.APPROVED
            assert steps[return_id].decided_by == sian["id"]
        with council.store.transaction() as tx:
            assert tx.get_return(rejected).status is ReturnStatus.REJECTED
        council.service.settle()
        owner_cards = [
            p for upn in council.everyone() for p in council.chat_cards(upn) if REASON in p.text
        ]
        assert owner_cards, "the owner got the rejected return back with the reason"

        # Everyone after her approves what their digest shows, flagged items one by one.
        _approve_the_rest(council, cycle_id)

        with council.store.transaction() as tx:
            statuses = {r.id: r.status for r in tx.list_returns(cycle_id=cycle_id)}
        for return_id in [*approved_all, flagged]:
            assert statuses[return_id] is ReturnStatus.APPROVED
        assert statuses[rejected] is ReturnStatus.REJECTED
        keys = {r.id: r.indicator_key for r in council.returns(cycle_id)}
        rows = {
            r["IndicatorId"]: r
            for r in results_rows(sandbox, council.health)
            if r.get("Period") == PERIOD
        }
        for return_id in approved_all:
            assert keys[return_id] in rows
        assert keys[flagged] in rows and rows[keys[flagged]].get("Value") in (None, "")
        assert keys[rejected] not in rows

        # One digest card per approver for the cycle (parts of a split one aside).
        per_part = Counter(
            (upn, getattr(_digest_id(p), "part", 0))
            for upn in council.everyone()
            for p in _digests(council, upn)
        )
        assert per_part and max(per_part.values()) == 1, per_part
        assert not [
            p for upn in council.everyone() for p in council.chat_cards(upn) if p.action("approve")
        ], "no one-return approval cards on a digest flow"


def _click_item(council: Bench, digest: Posted, verb: str, return_id: int) -> dict[str, Any]:
    """Click one item's button: the sandbox sends the first button of a verb, so the item's
    own data goes with the click (as Teams sends the data of the button pressed)."""
    action = _item_action(digest.card, verb, return_id)
    return council.act(SUPERVISOR, digest, verb, dict(action["data"]))


def _first_steps(council: Bench, cycle_id: int) -> list[ApprovalStep]:
    with council.store.transaction() as tx:
        return [tx.list_steps(r.id or 0)[0] for r in tx.list_returns(cycle_id=cycle_id) if r.id]


def _approve_the_rest(council: Bench, cycle_id: int) -> None:
    """Each approver approves all without flags, then each flagged item, part by part."""
    for _ in range(8):
        _let_digests_go(council)
        acted = False
        for upn in council.everyone():
            for digest in _digests(council, upn):
                if digest.action(APPROVE_ALL_VERB):
                    council.act(upn, digest, APPROVE_ALL_VERB)
                    acted = True
                (fresh,) = [p for p in _digests(council, upn) if p.where == digest.where]
                for action in find_actions(fresh.card):
                    if action.get("verb") == APPROVE_VERB:
                        council.act(upn, fresh, APPROVE_VERB, dict(action["data"]))
                        acted = True
        if not acted:
            return
