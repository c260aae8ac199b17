"""The owner's request card: context per indicator, inputs, receipts, errors, submit data."""

from __future__ import annotations

from typing import Any

import pytest
from card_support import (
    calls_answered,
    council_tax_returned,
    elements,
    indicator_container,
    inputs,
    owner_request,
    sickness_days,
    texts,
)

from m365perf.cards import (
    CardTooLargeError,
    Draft,
    IndicatorRequest,
    OwnerRequestView,
    PeriodValue,
    render_owner_requests,
    validate_card,
)
from m365perf.domain.kinds import Unit


def only_card(view: OwnerRequestView) -> dict[str, Any]:
    cards = render_owner_requests(view)
    assert len(cards) == 1
    return cards[0]


def submit_action(card: dict[str, Any]) -> dict[str, Any]:
    (action,) = card["actions"]
    assert isinstance(action, dict)
    return action


def test_the_card_lists_every_due_indicator_with_its_context() -> None:
    card = only_card(owner_request())
    shown = texts(card)
    assert "Corporate performance: 2026/27 Q3" in shown
    assert "Due Wednesday 13 January 2027" in shown
    calls = texts(indicator_container(card, calls_answered().name))
    assert "Unit: Percentage (%)" in calls
    assert "Target: 90% or higher" in calls
    assert "Tolerance: 2 percentage points (amber down to 88%)" in calls
    assert "Comparator: West Midlands average 84.1% (2025/26)" in calls
    assert "2026/27 Q1: 85.5%" in calls
    assert "2025/26 Q3 (same period last year): 79.25%" in calls
    sickness = texts(indicator_container(card, sickness_days().name))
    assert "Target: 8.5 days or lower" in sickness
    assert "Tolerance: 0.5 days (amber up to 9 days)" in sickness


def test_only_the_last_three_periods_are_shown() -> None:
    recent = tuple(PeriodValue(f"2026-0{m}", float(m)) for m in range(1, 7))
    card = only_card(owner_request(calls_answered(recent=recent, last_year=None)))
    shown = texts(card)
    assert [line for line in shown if line.startswith("2026-0")] == [
        "2026-04: 4%",
        "2026-05: 5%",
        "2026-06: 6%",
    ]


def test_each_indicator_to_return_has_its_four_inputs() -> None:
    card = only_card(owner_request())
    found = inputs(card)
    for indicator_id in ("ind-calls", "ind-sickness"):
        assert found[f"value__{indicator_id}"]["type"] == "Input.Text"
        assert found[f"comment__{indicator_id}"]["isMultiline"] is True
        assert found[f"nodata__{indicator_id}"]["type"] == "Input.Toggle"
        assert found[f"nodatareason__{indicator_id}"]["type"] == "Input.Text"
    assert not any(key.startswith("confirm__") for key in found)


@pytest.mark.parametrize(
    ("unit", "placeholder"),
    [
        (Unit.PERCENTAGE, "e.g. 87.5 (%)"),
        (Unit.CURRENCY, "e.g. 1234.50 (£)"),
        (Unit.COUNT, "e.g. 1234"),
        (Unit.DAYS, "e.g. 12.5 (days)"),
        (Unit.RATIO, "e.g. 2.75"),
    ],
)
def test_the_value_placeholder_shows_the_unit(unit: Unit, placeholder: str) -> None:
    card = only_card(owner_request(calls_answered(unit=unit)))
    assert inputs(card)["value__ind-calls"]["placeholder"] == placeholder


def test_a_returned_indicator_is_a_receipt_line_without_inputs() -> None:
    card = only_card(owner_request())
    container = indicator_container(card, council_tax_returned().name)
    assert inputs(container) == {}
    (line,) = texts(container)[1:]
    assert line == ("Returned: £1,234.50 · Amber · Late · Awaiting approval by Jane Smith")
    (amber,) = [run for run in elements(container, "TextRun") if run["text"] == "Amber"]
    assert amber["color"] == "warning"


def test_the_submit_carries_the_versions_the_card_was_drawn_for() -> None:
    action = submit_action(only_card(owner_request()))
    assert action["type"] == "Action.Execute"
    assert action["verb"] == "submitReturns"
    assert action["data"] == {
        "cycle_id": "cycle-2026-27-q3",
        "owner_id": "owner-42",
        "card_id": "card-1",
        "versions": {"ind-calls": 3, "ind-sickness": 7},  # not the returned one
    }


def test_older_clients_fall_back_to_a_submit_with_the_same_data_and_the_verb() -> None:
    action = submit_action(only_card(owner_request()))
    fallback = action["fallback"]
    assert fallback["type"] == "Action.Submit"
    assert fallback["data"] == {**action["data"], "verb": "submitReturns"}
    # The schema cannot check a fallback (any object passes), so check it as an action.
    validate_card({"type": "AdaptiveCard", "version": "1.5", "actions": [fallback]})


def test_a_card_with_everything_returned_has_nothing_to_submit() -> None:
    card = only_card(owner_request(council_tax_returned()))
    assert "actions" not in card
    assert "Everything on this card has been returned. Thank you." in texts(card)


def test_a_late_request_says_so() -> None:
    card = only_card(owner_request(late=True))
    assert "This return is late: it was due on Wednesday 13 January 2027." in texts(card)
    assert "late" not in " ".join(texts(only_card(owner_request()))).replace("Late", "")


def test_errors_appear_under_their_own_indicator_and_typed_values_are_kept() -> None:
    calls = calls_answered(draft=Draft(value="87.5", comment="Back to full staffing."))
    sickness = sickness_days(
        draft=Draft(value="about nine", comment="Flu season", no_data_reason="n/a"),
        errors=("“about nine” is not a number. Enter a number of days, e.g. 4.5.",),
    )
    card = only_card(owner_request(calls, sickness))

    sickness_box = indicator_container(card, sickness.name)
    red = [
        block for block in elements(sickness_box, "TextBlock") if block.get("color") == "attention"
    ]
    assert [block["text"] for block in red] == list(sickness.errors)
    items = sickness_box["items"]
    value_box = items.index(inputs(sickness_box)["value__ind-sickness"])
    assert items.index(red[0]) == value_box + 1  # right under the value it is about

    calls_box = indicator_container(card, calls.name)
    assert not [b for b in elements(calls_box, "TextBlock") if b.get("color") == "attention"]

    typed = inputs(card)
    assert typed["value__ind-sickness"]["value"] == "about nine"
    assert typed["comment__ind-sickness"]["value"] == "Flu season"
    assert typed["nodatareason__ind-sickness"]["value"] == "n/a"
    assert typed["value__ind-calls"]["value"] == "87.5"
    assert "1 indicator needs your attention: see the messages in red below." in texts(card)


def test_an_outlier_adds_the_confirm_toggle_and_keeps_its_state() -> None:
    flagged = calls_answered(
        needs_confirmation=True,
        draft=Draft(value="12", confirmed=True),
        errors=("12% is far below this indicator's usual range (80–89%).",),
    )
    typed = inputs(only_card(owner_request(flagged, sickness_days())))
    confirm = typed["confirm__ind-calls"]
    assert confirm["type"] == "Input.Toggle"
    assert confirm["title"] == "I confirm this value is correct"
    assert confirm["value"] == confirm["valueOn"]
    assert "confirm__ind-sickness" not in typed


def test_the_no_data_toggle_keeps_its_state() -> None:
    ticked = calls_answered(draft=Draft(no_data=True, no_data_reason="System outage"))
    toggle = inputs(only_card(owner_request(ticked)))["nodata__ind-calls"]
    assert toggle["value"] == toggle["valueOn"] == "true"


def test_one_indicator_too_big_for_any_card_is_a_clear_error() -> None:
    huge = calls_answered(name="x" * 30_000)  # the register's text, not what was typed
    with pytest.raises(CardTooLargeError, match="on its own makes a card over the limit"):
        render_owner_requests(owner_request(huge))


def test_typing_too_big_for_any_card_is_shown_cut_to_fit_saying_so() -> None:
    huge = calls_answered(draft=Draft(comment="x" * 30_000))
    (card,) = render_owner_requests(owner_request(huge))
    kept = inputs(card)["comment__ind-calls"]["value"]
    assert 20_000 < len(kept) < 30_000 and set(kept) == {"x"}
    assert f"its first {len(kept):,} of 30,000 characters are below" in " ".join(texts(card))


def test_bad_views_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="no indicators"):
        owner_request(indicators=())
    with pytest.raises(ValueError, match="appears twice"):
        owner_request(calls_answered(), calls_answered())
    with pytest.raises(ValueError, match="without spaces"):
        calls_answered(indicator_id="ind calls")
    with pytest.raises(ValueError, match="unit"):
        IndicatorRequest("x", "X", "furlongs", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version"):
        calls_answered(version=-1)


def test_a_single_error_string_is_refused_not_split_into_letters() -> None:
    with pytest.raises(ValueError, match="errors must be a list of texts"):
        calls_answered(errors="Enter a number")
