"""One digest per approver: one card per cycle, updated in place, decided item by item.

Every decision on a digest goes through the same guarded step decision as the per-item
card: an item a colleague decided first, or one out of date, changes nothing twice.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import ANN, BEN, BOB, DAN, NADIA, Council, make_council, submit_data
from engine_support import card_text as raw_text

from m365perf.cards import card_size, validate_card
from m365perf.cards.digest import (
    APPROVE_ALL_VERB,
    APPROVE_VERB,
    REFRESH_VERB,
    REJECT_VERB,
    reason_input_id,
)
from m365perf.engine.digest import (
    ItemRef,
    approve_item,
    approve_unflagged,
    read_digest,
    reject_item,
)
from m365perf.messages import CardSent
from m365perf.messages.ids import CardId, DigestCardId
from m365perf.store import ReturnStatus, StepStatus

BOB_EMAIL = "bob.ray@contoso.gov.uk"


def text_of(card: dict[str, Any]) -> str:
    return " ".join(raw_text(card).split())


def settle(council: Council, minutes: float = 2) -> None:
    """Let the digest's debounce window pass and its timer fire."""
    council.tick(minutes=minutes)
    council.engine.fire_due_timers(worker="test", now=council.now)


def digests_to(council: Council, email: str) -> list[dict[str, Any]]:
    return [p for p in council.cards_to(email) if str(p["card_id"]).startswith("digest-")]


def updates_of(council: Council, card_id: str) -> list[dict[str, Any]]:
    return [m.payload for m in council.outbox("update_card") if m.payload["card_id"] == card_id]


def actions(card: dict[str, Any], verb: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") == verb:
                found.append(node)
            stack.extend(v for k, v in node.items() if k != "refresh")
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found, key=lambda a: int(a["data"].get("return_id", 0)))


def return_id(council: Council, key: str) -> int:
    with council.store.transaction() as tx:
        return next(r.id or 0 for r in tx.list_returns() if r.indicator_key == key)


def status(council: Council, key: str) -> tuple[ReturnStatus, list[StepStatus]]:
    with council.store.transaction() as tx:
        ret = next(r for r in tx.list_returns() if r.indicator_key == key)
        return ret.status, [s.status for s in tx.list_steps(ret.id or 0)]


def submit_all(council: Council) -> None:
    """Ann returns CP001 (green) and CP002 (green); Dan says CP003 has no data (a flag)."""
    ann = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(
        ANN,
        "submitReturns",
        submit_data(
            ann,
            value__CP001="47",
            comment__CP001="Garden waste season.",
            value__CP002="19",
            comment__CP002="Fewer claims than usual.",
        ),
    )
    dan = council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    council.act(
        DAN,
        "submitReturns",
        submit_data(
            dan,
            nodata__CP003="true",
            nodatareason__CP003="The reporting system was down all month.",
        ),
    )


@pytest.fixture
def council() -> Council:
    council = make_council(cards="digest")
    submit_all(council)
    return council


def test_an_approver_gets_one_card_listing_everything_grouped_by_service(
    council: Council,
) -> None:
    assert digests_to(council, BOB_EMAIL) == [], "nothing is sent before the debounce window"
    assert not [p for p in council.cards_to(BOB_EMAIL) if "approval-" in str(p["card_id"])]
    settle(council)
    sent = digests_to(council, BOB_EMAIL)
    assert len(sent) == 1
    card = sent[0]["card"]
    validate_card(card)
    words = text_of(card)
    assert words.index("Revenues") < words.index("Days to process new benefit claims")
    assert words.index("Streetpride") < words.index("Fly-tips reported")
    assert words.index("Revenues") < words.index("Streetpride")
    assert "Household waste recycled" in words and "47%" in words and "Green" in words
    assert "Garden waste season." in words
    assert "no data this period" in words, "CP003's flag is shown"
    assert "3 items waiting, 1 flagged" in words
    approve_all = actions(card, APPROVE_ALL_VERB)
    assert sorted(int(i["return_id"]) for i in approve_all[0]["data"]["items"]) == sorted(
        [return_id(council, "CP001"), return_id(council, "CP002")]
    )
    assert len(actions(card, APPROVE_VERB)) == 3
    assert CardId.parse(sent[0]["card_id"]) == DigestCardId(1, BOB.user_id, 1)


