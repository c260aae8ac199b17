"""The engine tells the whole story on its cards (issue 9, point 4), end to end in a cycle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine_support import (
    ANN,
    BEN,
    BOB,
    NADIA,
    ROWS,
    YTD_ROW,
    Council,
    approval_data,
    make_council,
    monthly,
    submit_data,
)
from engine_support import card_text as raw_text

ANN_MAIL = "ann.lee@contoso.gov.uk"
BOB_MAIL = "bob.ray@contoso.gov.uk"


def card_text(card: dict[str, Any]) -> str:
    return " ".join(raw_text(card).split())


def _last(council: Council, email: str) -> dict[str, Any]:
    card: dict[str, Any] = council.cards_to(email)[-1]["card"]
    return card


def _approve(council: Council) -> None:
    council.act(BOB, "approve", approval_data(_last(council, BOB_MAIL), "approve"))
    council.act(
        BEN, "approve", approval_data(_last(council, "ben.foster@contoso.gov.uk"), "approve")
    )


def test_a_resubmission_reaches_the_approver_with_the_earlier_figure_and_the_reason() -> None:
    council = make_council()
    card = _last(council, ANN_MAIL)
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="30", comment__CP001="Low."))
    first = _last(council, BOB_MAIL)
    assert "Resubmitted" not in card_text(first)
    council.act(BOB, "reject", approval_data(first, "reject", reason="Check the tonnage."))
    rejection = _last(council, ANN_MAIL)
    assert "Previously returned: 30%" in card_text(rejection)
    council.act(
        ANN, "submitReturns", submit_data(rejection, value__CP001="31", comment__CP001="Recount.")
    )
    text = card_text(_last(council, BOB_MAIL))
    assert "Resubmitted: sent back by Bob Ray on Thursday 5 November 2026" in text
    assert "Reason: Check the tonnage." in text
    assert "Previously returned: 30%" in text


def test_a_correction_names_the_reason_and_the_figure_being_corrected() -> None:
    council = make_council()
    card = _last(council, ANN_MAIL)
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))
    _approve(council)
    council.tick(days=1)
    council.engine.request_correction(
        "monthly-corporate-kpis",
        "2026-10",
        "CP001",
        by=NADIA.user_id,
        reason="Contractor revised the tonnage",
        now=council.now,
    )
    correction = _last(council, ANN_MAIL)
    text = card_text(correction)
    assert "Reopened for correction: by Nadia Clarke" in text
    assert "Reason: Contractor revised the tonnage" in text
    assert "Figure being corrected: 46%" in text
    council.act(ANN, "submitReturns", submit_data(correction, value__CP001="47.2"))
    approver = card_text(_last(council, BOB_MAIL))
    assert "Resubmitted after a correction was asked for" in approver
    assert "Figure before the correction: 46%" in approver


def test_a_year_to_date_indicator_shows_the_profiled_target_it_is_judged_against() -> None:
    history = {"CP009": monthly("2026-04", [100, 200, 300, 400, 500, 600])}
    council = make_council(rows=[*ROWS, YTD_ROW], history=history)
    card = _last(council, ANN_MAIL)
    # 7/12 of 1,200 by October: 700 is the target RAG uses, not the annual 1,200
    text = card_text(card)
    assert "(year to date) 700 or higher" in text
    assert "Annual target 1,200" in text
    assert "amber down to 665" in text  # 5% of the profiled target
    council.act(
        ANN,
        "submitReturns",
        submit_data(card, value__CP009="690", comment__CP009="Two schemes slipped"),
    )
    approver = card_text(_last(council, BOB_MAIL))
    assert "(year to date) 700 or higher" in approver and "Annual target 1,200" in approver


def test_the_approver_sees_the_long_trend_and_the_comparator() -> None:
    rows = [list(ROWS[0]), *ROWS[1:]]
    rows[0][8] = "English unitary average 41.9% (2024/25)"  # the Comparator column
    history = {"CP001": monthly("2025-10", [44, 46, 45, 47, 44, 45, 46, 45, 44, 46, 45, 47])}
    council = make_council(rows=rows, history=history)
    card = _last(council, ANN_MAIL)
    assert "English unitary average 41.9% (2024/25)" in card_text(card)
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="49"))
    text = card_text(_last(council, BOB_MAIL))
    assert "Long trend (against the mean of recent periods) Improving" in text
    assert "Comparator English unitary average 41.9% (2024/25)" in text


def test_the_commentary_hint_is_the_flows_own_rule() -> None:
    card = _last(make_council(), ANN_MAIL)
    # the monthly flow asks for commentary on red, amber and special cause of concern
    assert (
        "What explains this figure? Needed when it is red or amber, "
        "or when it shows a special cause of concern."
    ) in raw_text(card)


def test_reminders_say_they_are_reminders_and_when_the_return_is_due() -> None:
    council = make_council(period="2026-12", start=datetime(2027, 1, 6, 9, 0, tzinfo=UTC))
    until = datetime(2027, 1, 14, 12, 0, tzinfo=UTC)
    while council.now < until:
        council.tick(hours=1)
        council.engine.fire_due_timers(worker="test", now=council.now)
    request, first, second = (
        card_text(m["card"]) for m in council.cards_to("dan.fox@contoso.gov.uk")[:3]
    )
    assert "Reminder" not in request
    assert "Reminder 1 — due Wednesday 13 January 2027" in first
    assert "Reminder 2 — due Wednesday 13 January 2027" in second


def test_an_empty_submit_says_what_is_missing() -> None:
    council = make_council()
    card = _last(council, ANN_MAIL)
    reply = council.act(ANN, "submitReturns", submit_data(card))
    assert "Nothing was submitted: the boxes were empty." in card_text(reply)
    typed = council.act(ANN, "submitReturns", submit_data(card, value__CP001="lots"))
    assert "Nothing was submitted" not in card_text(typed)


def test_a_missing_commentary_is_flagged_under_the_commentary_box() -> None:
    council = make_council()
    card = _last(council, ANN_MAIL)
    reply = council.act(ANN, "submitReturns", submit_data(card, value__CP001="30"))
    box = next(
        item
        for item in reply["body"]
        if item.get("type") == "Container" and "Household waste recycled" in raw_text(item)
    )
    items = box["items"]
    comment = next(i for i, item in enumerate(items) if item.get("id") == "comment__CP001")
    assert items[comment + 1]["text"] == (
        "Add a comment: commentary is required when the figure is red."
    )
    value = next(i for i, item in enumerate(items) if item.get("id") == "value__CP001")
    assert items[value + 1].get("type") == "Input.Text"  # nothing wrong with the value
