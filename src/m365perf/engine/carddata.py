"""What a card click may carry, checked before the store or a card sees any of it.

A click's data comes from the client, so it may hold anything a forger can write in
JSON. No card of ours sends a whole number the store's columns cannot hold, a character
that cannot be stored or sent on (NUL, half of a surrogate pair), or an object where
text belongs: such data is refused as malformed (:class:`BadAction`), like any other
data no card sends. A card id from the client is echoed into the reply only when it is
one of ours for that very card; otherwise the engine's own id is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any

from m365perf.cards.submission import MAX_WHOLE
from m365perf.engine.errors import BadAction
from m365perf.messages.ids import (
    ApprovalCardId,
    CardId,
    CardIdError,
    RejectionCardId,
    RequestCardId,
)

__all__ = [
    "MAX_WHOLE",
    "approval_card_id_from",
    "check_characters",
    "request_card_id_from",
    "shown",
    "text",
    "whole_number",
]

_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")
_SHOWN = 60


def shown(value: object) -> str:
    """Something the client sent, quoted in a refusal: its repr, cut short."""
    quoted = repr(value)
    return quoted if len(quoted) <= _SHOWN else f"{quoted[: _SHOWN - 1]}…"


def whole_number(data: Mapping[str, Any], name: str, *, least: int = 1) -> int:
    """``data[name]`` as our cards write a number (an int, or its digits as text).

    Ids and versions start at 1, a step index at 0; none is above :data:`MAX_WHOLE`.
    """
    value = data.get(name)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value) if len(value) <= len(str(MAX_WHOLE)) else MAX_WHOLE + 1
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise BadAction(f"card data has no whole number '{name}'")
    if not least <= number <= MAX_WHOLE:
        raise BadAction(
            f"card data's '{name}' is out of range: a whole number from {least} to "
            f"{MAX_WHOLE} was expected, not {shown(value)}"
        )
    return number


def text(data: Mapping[str, Any], name: str) -> str:
    """``data[name]`` as text ("" when left out): an input or a field our cards write."""
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadAction(f"card data's '{name}' must be text, not {type(value).__name__}")
    return value


def check_characters(data: Mapping[str, Any]) -> None:
    """Refuse data holding NUL or a lone surrogate anywhere, in a key or a value.

    No client sends them (Teams and browsers send well-formed UTF-8); PostgreSQL cannot
    store NUL, and neither can be written back out as UTF-8 in the reply.
    """
    pending: list[Any] = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSENDABLE.search(item):
                raise BadAction(
                    f"card data holds a character no card sends (NUL or a lone surrogate): "
                    f"{shown(item)}"
                )
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def approval_card_id_from(data: Mapping[str, Any], own: ApprovalCardId) -> str:
    """The clicked approval card's id: the client's if it names this return, step and
    approver (its Teams or its e-mail copy), else ``own``."""
    return _echoed(
        data,
        own,
        lambda given: (
            isinstance(given, ApprovalCardId) and given == replace(own, by_email=given.by_email)
        ),
    )


def request_card_id_from(
    data: Mapping[str, Any], own: RequestCardId, return_ids: Collection[int] = ()
) -> str:
    """The clicked owner card's id: the client's if it is this owner's request for this
    cycle (any round or part) or the card giving back one of ``return_ids``, else ``own``."""

    def ours(given: CardId) -> bool:
        if isinstance(given, RequestCardId):
            return given.cycle_id == own.cycle_id and given.owner_id == own.owner_id
        return isinstance(given, RejectionCardId) and given.return_id in return_ids

    return _echoed(data, own, ours)


def _echoed(data: Mapping[str, Any], own: CardId, ours: Callable[[CardId], bool]) -> str:
    """The card id the client sent if ``ours`` says it is this card's, else ``own``.

    The client's id is kept when it is right because it may name the card's e-mail copy.
    """
    given = data.get("card_id")
    if isinstance(given, str):
        try:
            parsed = CardId.parse(given)
        except CardIdError:
            return str(own)
        if ours(parsed):
            return given
    return str(own)
