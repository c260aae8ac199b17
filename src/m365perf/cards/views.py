"""What each card shows, as small frozen records the engine fills in.

The cards do not read the store or call the domain; the engine hands over plain values
(numbers, text, dates) and the cards decide only how they look. Times must carry a
time zone: they are shown in London time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from m365perf.cards.formatting import as_polarity, as_rag, as_unit, check_direction
from m365perf.domain.kinds import Polarity, Rag, Unit

__all__ = [
    "ApprovalView",
    "CommentaryRule",
    "Draft",
    "IndicatorRequest",
    "InputError",
    "InputField",
    "OpenAction",
    "Outcome",
    "OutcomeView",
    "OwnerRequestView",
    "PeriodValue",
    "ReceiptView",
    "RejectionView",
    "ReturnedIndicator",
    "SentBack",
]

# Ids end up inside input ids ("value__{indicator_id}") and action data: no spaces.
_ID_RE = re.compile(r"[^\s]{1,200}")


@dataclass(frozen=True)
class PeriodValue:
    """One period's figure in a history line; ``value`` None means no data was returned."""

    label: str
    value: float | None

    def __post_init__(self) -> None:
        _check_text("period label", self.label)
        _check_number("history value", self.value)


@dataclass(frozen=True)
class Draft:
    """What the officer typed into one indicator's inputs, kept when a card is re-shown."""

    value: str = ""
    comment: str = ""
    no_data: bool = False
    no_data_reason: str = ""
    confirmed: bool = False
    action_what: str = ""
    action_who: str = ""
    action_by: str = ""


ACTION_STATUSES: tuple[tuple[str, str], ...] = (
    ("not_started", "Not started"),
    ("in_progress", "In progress"),
    ("done", "Done"),
)
"""An improvement action's statuses as an owner picks them: (value, words)."""


@dataclass(frozen=True)
class OpenAction:
    """An improvement action still open, for its owner to update or an approver to see.

    ``raised_for`` says which figure it answers ("Household waste recycled, 2026-10:
    red"); ``overdue`` is decided by the engine (the cards never read the clock).
    ``status`` and ``note`` are what the owner's inputs start from (a re-shown card keeps
    what was typed); ``errors`` are shown under them.
    """

    action_id: int
    version: int
    raised_for: str
    what: str
    who_name: str
    due: date
    status: str = "not_started"
    note: str = ""
    overdue: bool = False
    errors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.action_id, bool) or not isinstance(self.action_id, int):
            raise ValueError(f"action_id must be a whole number, got {self.action_id!r}")
        _check_version(self.version)
        for name in ("raised_for", "what", "who_name"):
            _check_text(name, getattr(self, name))
        if isinstance(self.due, datetime) or not isinstance(self.due, date):
            raise ValueError(f"due must be a date, got {self.due!r}")
        if self.status not in dict(ACTION_STATUSES):
            raise ValueError(f"status must be one of {dict(ACTION_STATUSES)}, not {self.status!r}")
        object.__setattr__(self, "errors", _texts("errors", self.errors))


@dataclass(frozen=True)
class SentBack:
    """Why an indicator is asked for again: its return was sent back, by whom, when and why.

    ``correction`` is True when the performance team reopened an approved figure for
    correction, False when an approver rejected the return. ``previous_value`` and
    ``previous_no_data_reason`` are the figure that was sent back, when the engine has it
    (a value, or no value and the reason there was no data); it is shown, not pre-filled,
    so a submit never sends the rejected figure back unchanged by accident.
    """

    by_name: str
    at: datetime
    reason: str
    correction: bool
    previous_value: float | None = None
    previous_no_data_reason: str | None = None

    def __post_init__(self) -> None:
        _check_text("sent_back by_name", self.by_name)
        _check_moment("sent_back at", self.at)
        _check_text("sent_back reason", self.reason)
        if not isinstance(self.correction, bool):
            raise ValueError(f"sent_back correction must be True or False, got {self.correction!r}")
        _check_number("previous value", self.previous_value)
        reason = self.previous_no_data_reason
        if reason is not None and not isinstance(reason, str):
            raise ValueError(f"previous_no_data_reason must be text or None, got {reason!r}")

    @property
    def has_previous(self) -> bool:
        """Whether the view says what was returned before (a value or a no-data reason)."""
        return self.previous_value is not None or bool((self.previous_no_data_reason or "").strip())


