"""The owner's receipt after a submit, and the card a rejected return goes back on."""

from __future__ import annotations

import pytest
from card_support import (
    calls_answered,
    council_tax_returned,
    elements,
    inputs,
    receipt,
    rejection,
    texts,
)

from m365perf.cards import Draft, render_receipt, render_rejection


def test_the_receipt_shows_what_was_accepted() -> None:
    card = render_receipt(receipt())
    shown = texts(card)
    assert "Council tax collected" in shown
    assert "Value: £1,234.50" in shown
    assert "RAG: Amber" in shown
    assert (
        "Direction of travel: improving on the previous period; "
        "worsening on the same period last year"
    ) in shown
    assert "Returned late" in shown
    assert "Awaiting approval by Jane Smith" in shown
    colours = {run["text"]: run.get("color") for run in elements(card, "TextRun")}
    assert colours["Amber"] == "warning"
    assert colours["improving"] == "good"
    assert colours["worsening"] == "attention"


def test_the_receipt_lists_what_is_still_outstanding_and_offers_it() -> None:
    card = render_receipt(receipt())
    shown = texts(card)
    assert "Still to return by Wednesday 13 January 2027 (1 indicator):" in shown
    assert "• Average working days lost to sickness per full-time employee" in shown
    (action,) = card["actions"]
    assert action["verb"] == "showRequest"
    assert action["data"] == {
        "cycle_id": "cycle-2026-27-q3",
        "owner_id": "owner-42",
        "card_id": "card-1",
    }
    assert inputs(card) == {}


def test_a_complete_receipt_has_no_action() -> None:
    card = render_receipt(receipt(outstanding=()))
    assert "actions" not in card
    assert "Everything due from you for this period has been returned." in texts(card)


def test_an_approved_no_data_return_reads_as_such() -> None:
    returned = council_tax_returned(
        value=None, no_data_reason="Collection system migration", approved=True, late=False
    )
    shown = texts(render_receipt(receipt(returned=(returned,))))
    assert "Value: no data this period (Collection system migration)" in shown
    assert "Approved" in shown
    assert not any(line.startswith("RAG:") for line in shown)


def test_a_receipt_needs_something_returned() -> None:
    with pytest.raises(ValueError, match="at least one"):
        receipt(returned=())


# --- rejection ---------------------------------------------------------------------


def test_a_rejected_return_comes_back_with_reason_and_previous_value() -> None:
    card = render_rejection(rejection())
    shown = texts(card)
    assert "Returned to you: rejected by Jane Smith at 14:05 on 3 November 2026" in shown
    assert "Reason: The figure is for Q2, not Q3." in shown
    typed = inputs(card)
    assert typed["value__ind-calls"]["value"] == "87.5"
    assert typed["comment__ind-calls"]["value"] == "Two vacancies in the team."
    (action,) = card["actions"]
    assert action["verb"] == "submitReturns"
    assert action["data"]["versions"] == {"ind-calls": 5}


def test_a_rejected_no_data_return_comes_back_ticked() -> None:
    card = render_rejection(
        rejection(previous_value=None, previous_no_data_reason="Survey not run this year")
    )
    typed = inputs(card)
    assert typed["nodata__ind-calls"]["value"] == "true"
    assert typed["nodatareason__ind-calls"]["value"] == "Survey not run this year"
    assert "value" not in typed["value__ind-calls"]


def test_a_reshown_rejection_keeps_what_was_typed_over_the_previous_value() -> None:
    again = calls_answered(version=5, draft=Draft(value="x"), errors=("“x” is not a number.",))
    card = render_rejection(rejection(indicator=again))
    assert inputs(card)["value__ind-calls"]["value"] == "x"
    assert "“x” is not a number." in texts(card)
    assert "Reason: The figure is for Q2, not Q3." in texts(card)


def test_large_previous_values_are_prefilled_as_typed_not_formatted() -> None:
    card = render_rejection(rejection(previous_value=1234567.5))
    assert inputs(card)["value__ind-calls"]["value"] == "1234567.5"
