"""Typed builders for Adaptive Card 1.5 elements, returning plain JSON-able dicts.

Cards are data: each builder returns a ``dict`` ready for ``json.dumps``, with only the
keys that differ from the host's default, so a card stays small and reads like the
Adaptive Cards documentation. Text typed by an officer stays one JSON string whatever
it contains (no templating of JSON text); put such text in a :func:`text_run` (hosts
show TextRuns literally: no markdown links, no ``{{DATE()}}`` functions) and keep
:func:`text_block` for the service's own wording and for validation messages.

The API (every argument after the first one or two is keyword-only)::

    card(body, actions=(), fallback_text=..., refresh=None)   # the AdaptiveCard, v1.5
    refresh(action, user_ids)                                  # card.refresh (Teams)
    text_block(text, color=, weight=, size=, subtle=, spacing=, separator=, wrap=)
    text_run(text, weight=, color=, size=, subtle=, italic=)   # an inline, not an element
    rich_text(runs, spacing=, separator=)                      # runs: text_run dicts or str
    heading(text, size="medium")                                # a bold RichTextBlock
    fact_set(facts, spacing=)                                   # facts: (title, value) pairs
    container(items, style=, spacing=, separator=, id=)
    column(items, width="stretch", spacing=, separator=)
    column_set(columns, spacing=, separator=)
    text_input(id, label=, placeholder=, value=, multiline=, max_length=, required_message=)
    number_input(id, label=, placeholder=, value=, min=, max=, required_message=)
    choice_set(id, choices, label=, value=, expanded=, multi=, required_message=)
    toggle(id, title, on=)                                      # Input.Toggle, "true"/"false"
    execute(title, verb, data, inputs="auto", style=)           # Action.Execute + fallback
    action_set(actions, spacing=, separator=)

Spacing, sizes, weights and colours take the schema's own words ("none", "small",
"bolder", "attention"...). :func:`execute` always carries an ``Action.Submit`` fallback
for clients without Universal Actions; Action.Submit has no verb, so the fallback's data
carries it as ``"verb"`` (the service handles both: see ``m365perf.web.app``).
Validation against the schema is the tests' job (``validate_card``); these builders do
not re-check on every card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "CARD_SCHEMA",
    "CARD_VERSION",
    "ActionStyle",
    "Colour",
    "Inputs",
    "Json",
    "Size",
    "Spacing",
    "Style",
    "Weight",
    "action_set",
    "card",
    "choice_set",
    "column",
    "column_set",
    "container",
    "execute",
    "fact_set",
    "heading",
    "number_input",
    "open_url",
    "refresh",
    "rich_text",
    "text_block",
    "text_input",
    "text_run",
    "toggle",
]

Json = dict[str, Any]
"""One card element (or the whole card) as ``json.dumps`` takes it."""

CARD_VERSION = "1.5"
"""The Adaptive Cards version every card declares (Teams desktop and mobile, Outlook)."""
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

Spacing = Literal["none", "small", "default", "medium", "large", "extraLarge", "padding"]
Colour = Literal["default", "dark", "light", "accent", "good", "warning", "attention"]
Weight = Literal["lighter", "default", "bolder"]
Size = Literal["small", "default", "medium", "large", "extraLarge"]
Style = Literal["default", "emphasis", "good", "attention", "warning", "accent"]
ActionStyle = Literal["default", "positive", "destructive"]
Inputs = Literal["auto", "none"]


def card(
    body: Sequence[Json],
    *,
    actions: Sequence[Json] = (),
    fallback_text: str,
    refresh: Json | None = None,
) -> Json:
    """The top-level AdaptiveCard (version 1.5); ``actions`` only when there are any."""
    result: Json = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "fallbackText": fallback_text,
        "body": list(body),
    }
    if actions:
        result["actions"] = list(actions)
    if refresh is not None:
        result["refresh"] = refresh
    return result


def refresh(action: Json, user_ids: Sequence[str]) -> Json:
    """``card.refresh``: Teams runs ``action`` for these users when they open the card."""
    return {"action": action, "userIds": list(user_ids)}


def text_block(
    text: str,
    *,
    color: Colour | None = None,
    weight: Weight | None = None,
    size: Size | None = None,
    subtle: bool = False,
    spacing: Spacing | None = None,
    separator: bool = False,
    wrap: bool = True,
) -> Json:
    """A TextBlock (wrapped by default: cut-off text hides the end of a sentence)."""
    result: Json = {"type": "TextBlock", "text": text}
    if wrap:
        result["wrap"] = True
    _put(result, color=color, weight=weight, size=size, spacing=spacing)
    if subtle:
        result["isSubtle"] = True
    if separator:
        result["separator"] = True
    return result


def text_run(
    text: str,
    *,
    weight: Weight | None = None,
    color: Colour | None = None,
    size: Size | None = None,
    subtle: bool = False,
    italic: bool = False,
) -> Json:
    """One TextRun: text shown literally, inside a :func:`rich_text`."""
    result: Json = {"type": "TextRun", "text": text}
    _put(result, weight=weight, color=color, size=size)
    if subtle:
        result["isSubtle"] = True
    if italic:
        result["italic"] = True
    return result


def rich_text(
    runs: Sequence[Json | str], *, spacing: Spacing | None = None, separator: bool = False
) -> Json:
    """A RichTextBlock of ``runs`` (a plain ``str`` is a TextRun with no styling)."""
    inlines = [text_run(run) if isinstance(run, str) else run for run in runs]
    result: Json = {"type": "RichTextBlock", "inlines": inlines}
    _put(result, spacing=spacing)
    if separator:
        result["separator"] = True
    return result


def heading(text: str, *, size: Size = "medium") -> Json:
    """A title that may carry data (an indicator's name): a bold TextRun."""
    return rich_text([text_run(text, weight="bolder", size=size)])


def fact_set(facts: Sequence[tuple[str, str]], *, spacing: Spacing | None = None) -> Json:
    """A FactSet of ``(title, value)`` pairs, in order."""
    result: Json = {
        "type": "FactSet",
        "facts": [{"title": title, "value": value} for title, value in facts],
    }
    _put(result, spacing=spacing)
    return result


def container(
    items: Sequence[Json],
    *,
    style: Style | None = None,
    spacing: Spacing | None = None,
    separator: bool = False,
    id: str | None = None,
) -> Json:
    """A Container of ``items``; a ``style`` makes it a coloured box (a banner)."""
    result: Json = {"type": "Container"}
    _put(result, id=id, style=style)
    if separator:
        result["separator"] = True
    _put(result, spacing=spacing)
    result["items"] = list(items)
    return result


def column(
    items: Sequence[Json],
    *,
    width: str = "stretch",
    spacing: Spacing | None = None,
    separator: bool = False,
) -> Json:
    """A Column: ``width`` is "auto", "stretch", a weight ("2") or pixels ("80px")."""
    result: Json = {"type": "Column", "width": width, "items": list(items)}
    _put(result, spacing=spacing)
    if separator:
        result["separator"] = True
    return result


def column_set(
    columns: Sequence[Json], *, spacing: Spacing | None = None, separator: bool = False
) -> Json:
    """A ColumnSet of :func:`column` dicts, side by side (stacked on narrow screens)."""
    result: Json = {"type": "ColumnSet", "columns": list(columns)}
    _put(result, spacing=spacing)
    if separator:
        result["separator"] = True
    return result


def text_input(
    id: str,
    *,
    label: str,
    placeholder: str | None = None,
    value: str = "",
    multiline: bool = False,
    max_length: int | None = None,
    required_message: str | None = None,
) -> Json:
    """An Input.Text; ``required_message`` makes it required and is shown when empty."""
    result: Json = {"type": "Input.Text", "id": id, "label": label}
    _put(result, placeholder=placeholder or None, value=value or None)
    if multiline:
        result["isMultiline"] = True
    _put(result, maxLength=max_length)
    _required(result, required_message)
    return result


def number_input(
    id: str,
    *,
    label: str,
    placeholder: str | None = None,
    value: float | None = None,
    min: float | None = None,
    max: float | None = None,
    required_message: str | None = None,
) -> Json:
    """An Input.Number (the host refuses text that is not a number)."""
    result: Json = {"type": "Input.Number", "id": id, "label": label}
    _put(result, placeholder=placeholder or None, value=value, min=min, max=max)
    _required(result, required_message)
    return result


def choice_set(
    id: str,
    choices: Sequence[tuple[str, str]],
    *,
    label: str,
    value: str | None = None,
    expanded: bool = False,
    multi: bool = False,
    required_message: str | None = None,
) -> Json:
    """An Input.ChoiceSet of ``(title, value)`` pairs; ``expanded`` shows radio buttons.

    For ``multi``, ``value`` is the chosen values joined by commas (the schema's way).
    """
    result: Json = {
        "type": "Input.ChoiceSet",
        "id": id,
        "label": label,
        "choices": [{"title": title, "value": choice} for title, choice in choices],
        "style": "expanded" if expanded else "compact",
    }
    if multi:
        result["isMultiSelect"] = True
    _put(result, value=value)
    _required(result, required_message)
    return result


def toggle(id: str, title: str, *, on: bool = False) -> Json:
    """An Input.Toggle whose value is the text "true" or "false"."""
    return {
        "type": "Input.Toggle",
        "id": id,
        "title": title,
        "valueOn": "true",
        "valueOff": "false",
        "value": "true" if on else "false",
        "wrap": True,
    }


def execute(
    title: str,
    verb: str,
    data: Mapping[str, Any],
    *,
    inputs: Inputs = "auto",
    style: ActionStyle | None = None,
) -> Json:
    """An Action.Execute (Universal Action) with an Action.Submit fallback.

    ``inputs`` "auto" sends the card's inputs with the click, "none" sends none (an
    Approve that must not carry a half-typed rejection reason). The fallback carries
    ``verb`` in its data, since Action.Submit has none.
    """
    fallback: Json = {
        "type": "Action.Submit",
        "title": title,
        "data": {**data, "verb": verb},
        "associatedInputs": inputs,
    }
    result: Json = {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": dict(data),
        "associatedInputs": inputs,
    }
    if style is not None:
        result["style"] = style
        fallback["style"] = style
    result["fallback"] = fallback
    return result


def open_url(title: str, url: str) -> Json:
    """An Action.OpenUrl: a web page for a client that cannot run the card's buttons."""
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def action_set(
    actions: Sequence[Json], *, spacing: Spacing | None = None, separator: bool = False
) -> Json:
    """Actions inside the body (next to what they act on), not at the card's foot."""
    result: Json = {"type": "ActionSet", "actions": list(actions)}
    _put(result, spacing=spacing)
    if separator:
        result["separator"] = True
    return result


def _put(target: Json, **values: Any) -> None:
    """Set each key whose value is given (None means: leave the host's default)."""
    for key, value in values.items():
        if value is not None:
            target[key] = value


def _required(target: Json, message: str | None) -> None:
    if message:
        target["isRequired"] = True
        target["errorMessage"] = message
