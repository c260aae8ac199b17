"""Text typed by people can never break a card's JSON or add elements to it."""

from __future__ import annotations

from typing import Any

import pytest
from card_support import (
    approval,
    calls_answered,
    council_tax_returned,
    elements,
    inputs,
    outcome,
    owner_request,
    receipt,
    rejection,
    sent_back,
    texts,
)

from m365perf.cards import (
    Draft,
    Outcome,
    render_approval,
    render_outcome,
    render_owner_requests,
    render_receipt,
    render_rejection,
    validate_card,
)

HOSTILE = [
    'He said "stop" \\ then left',
    '"}]}, {"type": "Input.Text", "id": "value__ind-other"}, {"type": "TextBlock", "text": "',
    "{{ 7 * 7 }} {% if true %}jinja{% endif %} {# comment #}",
    "line one\nline two\r\n\ttabbed",
    "Emoji 📈🔴✅ and accents: café, naïve, Łódź",
    "[approve here](https://evil.example/) **bold** {{DATE(2017-02-14T06:08:39Z, SHORT)}}",
    "</script><script>alert(1)</script>",
    "\u2028\u2029 separators and a NUL-free zero width\u200b",
]


def shape(node: Any) -> Any:
    """The card with every piece of text blanked: what elements there are, and where."""
    if isinstance(node, dict):
        return {key: (value if key == "type" else shape(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [shape(value) for value in node]
    return "" if isinstance(node, str) else node


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_on_the_owner_card_round_trips_and_adds_nothing(text: str) -> None:
    plain_view = owner_request(
        calls_answered(name="Plain name", draft=Draft(value="1", comment="Plain comment")),
        council_tax_returned(name="Plain returned"),
    )
    hostile_view = owner_request(
        calls_answered(name=text, comparator=text, draft=Draft(value=text, comment=text)),
        council_tax_returned(name=text + " (returned)"),
        owner_name=text,
        flow_name=text,
    )
    (plain,) = render_owner_requests(plain_view)
    (hostile,) = render_owner_requests(hostile_view)
    validate_card(hostile)
    assert shape(hostile) == shape(plain)
    assert text in texts(hostile)  # the indicator name, exactly
    assert f"Comparator: {text}" in texts(hostile)
    assert inputs(hostile)["comment__ind-calls"]["value"] == text
    assert inputs(hostile)["value__ind-calls"]["value"] == text
    assert set(inputs(hostile)) == set(inputs(plain))
    assert not [block for block in elements(hostile, "TextBlock") if text in block["text"]]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_commentary_reaches_the_approver_as_literal_text(text: str) -> None:
    plain = render_approval(approval(commentary="Plain commentary"))
    hostile = render_approval(approval(commentary=text, indicator_name=text, owner_name=text))
    assert shape(hostile) == shape(plain)
    assert text in texts(hostile)
    # Officers' words go in TextRuns, which hosts never read as markdown or functions.
    assert text not in [block["text"] for block in elements(hostile, "TextBlock")]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_reasons_and_names_on_the_other_cards(text: str) -> None:
    cards = [
        render_outcome(outcome(Outcome.REJECTED, by=text, reason=text)),
        render_rejection(rejection(reason=text, rejected_by=text)),
        render_receipt(receipt(outstanding=(text,), owner_name=text)),
    ]
    plain = [
        render_outcome(outcome(Outcome.REJECTED, by="Jane", reason="Plain")),
        render_rejection(rejection(reason="Plain", rejected_by="Jane")),
        render_receipt(receipt(outstanding=("Plain",), owner_name="Sam")),
    ]
    for hostile_card, plain_card in zip(cards, plain, strict=True):
        validate_card(hostile_card)
        assert shape(hostile_card) == shape(plain_card)
        assert any(text in line for line in texts(hostile_card))
        assert not [b for b in elements(hostile_card, "TextBlock") if text in b["text"]]
    assert f"Reason: {text}" in texts(cards[0])
    assert f"• {text}" in texts(cards[2])


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_send_back_reasons_and_names_stay_literal_text(text: str) -> None:
    plain_view = owner_request(calls_answered(sent_back=sent_back(reason="Plain", by_name="Bob")))
    hostile_view = owner_request(
        calls_answered(
            sent_back=sent_back(
                reason=text, by_name=text, previous_value=None, previous_no_data_reason=text
            )
        )
    )
    (plain,) = render_owner_requests(plain_view)
    (hostile,) = render_owner_requests(hostile_view)
    validate_card(hostile)
    assert shape(hostile) == shape(plain)
    flat = " ".join(text.split())  # the line is one line: new lines become spaces
    assert f"Sent back by {flat} on Thursday 5 November 2026: {flat}" in texts(hostile)
    assert f"Previously returned: no data this period ({flat})" in texts(hostile)
    assert set(inputs(hostile)) == set(inputs(plain))
    assert not [block for block in elements(hostile, "TextBlock") if flat in block["text"]]
