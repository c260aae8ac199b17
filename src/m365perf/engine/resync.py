"""Re-reading the register for a cycle still open: ask for what has become routable.

A row fixed after the cycle opened (an owner added to the directory, a bad id
corrected) gets its return and its owner's request; nothing already asked changes.
Running it again with the same register adds nothing and sends nothing, so the
service can do it every morning and a person can do it at once (``cycle resync``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from m365perf.domain.periods import Period
from m365perf.engine.approvals import change_percent
from m365perf.engine.chain import start_chain
from m365perf.engine.closing import keep_closing
from m365perf.engine.context import EngineContext
from m365perf.engine.cycles import _report_unroutable, ask_owner, route_requests, snapshot
from m365perf.engine.errors import CycleClosed, EmptyCycle, UnknownCycle
from m365perf.flows.model import Flow
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.plan.register import Indicator, RowProblem
from m365perf.store import (
    AuditEvent,
    Cycle,
    CycleStatus,
    Return,
    ReturnStatus,
    Store,
    Transaction,
)

RESYNCED = AuditAction.CYCLE_RESYNCED
_REPORTS = (
    AuditAction.CYCLE_OPENED,
    RESYNCED,
)  # audit events that carry the unroutable list mailed


@dataclass(frozen=True)
class CycleResync:
    """What re-reading the register did for one cycle.

    ``added`` are the indicators asked for now; ``unroutable`` those still nobody can be
    asked for, and why; ``reported`` says whether the performance team was mailed them
    (only when that list changed). ``round`` numbers the resyncs of a cycle that changed
    something (audited as ``cycle.resynced``); None when this one changed nothing.
    """

    cycle_id: int
    round: int | None
    added: tuple[str, ...]
    owners: int
    unroutable: tuple[RowProblem, ...]
    reported: bool


def resync_cycle(
    store: Store,
    ctx: EngineContext,
    flow: Flow,
    period: Period,
    indicators: Sequence[Indicator],
    problems: Sequence[RowProblem],
    *,
    now: datetime,
    actor: str = "scheduler",
) -> CycleResync:
    """Snapshot the register again and ask for the indicators that have no return yet.

    Raises :class:`UnknownCycle` when the cycle was never opened, :class:`CycleClosed`
    when it is closed, and :class:`EmptyCycle` when the register gave no indicator at
    all (a bad read would otherwise mark every indicator retired).
    """
    with store.transaction() as tx:
        cycle = tx.find_cycle(flow.id, period.label)
        if cycle is None or cycle.id is None:
            raise UnknownCycle(flow.id, period.label)
        if cycle.status is CycleStatus.CLOSED:
            raise CycleClosed(flow.id, period.label, cycle.closed_at)
        if not indicators:
            raise EmptyCycle(flow.id, period.label, problems, what="the register was not re-read")
        cycle_id = cycle.id
        snapshot(tx, flow, indicators, now)
        routed_now = _route_stuck_returns(tx, ctx, cycle, now=now)
        asked = {r.indicator_key for r in tx.list_returns(cycle_id=cycle_id)}
        unroutable = [p for p in problems if p.indicator_id not in asked]
        wanted, owners, cannot = route_requests(
            tx, flow, [ind for ind in indicators if ind.id not in asked]
        )
        unroutable += cannot
        history = [e for e in tx.list_audit(cycle_id=cycle_id) if e.action in _REPORTS]
        round_number = 1 + sum(1 for e in history if e.action == RESYNCED)
        round_name = f"resync{round_number}"
        created = tx.create_returns(cycle_id, wanted, now=now) if wanted else []
        by_owner: dict[str, list[Return]] = {}
        for ret in created:
            by_owner.setdefault(ret.owner_id or "", []).append(ret)
        for owner_id, returns in by_owner.items():
            ask_owner(tx, ctx, cycle_id, owners[owner_id], returns, now=now, round_name=round_name)
        still = sorted({u.indicator_id for u in unroutable})
        listed_before = _last_reported(history)
        reported = bool(unroutable) and still != listed_before
        if reported:
            _report_unroutable(
                tx, ctx, flow, period, cycle_id, unroutable, now, round_name=round_name
            )
        tx.note_unroutable(cycle_id, len(still))
        added = tuple(r.indicator_key for r in created)
        changed = bool(added) or bool(routed_now) or still != listed_before
        if changed:
            tx.audit(
                RESYNCED,
                at=now,
                actor=actor,
                subject_type=SubjectType.CYCLE,
                subject_id=cycle_id,
                cycle_id=cycle_id,
                after={
                    "round": round_number,
                    "added": list(added),
                    "routed": list(routed_now),
                    "owners": len(by_owner),
                    "unroutable": still,
                },
            )
        keep_closing(tx, ctx, tx.get_cycle(cycle_id), now=now)
    return CycleResync(
        cycle_id,
        round_number if changed else None,
        added,
        len(by_owner),
        tuple(unroutable),
        reported=reported,
    )


def _route_stuck_returns(
    tx: Transaction, ctx: EngineContext, cycle: Cycle, *, now: datetime
) -> tuple[str, ...]:
    """Returned figures that had nobody to approve them: start their chains now if they can.

    The owner was told "waiting: nobody to approve it"; once the register names an
    approver, the figure goes on without being returned again.
    """
    routed = []
    for ret in tx.list_returns(cycle_id=cycle.id, status=ReturnStatus.RETURNED):
        if tx.list_steps(ret.id or 0, ret.version):
            continue
        outcome = start_chain(
            tx, ctx, cycle, ret, change_percent=change_percent(tx, ctx, cycle, ret), now=now
        )
        if not outcome.startswith("waiting"):
            routed.append(ret.indicator_key)
    return tuple(routed)


def _last_reported(history: Sequence[AuditEvent]) -> list[str]:
    """The unroutable ids the last opening or resync recorded (and mailed, if any)."""
    if not history:
        return []
    after: dict[str, Any] = history[-1].after or {}
    return sorted(str(i) for i in after.get("unroutable", []))
