"""Argument checks both backends share, so bad input fails the same way everywhere."""

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
from m365perf.store.tables import DECISIONS, IndicatorSpec, StepStatus

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
