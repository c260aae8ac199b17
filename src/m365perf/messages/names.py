"""The closed vocabularies that cross package boundaries: kinds, actions, subjects.

The store keeps them as text; each value here is exactly the text it stores, so rows
written before these enums existed read back as members (``TimerKind("reminder")``).
A string outside the vocabulary is refused by the enum, not discovered in a handler.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxKind(StrEnum):
    """What an outbox row asks the dispatcher to do (one message model each)."""

    SEND_CARD = "send_card"
    UPDATE_CARD = "update_card"
    SEND_MAIL = "send_mail"
    WRITE_BACK = "write_back"
    REFRESH = "refresh"
    CHECK_REFRESH = "check_refresh"
    WRITE_ACTION = "write_action"


class TimerKind(StrEnum):
    """What a timer does when it fires (one engine handler each)."""

    REMINDER = "reminder"
    """Chase the owners of a cycle whose returns are still awaiting a first figure."""
    ESCALATE = "escalate"
    """Tell line managers (or the performance team) about returns still awaiting a figure."""
    DIGEST = "digest"
    """The performance team's morning digest of a cycle."""
    STEP_TIMEOUT = "step_timeout"
    """An approval step left undecided too long: remind or escalate its approvers."""
    REFRESH = "refresh"
    """Ask Power BI to refresh a flow's dataset (debounced, within its daily budget)."""
    REFRESH_POLL = "refresh_poll"
    """Ask Power BI where a requested refresh has got to."""
    CLOSE = "close"
    """Close a cycle on the date its flow's close rule names."""
    CHASE_RETURN = "chase_return"
    """Remind the owner of a return sent back to them (its own ladder, from that day)."""
    ESCALATE_RETURN = "escalate_return"
    """Tell the owner's line manager (or the performance team) a sent-back return is not back."""
    CHASE_ACTION = "chase_action"
    """Chase the person doing an improvement action past its by-when date and not done."""
    DIGEST_CARD = "digest_card"
    """Draw an approver's digest again (debounced): send it, or update it in place."""


class SubjectType(StrEnum):
    """What an audit event, a timer or a delivered card is about."""

    CYCLE = "cycle"
    RETURN = "return"
    STEP = "step"
    OWNER = "owner"
    FLOW = "flow"
    DATASET = "dataset"
    PERSON = "person"
    HISTORY = "history"
    DELEGATION = "delegation"
    ACTION = "action"
    OUTBOX = "outbox"


class AuditAction(StrEnum):
    """Every action the audit trail records; ``subject.what_happened``."""

    CYCLE_OPENED = "cycle.opened"
    CYCLE_COLLECTING = "cycle.collecting"
    CYCLE_CLOSED = "cycle.closed"
    CYCLE_RESYNCED = "cycle.resynced"

    RETURN_SUBMITTED = "return.submitted"
    RETURN_SUBMITTED_LATE = "return.submitted_late"
    RETURN_APPROVED = "return.approved"
    RETURN_REJECTED = "return.rejected"
    RETURN_CORRECTION_REQUESTED = "return.correction_requested"
    RETURN_MISSED = "return.missed"
    RETURN_WRITTEN_BACK = "return.written_back"
    RETURN_CHASED = "return.chased"
    RETURN_ESCALATED = "return.escalated"

    STEP_ASKED = "step.asked"
    STEP_ESCALATED = "step.escalated"
    STEP_APPROVED = "step.approved"
    STEP_REJECTED = "step.rejected"
    STEP_SKIPPED = "step.skipped"
    STEP_DELEGATED = "step.delegated"

    DELEGATION_ADDED = "delegation.added"
    DELEGATION_AWAY = "delegation.away_marked"
    DELEGATION_ENDED = "delegation.ended"
    LINKS_REVOKED = "links.revoked"

    OWNER_REMINDED = "owner.reminded"
    OWNER_ESCALATED = "owner.escalated"
    OWNER_NOT_ESCALATED = "owner.not_escalated"

    TIMER_FOLDED = "timer.folded"
    TIMER_PUT_OFF = "timer.put_off"

    CARD_SENT_BY_EMAIL_INSTEAD = "card.sent_by_email_instead"

    OUTBOX_RETRIED = "outbox.retried"

    POWERBI_REFRESH_REQUESTED = "powerbi.refresh_requested"
    POWERBI_REFRESH_DEFERRED = "powerbi.refresh_deferred"
    POWERBI_REFRESHED = "powerbi.refreshed"
    POWERBI_REFRESH_FAILED = "powerbi.refresh_failed"

    HISTORY_IMPORTED = "history.imported"

    ACTION_CREATED = "action.created"
    ACTION_REVISED = "action.revised"
    ACTION_UPDATED = "action.updated"
    ACTION_CHASED = "action.chased"
    ACTION_WRITTEN_BACK = "action.written_back"

    @classmethod
    def for_step(cls, status: str) -> AuditAction:
        """The action recording that a step became ``status`` (``asked`` → ``step.asked``).

        Raises ``ValueError`` for a status no step action exists for (``pending``).
        """
        return cls(f"step.{status}")
