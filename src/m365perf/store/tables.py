"""The store's tables (sqlmodel) and the small input records callers hand to the store.

Records the store returns are detached snapshots: changing an attribute changes nothing
in the database. State changes go through :class:`m365perf.store.Transaction` only, so
every backend behaves the same and every change can carry its outbox rows and audit.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import pydantic
from pydantic import field_validator
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, MetaData, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from m365perf.domain.kinds import Frequency, Polarity, Rag, Unit
from m365perf.domain.lifecycle import CURRENT_STEP, DECIDED_STEP
from m365perf.domain.lifecycle import ActionStatus as ActionStatus  # re-exported
from m365perf.domain.lifecycle import CycleStatus as CycleStatus  # re-exported
from m365perf.domain.lifecycle import ReturnStatus as ReturnStatus
from m365perf.domain.lifecycle import StepStatus as StepStatus
from m365perf.store._types import EnumText, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The store's own metadata: deterministic constraint names, the same on every backend."""


OPEN_STEP_STATUSES = CURRENT_STEP
"""Steps still awaiting a decision: the current step of a chain (asked or escalated)."""
DECISIONS = DECIDED_STEP


class TimerStatus(StrEnum):
    """A timer fires once: it is claimed by a worker, then completed or cancelled."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


class OutboxStatus(StrEnum):
    """A side effect waiting to be sent, being sent, sent, or given up on (parked)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    PARKED = "parked"


class CardChannel(StrEnum):
    """Where a card went: a Teams chat with the bot, or an actionable e-mail."""

    TEAMS = "teams"
    EMAIL = "email"


APPROVED_SOURCE = "approved"
"""The :attr:`HistoryPoint.source` of a value that came from an approved return."""


class _Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every table: puts them on the store's own metadata."""


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_type=UtcDateTime(), nullable=nullable, index=index)