class InputField(StrEnum):
    """The input of an indicator's card an error is about (it is shown right under it)."""

    VALUE = "value"
    COMMENT = "comment"
    NO_DATA_REASON = "nodatareason"
    CONFIRM = "confirm"


@dataclass(frozen=True)
class InputError:
    """A problem with one input; as text (``str()``) it is just the message."""

    field: InputField
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", InputField(self.field))
        _check_text("error message", self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CommentaryRule:
    """When the flow requires commentary: for these RAG colours, and/or special cause."""

    rags: tuple[Rag, ...] = (Rag.RED, Rag.AMBER)
    special_cause_concern: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rags", tuple(as_rag(rag) for rag in self.rags))


@dataclass(frozen=True)
class IndicatorRequest:
    """An indicator still to be returned: its context, and its inputs on the card.

    ``version`` is the return's version the card is drawn for (stale-click detection).
    ``tolerance`` is the width of the amber band in the indicator's unit (percentage
    points for a percentage). ``recent`` is the last periods, oldest first (three are
    shown). ``errors`` are shown under the input each is about (an :class:`InputError`)
    or under the value (plain text); ``needs_confirmation`` adds the "I confirm this
    value is correct" toggle after an outlier was flagged. ``sent_back`` is set when the
    return was sent back (rejected, or reopened for correction): the card says who sent
    it back, when and why, under the indicator's name. For a year-to-date indicator
    ``target`` is the profiled target for the period (the one RAG judges against) and
    ``annual_target`` the year's. ``commentary_rule`` is the flow's, for the hint.
    """

    indicator_id: str
    name: str
    unit: Unit
    version: int
    polarity: Polarity = Polarity.NONE
    target: float | None = None
    tolerance: float | None = None
    comparator: str | None = None
    recent: tuple[PeriodValue, ...] = ()
    last_year: PeriodValue | None = None
    draft: Draft | None = None
    errors: tuple[str | InputError, ...] = ()
    needs_confirmation: bool = False
    sent_back: SentBack | None = None
    action_hint: str | None = None
    """Set when the flow asks for improvement actions: the card shows the action inputs
    under this hint ("Needed if the figure is red …")."""
    action_errors: tuple[str, ...] = ()
    """What is wrong with the action typed, shown next to the action inputs."""
    annual_target: float | None = None
    commentary_rule: CommentaryRule = CommentaryRule()

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_errors", _texts("action_errors", self.action_errors))
        _check_id("indicator_id", self.indicator_id)
        _check_number("annual target", self.annual_target)
        _check_text("indicator name", self.name)
        object.__setattr__(self, "unit", as_unit(self.unit))
        object.__setattr__(self, "polarity", as_polarity(self.polarity))
        _check_version(self.version)
        _check_number("target", self.target)
        _check_number("tolerance", self.tolerance)
        if self.tolerance is not None and self.tolerance < 0:
            raise ValueError(f"tolerance must be 0 or more, got {self.tolerance!r}")
        object.__setattr__(self, "recent", tuple(self.recent))
        object.__setattr__(self, "errors", _errors(self.errors))
        if self.sent_back is not None and not isinstance(self.sent_back, SentBack):
            raise ValueError(f"sent_back must be a SentBack or None, got {self.sent_back!r}")


@dataclass(frozen=True)
class ReturnedIndicator:
    """An indicator already returned this cycle: shown as a receipt line, not as inputs.

    ``direction_vs_previous`` and ``direction_vs_last_year`` take the direction-of-travel
    values ("improving", "worsening", "no_change", "not_comparable").
    """

    indicator_id: str
    name: str
    unit: Unit
    value: float | None
    rag: Rag = Rag.NONE
    no_data_reason: str | None = None
    direction_vs_previous: str | None = None
    direction_vs_last_year: str | None = None
    late: bool = False
    awaiting_approval_by: str | None = None
    approved: bool = False

    def __post_init__(self) -> None:
        _check_id("indicator_id", self.indicator_id)
        _check_text("indicator name", self.name)
        object.__setattr__(self, "unit", as_unit(self.unit))
        object.__setattr__(self, "rag", as_rag(self.rag))
        _check_number("value", self.value)
        for direction in (self.direction_vs_previous, self.direction_vs_last_year):
            if direction is not None:
                check_direction(direction)


@dataclass(frozen=True)
class OwnerRequestView:
    """One owner's request for a cycle: every indicator due from them, in their order.

    ``late`` is decided by the engine (the cards never read the clock). ``reminder``
    is the reminder's number when the card is one ("Reminder 2 — due …"). ``notice``
    is a message about the whole card (an empty submit: what is missing).
    """

    cycle_id: str
    owner_id: str
    card_id: str
    owner_name: str
    flow_name: str
    period_label: str
    due: date
    indicators: tuple[IndicatorRequest | ReturnedIndicator, ...]
    late: bool = False
    planned_due: date | None = None
    """The planned due date, when the cycle opened too late for it and ``due`` was
    counted from the day the owner was first asked (the card says both)."""
    reminder: int | None = None
    notice: str | None = None
    actions: tuple[OpenAction, ...] = ()
    """The owner's improvement actions still open from earlier cycles, to update."""

    def __post_init__(self) -> None:
        _check_header(self)
        object.__setattr__(self, "actions", tuple(self.actions))
        if self.reminder is not None and (
            isinstance(self.reminder, bool)
            or not isinstance(self.reminder, int)
            or self.reminder < 1
        ):
            raise ValueError(f"reminder must be a number from 1, got {self.reminder!r}")
        object.__setattr__(self, "indicators", tuple(self.indicators))
        if not self.indicators:
            raise ValueError(f"owner {self.owner_id!r} has no indicators to ask for")
        _check_unique(self.indicators)


@dataclass(frozen=True)
class ReceiptView:
    """What an owner's submit was accepted as, and what is still outstanding (by name)."""

    cycle_id: str
    owner_id: str
    card_id: str
    owner_name: str
    flow_name: str
    period_label: str
    due: date
    returned: tuple[ReturnedIndicator, ...]
    outstanding: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_header(self)
        object.__setattr__(self, "returned", tuple(self.returned))
        object.__setattr__(self, "outstanding", _texts("outstanding", self.outstanding))
        if not self.returned:
            raise ValueError("a receipt needs at least one returned indicator")


@dataclass(frozen=True)
class ApprovalView:
    """A return waiting for one approver, with what they need to judge it.

    ``step_index`` counts from 0 and goes back in the action data as given; the card
    shows "Step {step_index + 1} of {step_count}: {step_name}". ``history`` is the last
    periods before this one, oldest first (six are shown). ``variation`` and
    ``assurance`` are the SPC texts, e.g. "special cause — concern: 7 points below the
    mean" and "hit and miss". ``long_trend`` is a direction of travel against the mean of
    the last periods; ``comparator`` the register's comparator text. ``resubmission``
    is set when this return was sent back before (who, when, why, and the figure then).
    For a year-to-date indicator ``target`` is the profiled one and ``annual_target``
    the year's.
    """

    return_id: str
    version: int
    step_index: int
    step_count: int
    step_name: str
    card_id: str
    indicator_name: str
    owner_name: str
    period_label: str
    unit: Unit
    value: float | None
    polarity: Polarity = Polarity.NONE
    no_data_reason: str | None = None
    target: float | None = None
    tolerance: float | None = None
    rag: Rag = Rag.NONE
    previous: PeriodValue | None = None
    last_year: PeriodValue | None = None
    direction_vs_previous: str | None = None
    direction_vs_last_year: str | None = None
    history: tuple[PeriodValue, ...] = ()
    variation: str | None = None
    assurance: str | None = None
    commentary: str | None = None
    outlier_confirmed: bool = False
    probable_missing_data: bool = False
    late: bool = False
    submitted_at: datetime | None = None
    error: str | None = None
    actions: tuple[OpenAction, ...] = ()
    """Improvement actions on this indicator: the one entered with this figure, and any
    still open from earlier periods."""
    long_trend: str | None = None
    comparator: str | None = None
    resubmission: SentBack | None = None
    annual_target: float | None = None
    web_link: str | None = None
    """The approver's web page (``/approvals/{cycle}``), for clients without card buttons."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(self.actions))
        _check_version(self.version)
        _check_number("annual target", self.annual_target)
        if self.long_trend is not None:
            check_direction(self.long_trend)
        for name in ("return_id", "card_id", "step_name", "indicator_name", "owner_name"):
            _check_text(name, getattr(self, name))
        _check_text("period label", self.period_label)
        if self.submitted_at is not None:
            _check_moment("submitted_at", self.submitted_at)
        object.__setattr__(self, "unit", as_unit(self.unit))
        object.__setattr__(self, "polarity", as_polarity(self.polarity))
        object.__setattr__(self, "rag", as_rag(self.rag))
        object.__setattr__(self, "history", tuple(self.history))
        for name, number in (("value", self.value), ("target", self.target)):
            _check_number(name, number)
        _check_number("tolerance", self.tolerance)
        if not (
            isinstance(self.step_index, int)
            and isinstance(self.step_count, int)
            and 0 <= self.step_index < self.step_count
        ):
            raise ValueError(
                f"step_index must count from 0 and be below step_count; "
                f"got {self.step_index!r} of {self.step_count!r}"
            )
        for direction in (self.direction_vs_previous, self.direction_vs_last_year):
            if direction is not None:
                check_direction(direction)


class Outcome(StrEnum):
    """What became of an approval card."""

    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class OutcomeView:
    """The card left in place of an approval card once it is decided or out of date.

    ``by`` and ``at`` are who decided and when (for SUPERSEDED: who submitted the newer
    version, if known, and when). ``next_step`` says where an approved return went next.
    """

    outcome: Outcome
    indicator_name: str
    owner_name: str
    period_label: str
    at: datetime
    by: str | None = None
    unit: Unit | None = None
    value: float | None = None
    reason: str | None = None
    next_step: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        if self.unit is not None:
            object.__setattr__(self, "unit", as_unit(self.unit))
        _check_number("value", self.value)
        if self.outcome is not Outcome.SUPERSEDED and not (self.by or "").strip():
            raise ValueError(f"an {self.outcome.value} outcome needs the name of who decided")
        if self.outcome is Outcome.REJECTED and not (self.reason or "").strip():
            raise ValueError("a rejected outcome needs the reason given")
        for name in ("indicator_name", "owner_name", "period_label"):
            _check_text(name, getattr(self, name))
        _check_moment("at", self.at)


@dataclass(frozen=True)
class RejectionView:
    """A rejected return going back to its owner as a fresh one-indicator request.

    Unless ``indicator.draft`` is given (a re-shown card), the inputs are pre-filled
    with the previous return: ``previous_value``, ``previous_commentary`` and
    ``previous_no_data_reason``. ``correction`` is True when the performance team
    reopened an approved figure (the card names the figure being corrected).
    """

    cycle_id: str
    owner_id: str
    card_id: str
    owner_name: str
    flow_name: str
    period_label: str
    due: date
    indicator: IndicatorRequest
    rejected_by: str
    rejected_at: datetime
    reason: str
    previous_value: float | None = None
    previous_commentary: str = ""
    previous_no_data_reason: str | None = None
    late: bool = False
    correction: bool = False

    def __post_init__(self) -> None:
        _check_header(self)
        _check_moment("rejected_at", self.rejected_at)
        _check_text("rejected_by", self.rejected_by)
        _check_text("rejection reason", self.reason)
        _check_number("previous value", self.previous_value)


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ValueError(f"{name} must be 1 to 200 characters without spaces; got {value!r}")


def _check_header(view: OwnerRequestView | ReceiptView | RejectionView) -> None:
    for name in ("cycle_id", "owner_id", "card_id", "owner_name", "flow_name", "period_label"):
        _check_text(name, getattr(view, name))
    if isinstance(view.due, datetime) or not isinstance(view.due, date):
        raise ValueError(f"due must be a date (a day, not a time), got {view.due!r}")


def _check_moment(name: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a datetime with a time zone, got {value!r}")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be non-empty text, got {value!r}")


def _texts(name: str, values: Iterable[str]) -> tuple[str, ...]:
    """A tuple of texts; a lone string is refused (it would become one line per letter)."""
    items = () if isinstance(values, str) else tuple(values)
    if isinstance(values, str) or not all(isinstance(value, str) for value in items):
        raise ValueError(f"{name} must be a list of texts, got {values!r}")
    return items


def _errors(values: Iterable[str | InputError]) -> tuple[str | InputError, ...]:
    """Errors as texts or :class:`InputError` (a lone string is refused, as for texts)."""
    items = () if isinstance(values, str) else tuple(values)
    if isinstance(values, str) or not all(isinstance(v, str | InputError) for v in items):
        raise ValueError(f"errors must be a list of texts or InputErrors, got {values!r}")
    return items


def _check_number(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number or None, got {value!r}")


def _check_version(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"version must be a whole number of 0 or more, got {value!r}")


def _check_unique(items: tuple[IndicatorRequest | ReturnedIndicator, ...]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.indicator_id in seen:
            raise ValueError(f"indicator {item.indicator_id!r} appears twice on one request")
        seen.add(item.indicator_id)
