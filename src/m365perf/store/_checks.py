"""Argument checks the store makes before any SQL, so bad input fails alike on both databases."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from m365perf.store._types import utc
from m365perf.store.errors import NestedTransaction
from m365perf.store.tables import (
    APPROVED_SOURCE,
    DECISIONS,
    CardChannel,
    CardDelivery,
    IndicatorSpec,
    Person,
    PersonSpec,
    StepStatus,
    history_value,
)

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def aware(value: datetime, what: str = "now") -> datetime:
    """A timezone-aware datetime, in UTC (naive ones are refused)."""
    return utc(value, what)


def json_object(value: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """A JSON-safe copy of ``value``: what the database would give back, checked up front."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}")
    return _json_copy(value, what)


def json_or_none(value: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    """Like :func:`json_object`, but ``None`` stays ``None`` (an audit event's empty side)."""
    return None if value is None else json_object(value, what)


def _json_copy(value: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        copied: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc
    return copied


def non_empty(value: str, what: str) -> str:
    """Keys and names must be real text; an empty string is almost always a bug upstream."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def optional_text(value: str | None, what: str) -> str | None:
    """``None``, or real text (an empty id would be saved and never match anything)."""
    return None if value is None else non_empty(value, what)


def integer(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def lease(value: timedelta) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(f"lease must be a positive timedelta, got {value!r}")
    return value


def statuses(value: E | Collection[E] | None, enum: type[E]) -> frozenset[E] | None:
    """Normalise a status filter: one status, several, or ``None`` for any."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({enum(value)})
    return frozenset(enum(v) for v in value)


def names(value: Collection[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{what} must be a collection of names, not one string")
    return frozenset(value)


def ids(value: Collection[int] | None, what: str) -> frozenset[int] | None:
    """Normalise an id filter: ``None`` for any, otherwise the ids (possibly none)."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        raise TypeError(f"{what} must be a collection of integer ids, got {value!r}")
    return frozenset(integer(v, what) for v in value)


def unique_by_key(items: Sequence[T], key: Callable[[T], str], what: str) -> dict[str, T]:
    """Index input by key, refusing duplicates (a register with one id twice is wrong)."""
    seen: dict[str, T] = {}
    for item in items:
        k = key(item)
        if k in seen:
            raise ValueError(f"{what} {k!r} appears more than once")
        seen[k] = item
    return seen


_INDICATOR_FIELDS = tuple(IndicatorSpec.model_fields)


def indicator_fields(spec: IndicatorSpec) -> dict[str, Any]:
    """The register fields of a spec or snapshot, JSON-safe, for storing and comparing."""
    if not isinstance(spec, IndicatorSpec):
        raise TypeError(f"expected an IndicatorSpec, got {type(spec).__name__}")
    fields = {name: getattr(spec, name) for name in _INDICATOR_FIELDS}
    fields["raw"] = json_object(fields["raw"], f"raw row of {spec.indicator_key}")
    return fields


def people(value: Sequence[PersonSpec]) -> dict[str, PersonSpec]:
    """The people to store, by id; one id or one mailbox twice in a snapshot is refused."""
    if isinstance(value, str | bytes):
        raise TypeError("people must be a sequence of PersonSpec")
    for spec in value:
        if not isinstance(spec, PersonSpec):
            raise TypeError(f"expected a PersonSpec, got {type(spec).__name__}")
    by_id = unique_by_key(value, lambda p: p.id, "person")
    unique_by_key(value, lambda p: p.email, "e-mail")
    return by_id


def people_changed(specs: dict[str, PersonSpec], existing: Sequence[Person]) -> int:
    """How many of ``specs`` are new, or differ from the stored person with their id."""
    stored = {p.id: (p.name, p.email, p.line_manager_id) for p in existing}
    return sum(
        1
        for ident, spec in specs.items()
        if stored.get(ident) != (spec.name, spec.email, spec.line_manager_id)
    )


def email_lookup(ref: str) -> str:
    """An e-mail as typed, in the form the store keeps (a lookup need not be a valid one)."""
    return ref.strip().lower()


def by_name(people: Sequence[Person]) -> list[Person]:
    """People in the order a reader expects, the same on every backend (no DB collation)."""
    return sorted(people, key=lambda p: (p.name.casefold(), p.id))


def other_card(existing: CardDelivery, **wanted: Any) -> ValueError:
    """The error for recording a card again for another user or subject."""

    def where(d: Any) -> str:
        return f"{d['user_id']} ({d['channel']}) for {d['subject_type']} {d['subject_id']}"

    return ValueError(
        f"card {existing.card_id!r} was delivered to {where(existing.model_dump())}; "
        f"it cannot be recorded for {where(wanted)} (render a new card id instead)"
    )


def channel(value: CardChannel | str) -> CardChannel:
    try:
        return CardChannel(value)
    except ValueError:
        choices = ", ".join(c.value for c in CardChannel)
        raise ValueError(f"channel must be one of {choices}, got {value!r}") from None


def history_entry(value: float, source: str) -> tuple[float, str]:
    """A finite value and an import label that cannot pass for an approved return."""
    non_empty(source, "source")
    if source == APPROVED_SOURCE:
        raise ValueError(
            f"source {APPROVED_SOURCE!r} is kept for approved returns; "
            "name the import instead, e.g. 'import:2024-25.csv'"
        )
    return history_value(value), source


def decision(value: StepStatus) -> StepStatus:
    chosen = StepStatus(value)
    if chosen not in DECISIONS:
        raise ValueError(f"a decision is approved, rejected or skipped, not {chosen.value!r}")
    return chosen


def approvers(value: Sequence[str]) -> list[str]:
    if isinstance(value, str) or not value:
        raise ValueError("approvers must be a non-empty list of user ids")
    return [non_empty(a, "approver") for a in value]


class NestingGuard:
    """Refuses a second transaction on a thread that already has one open.

    Nested transactions would deadlock on SQLite and silently split the unit of work on
    PostgreSQL; failing fast points the caller at passing ``tx`` along instead.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def enter(self) -> Iterator[None]:
        if getattr(self._local, "active", False):
            raise NestedTransaction(
                "a transaction of this store is already open on this thread; "
                "use that transaction instead of opening another"
            )
        self._local.active = True
        try:
            yield
        finally:
            self._local.active = False
