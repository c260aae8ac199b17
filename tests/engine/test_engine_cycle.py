"""The engine end to end on the store: cards out, returns in, approvals, write-back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_support import (
    ANN,
    BEN,
    BOB,
    CAT,
    DAN,
    MONTHLY,
    NADIA,
    START,
    Council,
    approval_data,
    card_text,
    make_council,
    monthly,
    open_period,
    submit_data,
)

from m365perf.cards import validate_card
from m365perf.domain.periods import Period
from m365perf.engine import BadAction, Engine, NotYours
from m365perf.flows import load_flow
from m365perf.flows.model import Flow
from m365perf.messages.names import AuditAction
from m365perf.plan.register import read_indicators
from m365perf.store import ReturnStatus, StepStatus, create_store
from m365perf.store.testing import memory_store
from m365perf.tenant import results_list

HISTORY = {
    "CP001": monthly(
        "2025-04", [44, 46, 45, 47, 44, 45, 46, 45, 44, 46, 45, 47, 46, 45, 44, 46, 45, 46]
    ),
    "CP002": monthly("2025-10", [19, 21, 18, 20, 19, 22, 20, 21, 19, 20, 18, 21]),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def council(request: pytest.FixtureRequest) -> Iterator[Council]:
    # SQLite in memory: the same SqlStore and migrations as a file (tests/store covers files).
    store = (
        create_store(request.getfixturevalue("postgres_schema_url"), migrate=True)
        if request.param == "postgres"
        else memory_store()
    )
    council = make_council(store, history=HISTORY)
    yield council
    store.close()


def _returns(council: Council) -> dict[str, object]:
    with council.store.transaction() as tx:
        return {r.indicator_key: r for r in tx.list_returns(cycle_id=1)}


def test_one_card_per_owner_with_all_their_indicators(council: Council) -> None:
    (ann_card,) = council.cards_to("ann.lee@contoso.gov.uk")
    text = card_text(ann_card["card"])
    assert "Household waste recycled" in text and "Days to process new benefit claims" in text
    validate_card(ann_card["card"])
    assert len(council.cards_to("dan.fox@contoso.gov.uk")) == 1
    assert council.cards_to("bob.ray@contoso.gov.uk") == []


def test_reopening_changes_nothing(council: Council) -> None:
    before = len(council.outbox())
    flow = council.engine.flows["monthly-corporate-kpis"]
    from engine_support import COLUMNS, ROWS

    rows = [dict(zip(COLUMNS, [*r, "", ""], strict=True)) for r in ROWS]
    indicators, _ = read_indicators(flow, rows)
    again = council.engine.open_cycle(
        flow.id, Period.parse("2026-10"), indicators, now=council.tick(hours=1)
    )
    assert not again.created
    assert len(council.outbox()) == before


def test_validation_errors_are_shown_and_nothing_is_accepted(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    reply = council.act(ANN, "submitReturns", submit_data(card, value__CP001="forty"))
    assert "forty" in card_text(reply)  # typed value kept
    assert _returns(council)["CP001"].status is ReturnStatus.AWAITING  # type: ignore[attr-defined]


def test_partial_return_then_approval_chain_and_write_back(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    reply = council.act(ANN, "submitReturns", submit_data(card, value__CP001="46.5"))
    returns = _returns(council)
    assert returns["CP001"].status is ReturnStatus.RETURNED  # type: ignore[attr-defined]
    assert returns["CP002"].status is ReturnStatus.AWAITING  # type: ignore[attr-defined]
    assert "value__CP002" in str(reply)  # the rest can be returned later from the same card
    (bob_card,) = council.cards_to("bob.ray@contoso.gov.uk")
    assert "Household waste recycled" in card_text(bob_card["card"])
    council.tick(minutes=5)
    outcome = council.act(BOB, "approve", approval_data(bob_card["card"], "approve"))
    assert "Approved" in card_text(outcome)
    # green, so the head of service step is skipped; the performance team (a group) is next
    nadia_cards = council.cards_to("nadia.clarke@contoso.gov.uk")
    ben_cards = council.cards_to("ben.foster@contoso.gov.uk")
    assert len(nadia_cards) == len(ben_cards) == 1
    assert council.cards_to("cat.doe@contoso.gov.uk") == []
    council.act(BEN, "approve", approval_data(ben_cards[0]["card"], "approve"))
    assert _returns(council)["CP001"].status is ReturnStatus.APPROVED  # type: ignore[attr-defined]
    (write,) = council.outbox("write_back")
    fields = write.payload["fields"]
    assert (fields["IndicatorId"], fields["Period"], fields["Value"]) == ("CP001", "2026-10", 46.5)
    assert fields["Rag"] == "green" and fields["ApprovedBy"] == "Ben Foster"
    # exactly the columns provision gives the results list: none missing, none extra
    assert list(fields) == [c.name for c in results_list(load_flow(MONTHLY)).columns]
    # 46.5 against the mean of the last three months (46, 45, 46): improving
    assert fields["DirectionLongTrend"] == "improving"
    assert fields["DirectionPrevious"] == "improving"  # September was 46
    assert fields["Variation"].startswith("common cause") or "special cause" in fields["Variation"]
    # Priya's card for the same group step is replaced with the outcome
    (update,) = council.outbox("update_card")
    assert update.payload["card_id"] == nadia_cards[0]["card_id"]
    assert "Ben Foster" in card_text(update.payload["card"])
    # Priya clicking her stale card changes nothing and tells her who decided
    late_click = council.act(NADIA, "approve", approval_data(nadia_cards[0]["card"], "approve"))
    assert "Ben Foster" in card_text(late_click)
    assert len(council.outbox("write_back")) == 1


def test_red_needs_commentary_and_goes_to_head_of_service(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    reply = council.act(ANN, "submitReturns", submit_data(card, value__CP002="31"))
    assert "commentary is required" in card_text(reply)
    reply = council.act(
        ANN,
        "submitReturns",
        submit_data(
            card,
            value__CP002="31",
            comment__CP002="Staff sickness in October",
            confirm__CP002="true",
        ),
    )
    ret = _returns(council)["CP002"]
    assert ret.status is ReturnStatus.RETURNED and ret.rag == "red"  # type: ignore[attr-defined]
    bob_card = council.cards_to("bob.ray@contoso.gov.uk")[0]["card"]
    council.act(BOB, "approve", approval_data(bob_card, "approve"))
    (cat_card,) = council.cards_to("cat.doe@contoso.gov.uk")
    assert "Staff sickness in October" in card_text(cat_card["card"])


def test_outlier_must_be_confirmed(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    reply = council.act(ANN, "submitReturns", submit_data(card, value__CP001="95"))
    assert "confirm__CP001" in str(reply)
    assert _returns(council)["CP001"].status is ReturnStatus.AWAITING  # type: ignore[attr-defined]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="95", confirm__CP001="true"))
    ret = _returns(council)["CP001"]
    assert ret.status is ReturnStatus.RETURNED  # type: ignore[attr-defined]
    assert ret.data_quality_flag and ret.outlier_confirmed  # type: ignore[attr-defined]


def test_reject_resubmit_approve(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))
    bob_card = council.cards_to("bob.ray@contoso.gov.uk")[0]["card"]
    no_reason = council.act(BOB, "reject", approval_data(bob_card, "reject"))
    assert "Give a reason" in card_text(no_reason)
    council.act(BOB, "reject", approval_data(bob_card, "reject", reason="That is September's"))
    assert _returns(council)["CP001"].status is ReturnStatus.REJECTED  # type: ignore[attr-defined]
    rejection = council.cards_to("ann.lee@contoso.gov.uk")[-1]["card"]
    assert "That is September's" in card_text(rejection)
    council.tick(minutes=10)
    council.act(ANN, "submitReturns", submit_data(rejection, value__CP001="47"))
    ret = _returns(council)["CP001"]
    assert ret.status is ReturnStatus.RETURNED and ret.value == 47  # type: ignore[attr-defined]
    # Bob's old card is now stale: clicking it changes nothing
    stale = council.act(BOB, "approve", approval_data(bob_card, "approve"))
    assert "out of date" in card_text(stale).lower() or "rejected" in card_text(stale).lower()
    new_bob = council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"]
    council.act(BOB, "approve", approval_data(new_bob, "approve"))
    with council.store.transaction() as tx:
        steps = tx.list_steps(ret.id)  # type: ignore[attr-defined]
    assert steps[0].status is StepStatus.APPROVED


def test_nobody_approves_their_own_return(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))
    bob_card = council.cards_to("bob.ray@contoso.gov.uk")[0]["card"]
    reply = council.act(ANN, "approve", approval_data(bob_card, "approve"))
    assert "your own return" in card_text(reply)
    not_approver = council.act(DAN, "approve", approval_data(bob_card, "approve"))
    assert "not one of its approvers" in card_text(not_approver)
    return_id = _returns(council)["CP001"].id  # type: ignore[attr-defined]
    with council.store.transaction() as tx:
        steps = tx.list_steps(return_id)
    assert steps[0].status is StepStatus.ASKED


def test_someone_elses_card_is_refused(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    with pytest.raises(NotYours):
        council.act(DAN, "submitReturns", submit_data(card, value__CP001="46"))
    assert _returns(council)["CP001"].status is ReturnStatus.AWAITING  # type: ignore[attr-defined]


def test_late_return_is_accepted_and_marked(council: Council) -> None:
    council.tick(days=10)  # due Wednesday 11 November 2026
    card = council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    council.act(DAN, "submitReturns", submit_data(card, value__CP003="120"))
    ret = _returns(council)["CP003"]
    assert ret.status is ReturnStatus.RETURNED and ret.late  # type: ignore[attr-defined]
    assert CAT.user_id  # the head of service exists but the fly-tips have no target: no RAG
    assert ret.rag == "none"  # type: ignore[attr-defined]


def test_correction_after_approval_is_approved_again_with_a_higher_version(
    council: Council,
) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))
    council.act(
        BOB,
        "approve",
        approval_data(council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"], "approve"),
    )
    council.act(
        BEN,
        "approve",
        approval_data(council.cards_to("ben.foster@contoso.gov.uk")[-1]["card"], "approve"),
    )
    council.tick(days=1)
    council.engine.request_correction(
        "monthly-corporate-kpis",
        "2026-10",
        "CP001",
        by=NADIA.user_id,
        reason="Contractor revised the tonnage",
        now=council.now,
    )
    assert _returns(council)["CP001"].status is ReturnStatus.REJECTED  # type: ignore[attr-defined]
    correction = council.cards_to("ann.lee@contoso.gov.uk")[-1]["card"]
    assert "Contractor revised the tonnage" in card_text(correction)
    council.act(ANN, "submitReturns", submit_data(correction, value__CP001="47.2"))
    council.act(
        BOB,
        "approve",
        approval_data(council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"], "approve"),
    )
    council.act(
        BEN,
        "approve",
        approval_data(council.cards_to("ben.foster@contoso.gov.uk")[-1]["card"], "approve"),
    )
    first, second = (m.payload["fields"] for m in council.outbox("write_back"))
    assert (first["Value"], second["Value"]) == (46, 47.2)
    assert second["Version"] > first["Version"]
    assert (first["IndicatorId"], first["Period"]) == (second["IndicatorId"], second["Period"])
    with pytest.raises(BadAction):
        council.engine.request_correction(
            "monthly-corporate-kpis",
            "2026-10",
            "CP002",
            by=NADIA.user_id,
            reason="x",
            now=council.now,
        )


def test_card_that_cannot_reach_teams_goes_by_email(council: Council) -> None:
    (teams,) = [
        m
        for m in council.outbox("send_card")
        if m.payload["user"]["email"] == "dan.fox@contoso.gov.uk"
    ]
    assert teams.payload["channel"] == "teams"
    council.engine.on_parked(
        teams, "403 Forbidden: the bot is not installed for the user", council.now
    )
    council.engine.on_parked(teams, "403 again", council.now)  # told twice, sent once
    mails = [
        m
        for m in council.outbox("send_card")
        if m.payload["user"]["email"] == "dan.fox@contoso.gov.uk"
        and m.payload["channel"] == "email"
    ]
    assert len(mails) == 1
    assert mails[0].payload["card"] == teams.payload["card"]
    assert mails[0].budget.startswith("mailbox:")


def test_a_cycle_half_opened_by_a_crash_asks_the_rest_once_when_opened_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Owners are asked a batch per transaction; a crash between batches leaves a cycle
    the next opening finishes: every owner asked exactly once, the opening audited once."""
    from m365perf.engine import cycles

    store = memory_store()
    monkeypatch.setattr(cycles, "OPEN_BATCH", 1)  # one owner per transaction
    real = cycles._ask_batch
    calls = 0

    def crash_on_second(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the process died")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cycles, "_ask_batch", crash_on_second)
    with pytest.raises(RuntimeError):
        make_council(store)
    council = Council(Engine(store, [_monthly_flow()]), store, START)
    asked = {m.payload["user"]["email"] for m in council.outbox("send_card")}
    assert asked == {"ann.lee@contoso.gov.uk"}, "the first batch was committed"
    monkeypatch.setattr(cycles, "_ask_batch", real)
    open_period(council.engine, "2026-10", now=council.tick(hours=1))
    cards = [m.payload["user"]["email"] for m in council.outbox("send_card")]
    assert sorted(cards) == ["ann.lee@contoso.gov.uk", "dan.fox@contoso.gov.uk"]
    with store.transaction() as tx:
        opened = tx.list_audit(actions=[AuditAction.CYCLE_OPENED])
        assert len(tx.list_returns(cycle_id=1)) == 3
    assert len(opened) == 1 and opened[0].after["returns"] == 3
    open_period(council.engine, "2026-10", now=council.tick(hours=1))
    assert len(council.outbox("send_card")) == 2, "a third opening changes nothing"


def _monthly_flow() -> Flow:
    flow = load_flow(MONTHLY)
    return flow.model_copy(
        update={"approval": flow.approval.model_copy(update={"cards": "per_item"})}
    )