def test_a_burst_of_changes_makes_one_update(council: Council) -> None:
    settle(council)
    card_id = digests_to(council, BOB_EMAIL)[0]["card_id"]
    refs = read_digest(council.store, council.engine.ctx, 1, BOB.user_id).items
    # Two decisions in one window: one update of the card, after the window.
    approve_item(council.store, council.engine.ctx, BOB, 1, ItemRef.of(refs[0]), now=council.now)
    approve_item(council.store, council.engine.ctx, BOB, 1, ItemRef.of(refs[1]), now=council.now)
    assert updates_of(council, card_id) == []
    settle(council)
    updates = updates_of(council, card_id)
    assert len(updates) == 1
    assert "1 item waiting; 2 decided so far" in text_of(updates[0]["card"])
    assert len(digests_to(council, BOB_EMAIL)) == 1, "updated in place, never sent again"


def test_approve_all_without_flags_leaves_the_flagged_item(council: Council) -> None:
    settle(council)
    card = digests_to(council, BOB_EMAIL)[0]["card"]
    action = actions(card, APPROVE_ALL_VERB)[0]
    reply = council.act(BOB, APPROVE_ALL_VERB, action["data"])
    validate_card(reply)
    assert status(council, "CP001")[1][0] is StepStatus.APPROVED
    assert status(council, "CP002")[1][0] is StepStatus.APPROVED
    assert status(council, "CP003") == (
        ReturnStatus.RETURNED,
        [StepStatus.ASKED, StepStatus.PENDING, StepStatus.PENDING],
    )
    words = text_of(reply)
    assert "2 items approved." in words
    assert "Fly-tips reported" in words and "Household waste recycled" not in words
    assert actions(reply, APPROVE_ALL_VERB) == [], "nothing unflagged is left"


def test_approve_all_refuses_an_item_flagged_whatever_the_click_says(council: Council) -> None:
    settle(council)
    everything = [
        ItemRef.of(i) for i in read_digest(council.store, council.engine.ctx, 1, BOB.user_id).items
    ]
    answer = approve_unflagged(
        council.store, council.engine.ctx, BOB, 1, everything, now=council.now
    )
    left = [r for r in answer.results if not r.decided]
    assert [r.indicator_name for r in left] == ["Fly-tips reported"]
    assert "has flags" in left[0].message
    assert status(council, "CP003")[1][0] is StepStatus.ASKED


def test_reject_one_with_a_reason_sends_it_back(council: Council) -> None:
    settle(council)
    card = digests_to(council, BOB_EMAIL)[0]["card"]
    cp2 = return_id(council, "CP002")
    reject = next(a for a in actions(card, REJECT_VERB) if int(a["data"]["return_id"]) == cp2)
    empty = council.act(BOB, REJECT_VERB, {**reject["data"], reason_input_id(cp2): "  "})
    assert "Give a reason for rejecting" in text_of(empty)
    assert status(council, "CP002")[0] is ReturnStatus.RETURNED
    reply = council.act(
        BOB, REJECT_VERB, {**reject["data"], reason_input_id(cp2): "Check the claim count."}
    )
    assert status(council, "CP002") == (
        ReturnStatus.REJECTED,
        [StepStatus.REJECTED, StepStatus.SKIPPED, StepStatus.SKIPPED],
    )
    assert "Days to process new benefit claims: rejected and sent back" in text_of(reply)
    back = council.cards_to("ann.lee@contoso.gov.uk")[-1]
    assert str(back["card_id"]).startswith("rejection-")
    assert "Check the claim count." in text_of(back["card"])


def _to_performance_team(council: Council) -> None:
    """Bob approves everything; CP001 and CP002 are green, so they skip to the group."""
    settle(council)
    refs = [
        ItemRef.of(i) for i in read_digest(council.store, council.engine.ctx, 1, BOB.user_id).items
    ]
    for ref in refs:
        approve_item(council.store, council.engine.ctx, BOB, 1, ref, now=council.now)
    settle(council)


def test_a_colleague_in_a_group_step_acts_first(council: Council) -> None:
    _to_performance_team(council)
    nadia = digests_to(council, "nadia.clarke@contoso.gov.uk")
    ben = digests_to(council, "ben.foster@contoso.gov.uk")
    assert len(nadia) == 1 and len(ben) == 1
    ben_card = ben[0]["card"]
    cp1 = return_id(council, "CP001")
    ben_approve = next(
        a for a in actions(ben_card, APPROVE_VERB) if int(a["data"]["return_id"]) == cp1
    )
    nadia_reply = council.act(
        NADIA,
        APPROVE_VERB,
        next(
            a for a in actions(nadia[0]["card"], APPROVE_VERB) if int(a["data"]["return_id"]) == cp1
        )["data"],
    )
    assert "Household waste recycled: approved." in text_of(nadia_reply)
    assert status(council, "CP001")[0] is ReturnStatus.APPROVED
    # Ben's card still shows CP001 until its update goes out; his click decides nothing.
    reply = council.act(BEN, APPROVE_VERB, ben_approve["data"])
    assert "Household waste recycled: Already approved by Nadia Clarke." in text_of(reply)
    with council.store.transaction() as tx:
        steps = tx.list_steps(cp1)
    assert steps[-1].decided_by == NADIA.user_id
    settle(council)
    update = updates_of(council, ben[0]["card_id"])[-1]["card"]
    assert "Household waste recycled" not in text_of(update)


