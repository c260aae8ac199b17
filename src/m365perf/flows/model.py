"""The flow file schema: what the performance team writes in ``flows/*.yaml``.

Every model forbids unknown keys, so a typo is an error with a did-you-mean rather
than a setting silently ignored.
"""

from __future__ import annotations

import re
import uuid
from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from m365perf.domain.kinds import Frequency, HolidayCalendar, Rag
from m365perf.domain.periods import Period

Channel = Literal["teams", "email"]

#: Indicator fields a register column can map to.
INDICATOR_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "unit",
    "polarity",
    "frequency",
    "target",
    "tolerance",
    "target_from",
    "comparator",
    "owner",
    "service",
    "minimum",
    "maximum",
    "kind",
    "profile",
    "active",
)
REQUIRED_INDICATOR_FIELDS: tuple[str, ...] = ("id", "name", "unit", "owner")

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Register(_Strict):
    """Where the indicator register lives and how its columns read as indicator fields."""

    site: str = Field(
        description="SharePoint site as host:/path, e.g. contoso.sharepoint.com:/sites/perf"
    )
    list_title: str = Field(alias="list", description="Title of the register list.")
    fields: dict[str, str] = Field(description="Register column -> indicator field.")
    filter: dict[str, str] = Field(
        default_factory=dict,
        description="Register column -> value; only matching rows are due (indexed columns).",
    )

    @field_validator("site")
    @classmethod
    def _site_shape(cls, site: str) -> str:
        if ":/" not in site:
            raise ValueError(
                "site must be host:/path, e.g. contoso.sharepoint.com:/sites/performance"
            )
        return site

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: dict[str, str]) -> dict[str, str]:
        from difflib import get_close_matches

        for column, field in fields.items():
            if field not in INDICATOR_FIELDS:
                close = get_close_matches(field, INDICATOR_FIELDS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(
                    f"column '{column}' maps to unknown indicator field '{field}'{hint}; "
                    f"known fields: {', '.join(INDICATOR_FIELDS)}"
                )
        mapped = list(fields.values())
        for field in set(mapped):
            if mapped.count(field) > 1:
                raise ValueError(f"indicator field '{field}' is mapped from more than one column")
        missing = [f for f in REQUIRED_INDICATOR_FIELDS if f not in mapped]
        if missing:
            raise ValueError(f"no register column maps to {', '.join(missing)}")
        return fields

    def column_for(self, field: str) -> str | None:
        """The register column that carries an indicator field, if any."""
        for column, mapped in self.fields.items():
            if mapped == field:
                return column
        return None


class Schedule(_Strict):
    """When a cycle opens and when returns are due, in working days."""

    opens_on_working_day: int = Field(
        ge=1, le=40, description="Open on the Nth working day after the collected period ends."
    )
    opens_at: str = Field("09:00", description="Local time (Europe/London) the cycle opens.")
    due_working_days: int = Field(ge=1, le=60, description="Working days from opening to due.")
    collects: Literal["previous_period", "current_period"] = "previous_period"

    @field_validator("opens_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not re.fullmatch(r"\d{2}:\d{2}", value):
            raise ValueError(f"must be a 24-hour time HH:MM, not '{value}'")
        hour, minute = (int(part) for part in value.split(":"))
        if hour > 23 or minute > 59:
            raise ValueError(f"must be a 24-hour time HH:MM, not '{value}'")
        return value

    @property
    def opening_time(self) -> time:
        hour, minute = (int(part) for part in self.opens_at.split(":"))
        return time(hour, minute)


class Escalation(_Strict):
    """Who hears about an overdue return, and after how many reminders."""

    after_reminders: int = Field(ge=1, le=20)
    to: Literal["line_manager", "performance_team"] = "line_manager"


class Reminders(_Strict):
    """Reminders on working days: before due, on the day, and while overdue."""

    before_due_working_days: list[Annotated[int, Field(ge=1, le=20)]] = Field(default_factory=list)
    on_due: bool = True
    overdue_every_working_days: int | None = Field(None, ge=1, le=20)
    escalate: Escalation | None = None
    catch_up_hours: int = Field(
        24,
        ge=0,
        le=24 * 30,
        description=(
            "After a late start or downtime: a reminder or escalation whose moment passed "
            "longer ago than this is folded or put off, never sent as if on time."
        ),
    )


class Approver(_Strict):
    """Exactly one of: a register column, a fixed user, a group, or the owner's line manager."""

    column: str | None = None
    user: str | None = None
    group: str | None = None
    line_manager: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Approver:
        given = [k for k in ("column", "user", "group", "line_manager") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "an approver is exactly one of column, user, group or line_manager: true"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.user is not None and not _EMAIL.match(self.user):
            raise ValueError(f"user must be an e-mail address, not '{self.user}'")
        return self

    @property
    def kind(self) -> Literal["column", "user", "group", "line_manager"]:
        if self.column:
            return "column"
        if self.user:
            return "user"
        if self.group:
            return "group"
        return "line_manager"

    @property
    def ref(self) -> str | None:
        return self.column or self.user or self.group


class StepCondition(_Strict):
    """Run the step only when every stated part holds."""

    rag: list[Rag] | None = None
    direction: list[Literal["improving", "worsening", "no_change", "not_comparable"]] | None = None
    change_over_percent: float | None = Field(None, gt=0)


class OnTimeout(_Strict):
    """What happens when an approver has not acted in time."""

    remind: bool = True
    escalate_to: Literal["line_manager", "performance_team"] | None = None


class ApprovalStep(_Strict):
    """One approver step in the chain."""

    name: str = Field(min_length=1)
    approver: Approver
    when: StepCondition | None = None
    timeout_working_days: int | None = Field(None, ge=1, le=20)
    on_timeout: OnTimeout = OnTimeout()
    on_self_approval: Literal["next", "fallback"] | None = None
    fallback: str | None = None

    @model_validator(mode="after")
    def _fallback_given(self) -> ApprovalStep:
        if self.on_self_approval == "fallback" and not self.fallback:
            raise ValueError("on_self_approval: fallback needs a fallback e-mail address")
        if self.fallback is not None and not _EMAIL.match(self.fallback):
            raise ValueError(f"fallback must be an e-mail address, not '{self.fallback}'")
        return self


class Approval(_Strict):
    """The ordered approver chain; nobody approves their own return."""

    on_self_approval: Literal["next", "fallback"] = "next"
    fallback: str | None = None
    allow_corrections: bool = True
    when_away: Literal["delegate", "line_manager", "wait"] = Field(
        "delegate",
        description=(
            "An approver marked away: their named delegate acts for them (delegate); "
            "or else their line manager (line_manager); or nobody does (wait)."
        ),
    )
    cards: Literal["digest", "per_item"] = Field(
        "digest",
        description=(
            "digest: each approver gets one card per cycle listing everything waiting for "
            "them; per_item: one card per return, step and approver."
        ),
    )
    steps: list[ApprovalStep] = Field(min_length=1)


class Closing(_Strict):
    """When a cycle closes, and what a figure returned after that does."""

    all_approved: bool = Field(True, description="Close as soon as every return is approved.")
    working_days_after_due: int | None = Field(
        20, ge=0, le=120, description="Close this many working days after the due date."
    )
    late_returns: Literal["refuse", "correction"] = Field(
        "correction",
        description="After closing: refuse a missed figure, or take it as a late correction.",
    )

    @model_validator(mode="after")
    def _closes_somehow(self) -> Closing:
        # A cycle that waits for one missing figure forever keeps chasing and re-reading
        # the register for an old period; it must close by a date if not when all approved.
        if not self.all_approved and self.working_days_after_due is None:
            raise ValueError(
                "a cycle of this flow would never close: set working_days_after_due, "
                "or all_approved: true"
            )
        return self


class Suspension(_Strict):
    """RAG switched off for a run of periods (direction of travel still reported)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_period: str = Field(alias="from")
    to_period: str = Field(alias="to")
    reason: str = Field(min_length=1)


class Tolerance(_Strict):
    """Amber band: within this of target. Exactly one of absolute or percent."""

    absolute: float | None = Field(None, ge=0)
    percent: float | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Tolerance:
        if (self.absolute is None) == (self.percent is None):
            raise ValueError("tolerance is exactly one of absolute or percent")
        return self


class RagRules(_Strict):
    """How RAG is judged and when commentary is required."""

    tolerance: Tolerance = Tolerance(percent=5)
    commentary_required_for: list[Rag] = Field(default_factory=lambda: [Rag.RED, Rag.AMBER])
    commentary_on_special_cause_concern: bool = False
    outlier_threshold_percent: float = Field(50, gt=0)
    suspended: list[Suspension] = Field(default_factory=list)


ActionTrigger = Literal["red", "special_cause_concern"]


class ImprovementActions(_Strict):
    """Improvement actions an owner must enter for some results, and where they are listed."""

    required_for: list[ActionTrigger] = Field(
        min_length=1,
        description="Results that need an action: red, special_cause_concern, or both.",
    )
    list_title: str = Field(
        alias="list",
        min_length=1,
        description="Title of the SharePoint list actions are written to (the results' site).",
    )
    chase: bool = Field(
        True, description="Chase overdue actions on the flow's reminder ladder (overdue_every)."
    )

    @field_validator("required_for")
    @classmethod
    def _no_repeat(cls, triggers: list[ActionTrigger]) -> list[ActionTrigger]:
        if len(set(triggers)) != len(triggers):
            raise ValueError("a result is listed twice")
        return triggers


class WriteBack(_Strict):
    """The SharePoint results list approved values are upserted into."""

    site: str
    list_title: str = Field(alias="list", description="Title of the results list.")
    key: list[str] = Field(default_factory=lambda: ["IndicatorId", "Period"], min_length=1)
    history_list: str | None = Field(
        None,
        alias="history",
        description="Title of the list past values are kept in, on the same site (optional).",
    )


class OpenData(_Strict):
    """The open-data export (``m365perf export``): which indicators are not published.

    Some indicators are reported to members but not to the public (small numbers that
    could identify someone, figures under embargo); listing them here keeps them out
    of every export of this flow, whatever the command line asks.
    """

    exclude: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Indicator ids never published in the open-data export.",
    )

    @field_validator("exclude")
    @classmethod
    def _no_repeat(cls, ids: list[str]) -> list[str]:
        stripped = [i.strip() for i in ids]
        if any(not i for i in stripped):
            raise ValueError("an indicator id is blank")
        repeated = sorted({i for i in stripped if stripped.count(i) > 1})
        if repeated:
            raise ValueError(f"indicator {', '.join(repeated)} is listed twice")
        return stripped


class PowerBI(_Strict):
    """The dataset refreshed after write-backs, debounced and budgeted per day."""

    workspace: str
    dataset: str
    debounce_minutes: int = Field(15, ge=0, le=24 * 60)
    daily_budget: int = Field(8, ge=1, le=48)
    scheduled_refreshes_per_day: int = Field(
        0, ge=0, le=48, description="Refreshes Power BI runs on its own schedule; they count."
    )

    @field_validator("workspace", "dataset")
    @classmethod
    def _power_bi_id(cls, value: str) -> str:
        # The ids go into URLs and into the refresh timers' keys, which are ':'-separated.
        if not value or ":" in value or any(c.isspace() for c in value):
            raise ValueError(f"must be a Power BI id (no spaces or ':'), not {value!r}")
        return value


class Flow(_Strict):
    """One reporting flow: which indicators, when, through which channels and approvers."""

    id: str
    name: str
    description: str = ""
    frequency: Frequency
    collect_from: str | None = Field(
        None,
        description=(
            "The first period the service collects, e.g. 2026-10, '2026/27 Q3', 2025/26; "
            "it never opens one before. Unset: only a period whose opening time passed "
            "less than reminders.catch_up_hours ago."
        ),
    )
    calendar: HolidayCalendar = HolidayCalendar.ENGLAND_AND_WALES
    source: Register = Field(alias="register")
    schedule: Schedule
    channels: list[Channel] = Field(min_length=1)
    reminders: Reminders = Reminders()
    approval: Approval
    close: Closing = Closing()
    rag: RagRules = RagRules()
    writeback: WriteBack
    powerbi: PowerBI | None = None
    actions: ImprovementActions | None = None
    export: OpenData = OpenData()
    performance_team: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    staff_group: str | None = None
    """The Entra group (object id) whose members may open the staff pages (``/status``)."""
    _file: str | None = PrivateAttr(None)

    @property
    def file(self) -> str | None:
        """The flow file this flow was read from, so later errors can point into it."""
        return self._file

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("id must be lower-case letters, digits and hyphens, e.g. monthly-kpis")
        return value

    @property
    def first_period(self) -> Period | None:
        """``collect_from`` as a period (the loader has checked it reads for the frequency)."""
        if self.collect_from is None:
            return None
        return Period.parse_for(self.frequency, self.collect_from)

    @field_validator("staff_group")
    @classmethod
    def _group_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError(
                "staff_group must be the Entra group's object id, a GUID such as "
                f"3f2a9c1e-0b7d-4e5f-8a6b-1c2d3e4f5a6b, not {value!r}"
            ) from None

    @field_validator("channels")
    @classmethod
    def _no_repeat(cls, channels: list[Channel]) -> list[Channel]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels
