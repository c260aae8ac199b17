"""validate_card: invalid cards are refused with the JSON path of the problem."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from card_support import approval, owner_request, receipt, rejection

from m365perf.cards import (
    CardSchemaError,
    outlook_card,
    render_approval,
    render_owner_requests,
    render_receipt,
    render_rejection,
    validate_card,
)


def card(*body: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "version": "1.5", "body": list(body), **top}


def problems_of(candidate: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(CardSchemaError) as caught:
        validate_card(candidate)
    return caught.value.problems


def test_a_plain_card_is_valid() -> None:
    validate_card(card({"type": "TextBlock", "text": "Returns are due"}))


def test_a_missing_required_property_is_reported_at_its_path() -> None:
    problems = problems_of(
        card(
            {"type": "TextBlock", "text": "ok"},
            {"type": "Container", "items": [{"type": "TextBlock"}]},
        )
    )
    assert problems == ("$.body[1].items[0]: 'text' is a required property",)


def test_a_misspelt_property_is_reported() -> None:
    (problem,) = problems_of(card({"type": "TextBlock", "text": "x", "colour": "attention"}))
    assert problem.startswith("$.body[0]:")
    assert "'colour' was unexpected" in problem


def test_a_colour_outside_the_palette_is_reported() -> None:
    (problem,) = problems_of(card({"type": "TextBlock", "text": "x", "color": "red"}))
    assert problem.startswith("$.body[0].color:")


def test_an_unknown_element_type_is_named() -> None:
    assert problems_of(card({"type": "Widget"})) == ("$.body[0]: unknown type 'Widget'",)


def test_an_element_without_type_is_reported() -> None:
    assert problems_of(card({"text": "x"})) == ("$.body[0]: an element needs a 'type'",)


def test_associated_inputs_must_be_auto_or_none() -> None:
    action = {"type": "Action.Execute", "verb": "approve", "associatedInputs": "some"}
    (problem,) = problems_of(card(actions=[action]))
    assert problem.startswith("$.actions[0].associatedInputs:")


def test_the_top_level_needs_type_and_version() -> None:
    problems = problems_of({"body": []})
    assert any(p.startswith("$.type:") for p in problems)
    assert any(p.startswith("$.version:") for p in problems)


def test_two_inputs_with_one_id_are_refused() -> None:
    problems = problems_of(
        card({"type": "Input.Text", "id": "value__a"}, {"type": "Input.Text", "id": "value__a"})
    )
    assert problems == ("$.body[1]: input id 'value__a' is also used at $.body[0]",)


def test_outlook_properties_are_accepted_but_type_checked() -> None:
    validate_card(card(originator="5d0b0e4f-provider", correlationId="abc"))
    assert problems_of(card(originator=42)) == (
        "$.originator: the Outlook property originator has the wrong type",
    )


def test_outlook_card_adds_the_originator_and_stays_valid() -> None:
    teams = render_approval(approval())
    email = outlook_card(teams, originator="5d0b0e4f-provider", correlation_id="return-9/4")
    assert email["originator"] == "5d0b0e4f-provider"
    assert email["correlationId"] == "return-9/4"
    assert email["hideOriginalBody"] is True  # Outlook shows the card, not the body too
    validate_card(email)
    assert "originator" not in teams  # the Teams card is left as it was
    with pytest.raises(ValueError, match="originator"):
        outlook_card(teams, originator=" ")


def test_at_most_three_problems_are_listed() -> None:
    bad = [{"type": "TextBlock"} for _ in range(5)]
    assert len(problems_of(card(*bad))) == 3


def test_the_error_message_names_the_problem() -> None:
    with pytest.raises(CardSchemaError, match=r"\$\.body\[0\]: 'text' is a required property"):
        validate_card(card({"type": "TextBlock"}))


def _plain_validator() -> jsonschema.Draft6Validator:
    text = resources.files("m365perf.cards").joinpath("schema/adaptive-card-1.5.schema.json")
    return jsonschema.Draft6Validator(json.loads(text.read_text("utf-8")))


@pytest.mark.parametrize(
    "candidate",
    [
        render_owner_requests(owner_request())[0],
        render_receipt(receipt()),
        render_approval(approval()),
        render_rejection(rejection()),
        card({"type": "TextBlock"}),
        card({"type": "Container", "items": [{"type": "Input.Toggle", "id": "x"}]}),
        card({"type": "ActionSet", "actions": [{"type": "Action.Execute", "colour": 1}]}),
        card({"type": "RichTextBlock", "inlines": ["plain", {"type": "TextRun"}]}),
        card({"type": "Action.Submit"}),
        card({"type": "Widget"}),
    ],
)
def test_the_quick_validator_agrees_with_the_plain_schema(candidate: dict[str, Any]) -> None:
    """validate_card checks only the branch an element's type names; same verdicts."""
    plain_valid = _plain_validator().is_valid(candidate)
    try:
        validate_card(candidate)
        ours_valid = True
    except CardSchemaError:
        ours_valid = False
    assert ours_valid == plain_valid