def test_a_stale_version_is_reported_and_not_decided(council: Council) -> None:
    settle(council)
    cp2 = return_id(council, "CP002")
    item = read_digest(council.store, council.engine.ctx, 1, BOB.user_id).find(cp2)
    assert item is not None
    stale = ItemRef(cp2, item.version + 1, item.step_index)
    answer = approve_item(council.store, council.engine.ctx, BOB, 1, stale, now=council.now)
    assert not answer.results[0].decided
    assert "no longer waiting" in answer.results[0].message or "newer" in answer.results[0].message
    assert status(council, "CP002")[1][0] is StepStatus.ASKED
    reject = reject_item(
        council.store, council.engine.ctx, BOB, 1, ItemRef.of(item), "Wrong.", now=council.now
    )
    again = approve_item(
        council.store, council.engine.ctx, BOB, 1, ItemRef.of(item), now=council.now
    )
    assert reject.results[0].decided and not again.results[0].decided
    assert status(council, "CP002")[0] is ReturnStatus.REJECTED


def test_only_the_digests_approver_may_click_it(council: Council) -> None:
    settle(council)
    card = digests_to(council, BOB_EMAIL)[0]["card"]
    action = actions(card, APPROVE_ALL_VERB)[0]
    reply = council.act(NADIA, APPROVE_ALL_VERB, action["data"])
    assert "This card is not for you" in text_of(reply)
    assert status(council, "CP001")[1][0] is StepStatus.ASKED


def _long_rows(count: int) -> list[list[str]]:
    """``count`` indicators of Ann's, all supervised by Bob, spread over three services."""
    return [
        [
            f"LP{n:03d}",
            f"Long indicator number {n} with a descriptive title",
            "number",
            "lower_is_better",
            "Monthly",
            "",
            "",
            "",
            "",
            "ann.lee@contoso.gov.uk",
            "bob.ray@contoso.gov.uk",
            "cat.doe@contoso.gov.uk",
            f"Service {n % 3}",
            "Yes",
        ]
        for n in range(1, count + 1)
    ]


def _return_all(council: Council) -> None:
    """Ann returns every figure on every part of her request, with long commentary."""
    for payload in council.cards_to("ann.lee@contoso.gov.uk"):
        action = actions(payload["card"], "submitReturns")
        if not action:
            continue
        inputs: dict[str, str] = {}
        for key in action[0]["data"]["versions"]:
            inputs[f"value__{key}"] = "12"
            inputs[f"comment__{key}"] = "Commentary " * 40
        council.act(ANN, "submitReturns", {**action[0]["data"], **inputs})


def test_a_long_digest_is_split_into_parts_under_the_size_limit() -> None:
    council = make_council(rows=_long_rows(30), cards="digest")
    _return_all(council)
    settle(council)
    parts = digests_to(council, BOB_EMAIL)
    assert len(parts) > 1
    seen: list[str] = []
    for number, payload in enumerate(parts, 1):
        validate_card(payload["card"])
        assert card_size(payload["card"]) <= council.engine.ctx.config.max_card_bytes
        assert f"part {number} of {len(parts)}" in text_of(payload["card"])
        seen += [str(a["data"]["return_id"]) for a in actions(payload["card"], APPROVE_VERB)]
    assert len(seen) == 30 and len(set(seen)) == 30, "every item on exactly one part"


def _delivered(council: Council) -> None:
    """The dispatcher reports every queued card as posted in Teams."""
    for row in council.outbox("send_card"):
        council.engine.on_sent(
            row,
            CardSent(
                conversation_id="a:chat", activity_id=f"act-{row.id}", service_url="https://x"
            ),
            council.now,
        )


def test_a_digest_that_shrinks_updates_the_parts_left_over() -> None:
    council = make_council(rows=_long_rows(24), cards="digest")
    _return_all(council)
    settle(council)
    parts = digests_to(council, BOB_EMAIL)
    assert len(parts) >= 2
    _delivered(council)
    view = read_digest(council.store, council.engine.ctx, 1, BOB.user_id)
    answer = approve_unflagged(
        council.store,
        council.engine.ctx,
        BOB,
        1,
        [ItemRef.of(i) for i in view.items],
        now=council.now,
    )
    assert all(r.decided for r in answer.results)
    settle(council)
    assert len(digests_to(council, BOB_EMAIL)) == len(parts), "no part is sent twice"
    first = updates_of(council, parts[0]["card_id"])[-1]["card"]
    assert "Nothing is waiting for you: you are up to date." in text_of(first)
    last = updates_of(council, parts[-1]["card_id"])[-1]["card"]
    assert actions(last, APPROVE_VERB) == [] and actions(last, APPROVE_ALL_VERB) == []
    validate_card(last)


