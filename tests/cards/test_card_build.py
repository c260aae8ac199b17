"""The card builders: what they build passes the Adaptive Cards 1.5 schema, as data."""

from __future__ import annotations

import json

import pytest

from m365perf.cards import CardSchemaError, validate_card
from m365perf.cards import build as b


def test_a_card_of_every_builder_passes_the_schema() -> None:
    submit = b.execute(
        "Submit", "submitReturns", {"cycle_id": "c1"}, inputs="auto", style="positive"
    )
    card = b.card(
        [
            b.heading("Corporate performance: 2026/27 Q3", size="large"),
            b.text_block("Due Wednesday 13 January 2027", subtle=True, spacing="none"),
            b.rich_text(["plain ", b.text_run("bold", weight="bolder", color="attention")]),
            b.fact_set([("Unit", "Percentage"), ("Target", "90%")], spacing="small"),
            b.container(
                [b.text_block("Late", color="attention")], style="attention", separator=True
            ),
            b.column_set(
                [
                    b.column([b.text_input("value__a", label="Value", max_length=64)]),
                    b.column([b.text_block("A number")], width="auto"),
                ]
            ),
            b.number_input("n", label="How many", min=0, max=10, value=3),
            b.choice_set(
                "status",
                [("Done", "done"), ("In progress", "in_progress")],
                label="Status",
                value="done",
                expanded=True,
                required_message="Choose one.",
            ),
            b.toggle("nodata__a", "No data this period", on=True),
            b.text_input(
                "reason",
                label="Reason",
                multiline=True,
                placeholder="Why?",
                required_message="Give a reason.",
            ),
            b.action_set([b.execute("Show", "showRequest", {"x": 1}, inputs="none")]),
        ],
        actions=[submit],
        fallback_text="Your returns are due.",
        refresh=b.refresh(b.execute("Refresh", "refresh", {}, inputs="none"), ["user-1"]),
    )
    validate_card(card)
    assert json.loads(json.dumps(card)) == card  # plain JSON data, nothing else
    assert card["version"] == "1.5"


def test_execute_falls_back_to_submit_carrying_the_verb() -> None:
    action = b.execute("Approve", "approve", {"return_id": "r1"}, inputs="none", style="positive")
    assert action["type"] == "Action.Execute"
    assert action["data"] == {"return_id": "r1"}
    fallback = action["fallback"]
    assert fallback["type"] == "Action.Submit"
    assert fallback["data"] == {"return_id": "r1", "verb": "approve"}
    assert fallback["style"] == "positive"
    assert fallback["associatedInputs"] == "none"


def test_officer_text_stays_one_string() -> None:
    hostile = '"}], "actions": [{"type": "Action.OpenUrl", "url": "https://evil"}] {{x}}'
    card = b.card([b.rich_text([hostile])], fallback_text=hostile)
    validate_card(card)
    assert card["body"][0]["inlines"][0]["text"] == hostile
    assert "actions" not in card


def test_defaults_are_left_to_the_host() -> None:
    assert b.text_block("Hi") == {"type": "TextBlock", "text": "Hi", "wrap": True}
    assert b.text_input("v", label="Value") == {"type": "Input.Text", "id": "v", "label": "Value"}
    assert b.card([], fallback_text="x").get("actions") is None


def test_a_bad_builder_use_is_caught_by_the_schema_check() -> None:
    # the builders do not validate; the tests do, and say where
    card = b.card([b.text_block("x", size="huge")], fallback_text="x")  # type: ignore[arg-type]
    with pytest.raises(CardSchemaError, match=r"\$\.body\[0\]"):
        validate_card(card)
