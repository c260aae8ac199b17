"""Checking a card against the official Adaptive Cards 1.5 schema before anyone sees it.

Teams and Outlook drop or garble a card they cannot read, silently; an officer then
gets an empty message and the cycle stalls. The card tests run every card kind, drawn
from many views, through :func:`validate_card`, so a bad card fails loudly in tests
instead of in a council's inbox (rendering itself does not re-check: it is the hot path).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, relevance

from m365perf.errors import M365PerfError

__all__ = ["CardSchemaError", "validate_card"]

_SCHEMA_FILE = "adaptive-card-1.5.schema.json"
_MAX_PROBLEMS = 3

# Outlook reads these top-level properties; the Adaptive Cards schema does not know them
# (its AdaptiveCard has additionalProperties: false), so they are checked here instead.
_OUTLOOK_PROPERTIES: dict[str, type | tuple[type, ...]] = {
    "originator": str,
    "correlationId": str,
    "expectedActors": list,
    "hideOriginalBody": bool,
    "autoInvokeAction": dict,
}


class CardSchemaError(M365PerfError, ValueError):
    """A card that Teams or Outlook would not render as intended.

    ``problems`` holds one line per problem, each starting with the JSON path of the
    offending part of the card (``$.body[2].items[0]``).
    """

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"invalid adaptive card{where}: " + "; ".join(self.problems))


def validate_card(card: Mapping[str, Any]) -> None:
    """Raise CardSchemaError unless ``card`` is a valid top-level Adaptive Card 1.5.

    Besides the schema: the top level must say ``"type": "AdaptiveCard"`` and carry a
    ``version`` (the schema leaves both optional, the hosts do not), and input ids must
    be unique (a duplicate id silently loses one of the officer's answers).
    """
    if not isinstance(card, Mapping):
        raise CardSchemaError([f"$: a card must be a JSON object, got {type(card).__name__}"])
    problems: list[str] = []
    if card.get("type") != "AdaptiveCard":
        problems.append('$.type: a top-level card must have "type": "AdaptiveCard"')
    if not isinstance(card.get("version"), str):
        problems.append("$.version: a top-level card must say which version it needs")
    plain = dict(card)
    for name, kind in _OUTLOOK_PROPERTIES.items():
        if name in plain:
            value = plain.pop(name)
            if not isinstance(value, kind):
                problems.append(f"$.{name}: the Outlook property {name} has the wrong type")
    errors = list(_leaves(_validator().iter_errors(plain)))
    for error in errors[:_MAX_PROBLEMS]:
        problems.append(_explain(error))
    if not errors:
        problems.extend(_duplicate_inputs(plain))
    if problems:
        raise CardSchemaError(problems[:_MAX_PROBLEMS])


@cache
def _validator() -> Any:
    """The compiled validator, built once per process (validation runs on every card)."""
    text = resources.files(__package__).joinpath("schema", _SCHEMA_FILE).read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft6Validator.check_schema(schema)
    branches = _element_branches(schema)
    plain_any_of = jsonschema.Draft6Validator.VALIDATORS["anyOf"]

    def any_of(validator: Any, any_of: Any, instance: Any, schema: Any) -> Iterator[Any]:
        # "Any of sixteen element kinds" is decided by the element's own "type": check
        # only that branch (the others fail on "type" anyway). Six times faster on a
        # full card, and the errors come from the element's own definition.
        kinds = branches.get(id(any_of))
        if kinds is not None and isinstance(instance, dict) and instance.get("type") in kinds:
            index = kinds[instance["type"]]
            yield from validator.descend(instance, any_of[index], schema_path=index)
            return
        yield from plain_any_of(validator, any_of, instance, schema)

    checker = jsonschema.validators.extend(jsonschema.Draft6Validator, {"anyOf": any_of})
    return checker(schema)


def _element_branches(schema: dict[str, Any]) -> dict[int, dict[str, int]]:
    """For each ``ImplementationsOf.*`` list: the branch index of each element type.

    Such a list holds only branches of the form ``{"required": ["type"], "allOf":
    [{"$ref": "#/definitions/T"}]}`` where definition T accepts only ``"type": "T"``.
    """
    found: dict[int, dict[str, int]] = {}
    definitions = schema["definitions"]
    for name, definition in definitions.items():
        if not name.startswith("ImplementationsOf."):
            continue
        kinds: dict[str, int] = {}
        for index, branch in enumerate(definition.get("anyOf", [])):
            kind = branch.get("allOf", [{}])[0].get("$ref", "").removeprefix("#/definitions/")
            accepted = definitions.get(kind, {}).get("properties", {}).get("type", {})
            if branch.get("required") != ["type"] or accepted.get("enum") != [kind]:
                kinds = {}  # not a plain "one branch per type" list: leave it alone
                break
            kinds[kind] = index
        if kinds:
            found[id(definition["anyOf"])] = kinds
    return found


def _leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The errors in card order, unwrapping an ``anyOf`` that has only one branch.

    The schema's root is such an ``anyOf``: without unwrapping, every problem in a card
    would come back folded into one.
    """
    for error in sorted(errors, key=_card_order):
        if error.validator == "anyOf" and len({sub.schema_path[0] for sub in error.context}) == 1:
            yield from _leaves(error.context)
        else:
            yield error


def _card_order(error: ValidationError) -> list[tuple[int, str]]:
    # List positions sort as numbers (body[2] before body[10]), names as text.
    return [(part, "") if isinstance(part, int) else (-1, part) for part in error.absolute_path]


def _explain(error: ValidationError) -> str:
    """One line for ``error``, following ``anyOf`` into the branch that matters.

    Every element in a card is checked against "any of" sixteen element kinds, so the
    top error only says "not valid under any"; the useful message is inside the branch
    whose ``type`` matched.
    """
    while error.context:
        if (
            isinstance(error.instance, dict)
            and "type" not in error.instance
            and any(
                sub.validator == "required" and sub.validator_value == ["type"]
                for sub in error.context
            )
        ):
            return f"{_json_path(error.absolute_path)}: an element needs a 'type'"
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        matching = [
            sub
            for subs in branches.values()
            if not any(_is_type_mismatch(sub, error) for sub in subs)
            for sub in subs
        ]
        if not matching:
            kind = error.instance.get("type") if isinstance(error.instance, dict) else None
            what = f"unknown type {kind!r}" if kind is not None else error.message
            return f"{_json_path(error.absolute_path)}: {what}"
        error = min(matching, key=_by_relevance)
    return f"{_json_path(error.absolute_path)}: {error.message}"


def _by_relevance(error: ValidationError) -> tuple[int, Any]:
    # Deeper errors first (more specific), then jsonschema's own notion of relevance.
    return (-len(error.absolute_path), relevance(error))


def _is_type_mismatch(sub: ValidationError, parent: ValidationError) -> bool:
    """True for "this branch is for a different element kind" (wrong ``type`` value)."""
    relative = list(sub.absolute_path)[len(parent.absolute_path) :]
    return relative == ["type"] and sub.validator == "enum"


def _json_path(path: deque[str | int] | list[str | int]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _duplicate_inputs(card: Mapping[str, Any]) -> list[str]:
    seen: dict[str, str] = {}
    problems: list[str] = []
    for path, node in _walk(card, "$"):
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("Input.") and isinstance(node.get("id"), str):
            if node["id"] in seen:
                problems.append(
                    f"{path}: input id {node['id']!r} is also used at {seen[node['id']]}"
                )
            else:
                seen[node["id"]] = path
    return problems


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key != "data":  # an action's data is ours, not card structure
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