def test_refresh_answers_with_the_digest_as_it_stands(council: Council) -> None:
    _to_performance_team(council)
    ben = digests_to(council, "ben.foster@contoso.gov.uk")[0]
    nadia_view = read_digest(council.store, council.engine.ctx, 1, NADIA.user_id)
    approve_item(
        council.store,
        council.engine.ctx,
        NADIA,
        1,
        ItemRef.of(nadia_view.items[0]),
        now=council.now,
    )
    (refresh,) = actions(ben["card"], REFRESH_VERB)
    reply = council.act(BEN, REFRESH_VERB, refresh["data"])
    assert nadia_view.items[0].indicator_name not in text_of(reply)
    assert "decided so far" in text_of(reply)


def test_a_forged_item_of_someone_elses_names_nothing_and_changes_nothing(
    council: Council,
) -> None:
    settle(council)
    cp1 = return_id(council, "CP001")
    item = read_digest(council.store, council.engine.ctx, 1, BOB.user_id).find(cp1)
    assert item is not None
    answer = approve_item(
        council.store, council.engine.ctx, DAN, 1, ItemRef.of(item), now=council.now
    )
    (result,) = answer.results
    assert not result.decided and result.indicator_name == f"Return {cp1}"
    assert "Household waste recycled" not in " ".join(answer.view.notes)
    assert status(council, "CP001")[1][0] is StepStatus.ASKED


def test_a_delegate_finds_the_away_approvers_items_on_their_own_digest(
    council: Council,
) -> None:
    """Bob is away; Dan acts for him: Dan's digest lists Bob's items (not Dan's own
    CP003), he approves one from it, and the audit names both."""
    from datetime import timedelta

    from m365perf.engine.context import local_day

    today = local_day(council.now)
    council.engine.add_delegation(
        approver=BOB_EMAIL,
        delegate="dan.fox@contoso.gov.uk",
        starts_on=today,
        ends_on=today + timedelta(days=7),
        by=BOB_EMAIL,
        now=council.now,
    )
    settle(council)
    (dan_digest,) = digests_to(council, "dan.fox@contoso.gov.uk")
    words = text_of(dan_digest["card"])
    assert "Household waste recycled" in words
    assert "Fly-tips reported" not in words, "Dan owns CP003: never his own approver"

    (approve,) = [
        a
        for a in actions(dan_digest["card"], APPROVE_VERB)
        if a["data"]["return_id"] == return_id(council, "CP001")
    ]
    council.act(DAN, APPROVE_VERB, approve["data"])

    assert status(council, "CP001")[1][0] is StepStatus.APPROVED
    with council.store.transaction() as tx:
        (decision,) = [e for e in tx.list_audit() if e.action == "step.approved"]
    assert decision.actor == DAN.user_id
    assert decision.after["acting"] == "Dan Fox for Bob Ray"


def test_a_delegates_approve_all_leaves_flagged_items_like_the_approvers(
    council: Council,
) -> None:
    """Ben acts for Bob: his digest says whose items they are, and "approve all" with
    every ref (a forged or stale click naming the flagged CP003 too) leaves CP003."""
    from datetime import timedelta

    from m365perf.engine.context import local_day

    today = local_day(council.now)
    council.engine.add_delegation(
        approver=BOB_EMAIL,
        delegate="ben.foster@contoso.gov.uk",
        starts_on=today,
        ends_on=today + timedelta(days=7),
        by=BOB_EMAIL,
        now=council.now,
    )
    settle(council)
    view = read_digest(council.store, council.engine.ctx, 1, BEN.user_id, now=council.now)
    assert {i.indicator_key for i in view.items} == {"CP001", "CP002", "CP003"}
    assert {i.acting_for for i in view.items} == {"Bob Ray"}
    (ben_digest,) = digests_to(council, "ben.foster@contoso.gov.uk")
    assert "Supervisor check, for Bob Ray" in text_of(ben_digest["card"])

    every = [ItemRef.of(i) for i in view.items]
    approve_unflagged(council.store, council.engine.ctx, BEN, 1, every, now=council.now)

    assert status(council, "CP001")[1][0] is StepStatus.APPROVED
    assert status(council, "CP003")[1][0] is StepStatus.ASKED, "flagged: left for a person"