def _json(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _enum(enum: type[StrEnum], *, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_type=EnumText(enum), nullable=nullable, index=index)


# --- indicators ----------------------------------------------------------------------


class IndicatorSpec(SQLModel):
    """One register row as the sync step reads it; validated before it reaches the store."""

    indicator_key: str = Field(min_length=1)
    name: str
    unit: Unit = Field(sa_type=EnumText(Unit))
    polarity: Polarity = Field(sa_type=EnumText(Polarity))
    frequency: Frequency = Field(sa_type=EnumText(Frequency))
    owner_id: str | None = None
    owner_email: str | None = None
    comparator: str | None = None
    target_value: float | None = None
    tolerance_kind: str | None = None
    tolerance_amount: float | None = None
    target_applies_from: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Indicator(IndicatorSpec, _Table, table=True):
    """The latest snapshot of one register row, per flow. Retired rows stay, inactive."""

    __tablename__ = "indicator"
    __table_args__ = (UniqueConstraint("flow_id", "indicator_key"), Index(None, "owner_id"))

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str
    active: bool = True
    snapshot_at: datetime = _when()


class IndicatorTarget(_Table, table=True):
    """A target and tolerance from the period it applies from, so history never recolours."""

    __tablename__ = "indicator_target"
    __table_args__ = (UniqueConstraint("flow_id", "indicator_key", "applies_from_start"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str
    indicator_key: str
    applies_from: str
    applies_from_start: date
    value: float | None = None
    tolerance_kind: str | None = None
    tolerance_amount: float | None = None
    recorded_at: datetime = _when()


# --- cycles and returns --------------------------------------------------------------


class Cycle(_Table, table=True):
    """One flow's reporting period; opened once, whoever asks first."""

    __tablename__ = "cycle"
    __table_args__ = (UniqueConstraint("flow_id", "period"), Index(None, "status"))

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str
    period: str
    period_start: date
    frequency: Frequency = _enum(Frequency)
    opened_at: datetime = _when()
    due_date: date
    status: CycleStatus = _enum(CycleStatus)
    version: int = 1
    closed_at: datetime | None = _when(nullable=True)
    closed_by: str | None = None
    close_reason: str | None = None
    unroutable: int = 0
    """Register rows the last opening or resync could not ask anyone for."""


class NewReturn(pydantic.BaseModel):
    """Who must return which indicator in a cycle (the owner is fixed when it opens)."""

    indicator_key: str = pydantic.Field(min_length=1)
    owner_id: str | None = None
    owner_email: str | None = None


class Return(_Table, table=True):
    """One indicator's return for one cycle. ``version`` guards every change."""

    __tablename__ = "indicator_return"
    __table_args__ = (
        UniqueConstraint("cycle_id", "indicator_key"),
        Index(None, "owner_id", "status"),
        Index(None, "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(
        sa_column=Column(Integer, ForeignKey("cycle.id"), nullable=False),
    )
    indicator_key: str
    owner_id: str | None = None
    owner_email: str | None = None
    version: int = 1
    status: ReturnStatus = _enum(ReturnStatus)
    value: float | None = None
    raw_value: str | None = None
    no_data_reason: str | None = None
    commentary: str | None = None
    rag: Rag | None = _enum(Rag, nullable=True)
    direction: str | None = None
    late: bool = False
    outlier_confirmed: bool = False
    data_quality_flag: bool = False
    reminders_sent: int = 0
    submitted_by: str | None = None
    submitted_at: datetime | None = _when(nullable=True)
    decided_by: str | None = None
    decided_at: datetime | None = _when(nullable=True)
    sent_back_by: str | None = None
    sent_back_at: datetime | None = _when(nullable=True)
    sent_back_reason: str | None = None
    created_at: datetime = _when()
    updated_at: datetime = _when()


class ReturnFigure(pydantic.BaseModel):
    """What an owner's accepted submission sets on a return (``Transaction.submit_return``)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    value: float | None = None
    raw_value: str | None = None
    no_data_reason: str | None = None
    commentary: str | None = None
    rag: Rag | None = None
    direction: str | None = None
    late: bool = False
    outlier_confirmed: bool = False
    data_quality_flag: bool = False


# --- approvals -----------------------------------------------------------------------


class StepSpec(pydantic.BaseModel):
    """One step of an approval chain, as the engine resolved it for a return."""

    name: str = pydantic.Field(min_length=1)
    approvers: list[str] = pydantic.Field(min_length=1)
    any_of: bool = True


class ApprovalStep(_Table, table=True):
    """One step of the approval chain of one return version (its submission)."""

    __tablename__ = "approval_step"
    __table_args__ = (UniqueConstraint("return_id", "return_version", "step_index"),)

    id: int | None = Field(default=None, primary_key=True)
    return_id: int = Field(
        sa_column=Column(Integer, ForeignKey("indicator_return.id"), nullable=False),
    )
    return_version: int
    step_index: int
    name: str
    approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    any_of: bool = True
    status: StepStatus = _enum(StepStatus)
    version: int = 1
    decided_by: str | None = None
    decided_at: datetime | None = _when(nullable=True)
    reason: str | None = None
    created_at: datetime = _when()


# --- improvement actions ---------------------------------------------------------------


class NewAction(pydantic.BaseModel):
    """An improvement action as the owner entered it with a red (or special-cause) figure."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    flow_id: str = pydantic.Field(min_length=1)
    cycle_id: int
    return_id: int
    indicator_key: str = pydantic.Field(min_length=1)
    owner_id: str = pydantic.Field(min_length=1)
    what: str = pydantic.Field(min_length=1)
    who_id: str = pydantic.Field(min_length=1)
    due_on: date
    raised_for: str = pydantic.Field(min_length=1)
    """Why it was needed: ``red``, ``special_cause_concern`` or ``offered`` (not required)."""


class ImprovementAction(_Table, table=True):
    """What will be done about a red figure, by whom, by when; updated on later cards.

    One per return: a resubmission revises it rather than raising a second. ``owner_id``
    is the return's owner, who updates it; ``who_id`` the person doing it.
    """

    __tablename__ = "improvement_action"
    __table_args__ = (
        UniqueConstraint("return_id"),
        Index(None, "owner_id", "status"),
        Index(None, "flow_id", "indicator_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str
    cycle_id: int = Field(sa_column=Column(Integer, ForeignKey("cycle.id"), nullable=False))
    return_id: int = Field(
        sa_column=Column(Integer, ForeignKey("indicator_return.id"), nullable=False)
    )
    indicator_key: str
    owner_id: str
    what: str
    who_id: str
    due_on: date
    raised_for: str
    status: ActionStatus = _enum(ActionStatus)
    note: str | None = None
    version: int = 1
    created_by: str
    created_at: datetime = _when()
    updated_by: str
    updated_at: datetime = _when()


# --- timers and outbox ---------------------------------------------------------------


class Timer(_Table, table=True):
    """A reminder, escalation, deadline or refresh that is due at a time; fires once."""

    __tablename__ = "timer"
    __table_args__ = (Index(None, "status", "due_at"), Index(None, "subject_type", "subject_id"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    due_at: datetime = _when()
    subject_type: str
    subject_id: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedup_key: str = Field(unique=True)
    status: TimerStatus = _enum(TimerStatus)
    claimed_by: str | None = None
    claimed_until: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)


class OutboxMessage(_Table, table=True):
    """A side effect committed with the state change that caused it; sent at least once."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "status", "next_attempt_at"), Index(None, "budget"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    budget: str
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedup_key: str = Field(unique=True)
    status: OutboxStatus = _enum(OutboxStatus)
    attempts: int = 0
    next_attempt_at: datetime = _when()
    claimed_by: str | None = None
    claimed_until: datetime | None = _when(nullable=True)
    last_error: str | None = None
    created_at: datetime = _when()
    updated_at: datetime = _when()


# --- audit and conversations ---------------------------------------------------------


class AuditEvent(_Table, table=True):
    """Who did what to which subject, when, with the before and after; never changed."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index(None, "cycle_id", "at"),
        Index(None, "subject_type", "subject_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when()
    actor: str
    action: str
    subject_type: str
    subject_id: str
    cycle_id: int | None = None
    before: dict[str, Any] | None = _json(nullable=True)
    after: dict[str, Any] | None = _json(nullable=True)


class ConversationRef(_Table, table=True):
    """Where to post a proactive Teams message to a user (their 1:1 chat with the bot)."""

    __tablename__ = "conversation_ref"

    user_id: str = Field(primary_key=True)
    conversation_id: str
    service_url: str
    tenant_id: str | None = None
    updated_at: datetime = _when()


class CardDelivery(_Table, table=True):
    """Where one rendered card landed, so it can be replaced later (e.g. with the outcome).

    Teams needs ``service_url``, ``conversation_id`` and ``activity_id`` to update a card;
    an e-mail is found again by its ``message_id``.
    """

    __tablename__ = "card_delivery"
    __table_args__ = (Index(None, "subject_type", "subject_id"), Index(None, "user_id"))

    card_id: str = Field(primary_key=True)
    user_id: str
    channel: CardChannel = _enum(CardChannel)
    conversation_id: str | None = None
    activity_id: str | None = None
    service_url: str | None = None
    message_id: str | None = None
    subject_type: str
    subject_id: int
    delivered_at: datetime = _when()
    replaced_at: datetime | None = _when(nullable=True)
    card_hash: str | None = None
    """Fingerprint of the card as last shown (``messages.card_fingerprint``): an update
    that would show the same card is skipped, not sent."""


class WritebackItem(_Table, table=True):
    """The SharePoint item a write-back key lives in, once a write created or found it.

    Kept so a later write of the same key PATCHes that item by id with no look-up, and
    so the version last written guards against an older figure overwriting a newer one
    without reading the list. ``item_key`` is the key values as a JSON list of text.
    """

    __tablename__ = "writeback_item"

    site: str = Field(primary_key=True)
    list_title: str = Field(primary_key=True)
    item_key: str = Field(primary_key=True)
    item_id: str
    version: float | None = None
    updated_at: datetime = _when()


# --- people --------------------------------------------------------------------------


class PersonSpec(pydantic.BaseModel):
    """One person as the sync step reads them from Entra ID or a CSV.

    Surrounding spaces are dropped and the e-mail is lower-cased, so a CSV typed by hand
    matches the directory; a blank line manager means none.
    """

    model_config = pydantic.ConfigDict(str_strip_whitespace=True)

    id: str = pydantic.Field(min_length=1)
    name: str = pydantic.Field(min_length=1)
    email: str
    line_manager_id: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return email_key(value)

    @field_validator("line_manager_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @pydantic.model_validator(mode="after")
    def _not_own_manager(self) -> PersonSpec:
        # Escalation walks up line managers; a self-loop would never reach anyone.
        if self.line_manager_id == self.id:
            raise ValueError(f"person {self.id!r} cannot be their own line manager")
        return self


def email_key(value: str) -> str:
    """An e-mail as the store keeps and compares it: trimmed and lower-case."""
    if not isinstance(value, str):
        raise TypeError(f"an e-mail must be a string, got {type(value).__name__}")
    key = value.strip().lower()
    local, at, domain = key.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in key):
        raise ValueError(f"not an e-mail address: {value!r}")
    return key


class Person(_Table, table=True):
    """A person the register names (owner, approver, line manager), copied from the directory.

    The engine resolves owners and approvers from here, without calling Microsoft 365.
    ``line_manager_id`` is not a foreign key: the manager may not be in the snapshot.
    """

    __tablename__ = "person"

    id: str = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    line_manager_id: str | None = None
    updated_at: datetime = _when()


# --- imported history ----------------------------------------------------------------


class HistoryValue(_Table, table=True):
    """A value from before the council used m365perf (an export from Pentana, CAMMS, a list).

    Kept per indicator, not per flow: an indicator moved to another flow keeps its past.
    The frequency is part of the key, so the annual 2024/25 and its Q1 (both starting on
    1 April) are different points. An approved return for the same period takes
    precedence over it.
    """

    __tablename__ = "history_value"
    __table_args__ = (UniqueConstraint("indicator_key", "frequency", "period_start"),)

    id: int | None = Field(default=None, primary_key=True)
    indicator_key: str
    frequency: Frequency = _enum(Frequency)
    period: str
    period_start: date
    value: float
    note: str | None = None
    source: str
    recorded_at: datetime = _when()


def history_value(value: float) -> float:
    """A finite number (a NaN would poison every mean and limit computed from it)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a history value must be a finite number, got {value!r}")
    return float(value)


# --- delegation and out of office ----------------------------------------------------


class Delegation(_Table, table=True):
    """An approver away for a run of London days, and who acts for them meanwhile.

    ``delegate_id`` None means "away, nobody named": the flow's ``approval.when_away``
    says whether the approver's line manager is asked instead. ``flow_id`` None covers
    every flow. ``ends_on`` is the last day included. Ending a delegation early records
    who ended it and when; the row is kept for the audit.
    """

    __tablename__ = "delegation"
    __table_args__ = (Index(None, "approver_id"), Index(None, "delegate_id"))

    id: int | None = Field(default=None, primary_key=True)
    approver_id: str
    delegate_id: str | None = None
    flow_id: str | None = None
    starts_on: date
    ends_on: date
    created_by: str
    created_at: datetime = _when()
    ended_by: str | None = None
    ended_at: datetime | None = _when(nullable=True)

    def active_on(self, day: date) -> bool:
        """Whether it applies on ``day`` (a London date): in its range and not ended."""
        return self.ended_at is None and self.starts_on <= day <= self.ends_on

    def covers_flow(self, flow_id: str) -> bool:
        return self.flow_id is None or self.flow_id == flow_id


# --- small read models ---------------------------------------------------------------


class SnapshotResult(pydantic.BaseModel):
    """What a register snapshot changed, for the sync step's audit and log."""

    added: list[str] = pydantic.Field(default_factory=list)
    changed: list[str] = pydantic.Field(default_factory=list)
    retired: list[str] = pydantic.Field(default_factory=list)


class HistoryPoint(pydantic.BaseModel):
    """One past value of an indicator, with the period it belongs to and where it came from.

    ``source`` is :data:`APPROVED_SOURCE` for an approved return (which has a
    ``return_id``) or the import's own label, such as ``import:coventry-2024-25.csv``.
    """

    period: str
    period_start: date
    value: float
    rag: Rag | None = None
    return_id: int | None = None
    source: str
    note: str | None = None


def merge_history(approved: list[HistoryPoint], imported: list[HistoryPoint]) -> list[HistoryPoint]:
    """Approved values plus imported ones for periods no approved return covers, oldest first.

    A value the council approved in m365perf is the record; the spreadsheet it replaced
    only fills the years before.
    """
    covered = {p.period_start for p in approved}
    points = approved + [p for p in imported if p.period_start not in covered]
    return sorted(points, key=lambda p: (p.period_start, p.return_id or 0))


# --- web-form links -------------------------------------------------------------------


class LinkRevocation(_Table, table=True):
    """Every web-form link of a person, or of a cycle, issued up to ``revoked_at`` ends.

    Links are signed as e-mails go and never stored, so a revocation is a cut-off, not a
    list of links: one with ``owner_id`` ends that owner's links (every cycle), one with
    ``cycle_id`` ends that cycle's links (every owner). A card sent later carries a new
    link that works.
    """

    __tablename__ = "link_revocation"
    __table_args__ = (Index(None, "owner_id"), Index(None, "cycle_id"))

    id: int | None = Field(default=None, primary_key=True)
    owner_id: str | None = None
    cycle_id: int | None = None
    revoked_by: str
    revoked_at: datetime = _when()


class BudgetLedgerRow(_Table, table=True):
    """One Microsoft 365 budget shared by every ``serve`` process on the database.

    A token bucket (``tokens`` as of ``stamp``) and the instant before which nothing may
    be sent on it (``blocked_until``, a Retry-After). A concurrency slot is a row of its
    own (``mailbox:x#slot2``) held until ``blocked_until``. Times are seconds since the
    epoch, as the clients' clocks read them.
    """

    __tablename__ = "budget_ledger"

    name: str = Field(primary_key=True)
    tokens: float = 0.0
    stamp: float = 0.0
    blocked_until: float = 0.0
