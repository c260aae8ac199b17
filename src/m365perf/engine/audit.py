"""Every lifecycle transition leaves one audit event: who, when, the state before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import ApprovalStep, Cycle, Return, Timer, Transaction


def audit_transition(
    tx: Transaction,
    action: AuditAction,
    *,
    actor: str,
    before: Cycle | Return,
    after: Cycle | Return,
    at: datetime,
    **details: Any,
) -> None:
    """Audit a cycle's or a return's move from ``before`` to ``after`` (status and version)."""
    is_cycle = isinstance(after, Cycle)
    tx.audit(
        action,
        at=at,
        actor=actor,
        subject_type=SubjectType.CYCLE if is_cycle else SubjectType.RETURN,
        subject_id=after.id or 0,
        cycle_id=after.id if isinstance(after, Cycle) else after.cycle_id,
        before={"status": before.status.value, "version": before.version},
        after={"status": after.status.value, "version": after.version, **details},
    )


def audit_step(
    tx: Transaction,
    cycle: Cycle,
    ret: Return,
    before: ApprovalStep,
    after: ApprovalStep,
    actor: str,
    now: datetime,
) -> None:
    """Audit an approval step's move (asked, escalated, approved, rejected, skipped)."""
    tx.audit(
        AuditAction.for_step(after.status),
        at=now,
        actor=actor,
        subject_type=SubjectType.RETURN,
        subject_id=ret.id or 0,
        cycle_id=cycle.id,
        before={"step": before.name, "index": before.step_index, "status": before.status.value},
        after={
            "step": after.name,
            "index": after.step_index,
            "status": after.status.value,
            "reason": after.reason,
        },
    )


def audit_caught_up(
    tx: Transaction,
    timer: Timer,
    action: AuditAction,
    *,
    cycle_id: int | None,
    now: datetime,
    **details: Any,
) -> None:
    """Record a timer that catch-up folded or put off, so the team can see it."""
    tx.audit(
        action,
        at=now,
        actor="scheduler",
        subject_type=SubjectType(timer.subject_type),
        subject_id=timer.subject_id or 0,
        cycle_id=cycle_id,
        before={"timer": timer.dedup_key, "due_at": timer.due_at.isoformat()},
        after=details,
    )
