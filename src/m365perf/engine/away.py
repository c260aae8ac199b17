"""Steps already asked when a delegation starts: the delegate is asked too.

Covering is worked out on the day (``engine.delegation``), so a click by a delegate works
as soon as the delegation is recorded; what this adds is the card. It runs when a
delegation or an away marking is recorded (for that approver) and in every flow's
morning job (for delegations starting that day). Each delegate gets a step's card once.
"""

from __future__ import annotations

from datetime import datetime

from m365perf.engine.chain import send_cover_cards
from m365perf.engine.context import EngineContext
from m365perf.store import ReturnStatus, Store


def cover_open_steps(
    store: Store, ctx: EngineContext, *, now: datetime, approver_id: str | None = None
) -> int:
    """Send each open step's card to whoever acts today for one of its approvers; how many."""
    sent = 0
    with store.transaction() as tx:
        for step in tx.list_open_steps(approver=approver_id):
            ret = tx.get_return(step.return_id)
            if ret.status is not ReturnStatus.RETURNED or ret.version != step.return_version:
                continue
            cycle = tx.get_cycle(ret.cycle_id)
            if cycle.flow_id not in ctx.flows:
                continue
            chain = tx.list_steps(ret.id or 0, step.return_version)
            sent += send_cover_cards(tx, ctx, cycle, ret, chain, step, now=now)
    return sent
