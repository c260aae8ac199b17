"""Reading an owner's submitted request card back into what they typed.

The input ids ("value__{indicator_id}", "comment__…", "nodata__…", "nodatareason__…",
"confirm__…", "actionwhat__…", "actionwho__…", "actionby__…", and for an open improvement
action "actionstatus__{action_id}" and "actionnote__{action_id}") are made in render.py
and cards/actions.py; reading them here keeps both halves of that naming in one package.
Teams sends the action's data merged with the inputs; Outlook and older clients may leave
out inputs nobody touched, which read as empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from m365perf.cards.views import Draft
from m365perf.errors import M365PerfError

__all__ = [
    "MAX_WHOLE",
    "ActionUpdate",
    "OwnerSubmission",
    "SubmissionError",
    "parse_action_updates",
    "parse_owner_submission",
]

MAX_WHOLE = 2**31 - 1
"""The largest whole number card data may carry: the store's ids and versions are 32-bit."""

_FIELDS = {
    "value": "value",
    "comment": "comment",
    "nodata": "no_data",
    "nodatareason": "no_data_reason",
    "confirm": "confirmed",
    "actionwhat": "action_what",
    "actionwho": "action_who",
    "actionby": "action_by",
}
_ACTION_FIELDS = {"actionstatus": "status", "actionnote": "note"}
_TOGGLES = frozenset({"nodata", "confirm"})


class SubmissionError(M365PerfError, ValueError):
    """Submitted data that no card of ours could have sent."""


@dataclass(frozen=True)
class OwnerSubmission:
    """One click of "Submit returns": which card, which versions, and what was typed.

    ``drafts`` has an entry for every indicator in ``versions``, in the same order.
    """

    cycle_id: str
    owner_id: str
    card_id: str
    versions: Mapping[str, int]
    drafts: Mapping[str, Draft]
    part: int | None = None
    parts: int | None = None


def parse_owner_submission(data: Mapping[str, Any]) -> OwnerSubmission:
    """The submitted data of an owner request card (or a rejection card) as drafts.

    Raises SubmissionError when the card's own data is missing or malformed, or when an
    input names an indicator the card was not drawn for.
    """
    if not isinstance(data, Mapping):
        raise SubmissionError(f"submitted data must be a JSON object, got {type(data).__name__}")
    ids = {name: _text(data, name) for name in ("cycle_id", "owner_id", "card_id")}
    versions = data.get("versions")
    if not isinstance(versions, Mapping) or not versions:
        raise SubmissionError("submitted data has no 'versions' of the returns shown")
    checked: dict[str, int] = {}
    for indicator_id, version in versions.items():
        if not _whole(version):
            raise SubmissionError(
                f"version of {_shown(indicator_id)} must be a whole number from 1 to "
                f"{MAX_WHOLE}, got {_shown(version)}"
            )
        checked[str(indicator_id)] = version

    fields: dict[str, dict[str, Any]] = {indicator_id: {} for indicator_id in checked}
    for key, raw in data.items():
        prefix, sep, indicator_id = str(key).partition("__")
        if not sep or prefix not in _FIELDS:
            continue
        if indicator_id not in fields:
            raise SubmissionError(
                f"input {_shown(key)} is for an indicator this card does not show"
            )
        if prefix in _TOGGLES:
            fields[indicator_id][_FIELDS[prefix]] = _toggle(key, raw)
        else:
            if raw is not None and not isinstance(raw, str):
                raise SubmissionError(f"input {_shown(key)} must be text, got {type(raw).__name__}")
            fields[indicator_id][_FIELDS[prefix]] = raw or ""

    return OwnerSubmission(
        cycle_id=ids["cycle_id"],
        owner_id=ids["owner_id"],
        card_id=ids["card_id"],
        versions=checked,
        drafts={indicator_id: Draft(**given) for indicator_id, given in fields.items()},
        part=_optional_int(data, "part"),
        parts=_optional_int(data, "parts"),
    )


@dataclass(frozen=True)
class ActionUpdate:
    """What an owner chose for one open improvement action shown on their card."""

    action_id: int
    version: int
    status: str
    note: str


def parse_action_updates(data: Mapping[str, Any]) -> dict[int, ActionUpdate]:
    """The open actions a request card showed (``action_versions``) and what was chosen.

    An action whose inputs were left out (Outlook sends only touched inputs) reads as
    unchanged: no status, no note. Raises SubmissionError for data no card sends.
    """
    versions = data.get("action_versions")
    if versions is None:
        return {}
    if not isinstance(versions, Mapping):
        raise SubmissionError("'action_versions' must map action ids to versions")
    checked: dict[str, int] = {}
    for action_id, version in versions.items():
        text = str(action_id)
        digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_WHOLE))
        if not (digits and _whole(int(text))) or not _whole(version):
            raise SubmissionError(
                f"action version {_shown(action_id)}: {_shown(version)} is not an action "
                "id and a version"
            )
        checked[text] = version
    typed: dict[str, dict[str, str]] = {action_id: {} for action_id in checked}
    for key, raw in data.items():
        prefix, sep, action_id = str(key).partition("__")
        if not sep or prefix not in _ACTION_FIELDS:
            continue
        if action_id not in typed:
            raise SubmissionError(f"input {_shown(key)} is for an action this card does not show")
        if raw is not None and not isinstance(raw, str):
            raise SubmissionError(f"input {_shown(key)} must be text, got {type(raw).__name__}")
        typed[action_id][_ACTION_FIELDS[prefix]] = raw or ""
    return {
        int(action_id): ActionUpdate(
            action_id=int(action_id),
            version=version,
            status=typed[action_id].get("status", ""),
            note=typed[action_id].get("note", ""),
        )
        for action_id, version in checked.items()
    }


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise SubmissionError(f"submitted data has no {name!r}")
    return value


def _toggle(key: str, raw: Any) -> bool:
    if raw in (None, "", "false", False):
        return False
    if raw in ("true", True):
        return True
    raise SubmissionError(f"toggle {_shown(key)} must be 'true' or 'false', got {_shown(raw)}")


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not _whole(value):
        raise SubmissionError(
            f"{name!r} must be a whole number from 1 to {MAX_WHOLE}, got {_shown(value)}"
        )
    return int(value)


def _whole(value: object) -> bool:
    """A version or part number as our cards write them: an int the store can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WHOLE


def _shown(value: object, limit: int = 60) -> str:
    """Something the client sent, quoted in a refusal: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
