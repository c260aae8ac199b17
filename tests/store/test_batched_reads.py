"""The store's batched reads (status page, reports, /metrics) and requeueing a parked row,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_helpers import FLOW, NOW, open_cycle

from m365perf.domain.kinds import Frequency, Polarity, Unit
from m365perf.store import IndicatorSpec, NewReturn, NotFound, OutboxStatus, StepSpec, Store

LATER = NOW + timedelta(hours=1)


def _spec(key: str) -> IndicatorSpec:
    return IndicatorSpec(
        indicator_key=key,
        name=f"Indicator {key}",
        unit=Unit.PERCENTAGE,
        polarity=Polarity.HIGHER_IS_BETTER,
        frequency=Frequency.MONTHLY,
    )


def test_returns_indicators_chains_and_audit_of_several_cycles_in_one_read_each(
    store: Store,
) -> None:
    with store.transaction() as tx:
        tx.upsert_indicators(FLOW, [_spec("A"), _spec("B")], now=NOW)
        tx.upsert_indicators("other-flow", [_spec("C")], now=NOW)
        september, _ = open_cycle(tx, "2026-09")
        october, _ = open_cycle(tx, "2026-10")
        elsewhere, _ = open_cycle(tx, "2026-10", flow="other-flow")
        made = [
            tx.create_returns(c.id or 0, [NewReturn(indicator_key=k, owner_id="o")], now=NOW)[0]
            for c, k in ((september, "A"), (october, "B"), (elsewhere, "C"))
        ]
        for ret in made:
            tx.create_steps(ret.id or 0, 1, [StepSpec(name="S1", approvers=["a"])], now=NOW)
            tx.create_steps(ret.id or 0, 2, [StepSpec(name="S2", approvers=["b"])], now=NOW)
        for cycle in (september, october, elsewhere):
            tx.audit(
                "x.one", at=NOW, actor="t", subject_type="cycle", subject_id=1, cycle_id=cycle.id
            )
            tx.audit(
                "x.two", at=NOW, actor="t", subject_type="cycle", subject_id=1, cycle_id=cycle.id
            )
    ours = [september.id or 0, october.id or 0]
    with store.transaction() as tx:
        returns = tx.list_returns(cycle_ids=ours)
        indicators = tx.list_indicators([FLOW])
        chains = tx.list_chains([r.id or 0 for r in made[:2]])
        events = tx.list_audit(cycle_ids=ours, actions=["x.two"])
        none = tx.list_returns(cycle_ids=[])

    assert [r.indicator_key for r in returns] == ["A", "B"] and none == []
    assert [i.indicator_key for i in indicators] == ["A", "B"]
    assert [(s.return_id, s.return_version, s.name) for s in chains] == [
        (made[0].id, 1, "S1"),
        (made[0].id, 2, "S2"),
        (made[1].id, 1, "S1"),
        (made[1].id, 2, "S2"),
    ]
    assert sorted((e.cycle_id, e.action) for e in events) == [
        (september.id, "x.two"),
        (october.id, "x.two"),
    ]


def test_a_parked_row_is_requeued_once_with_its_attempts_counted_afresh(store: Store) -> None:
    with store.transaction() as tx:
        row, _ = tx.enqueue("send_card", budget="bot", payload={}, dedup_key="k", now=NOW)
        tx.enqueue("write_back", budget="sharepoint", payload={}, dedup_key="w", now=NOW)
    (claimed, _other) = store.claim_outbox(NOW, 2, "w", lease=timedelta(days=1))
    store.park(claimed.id or 0, "403 blocked", now=NOW)
    with store.transaction() as tx:
        depth = tx.outbox_depth()
        before = tx.requeue_parked(row.id or 0, now=LATER)
        again = tx.requeue_parked(row.id or 0, now=LATER)
        with pytest.raises(NotFound):
            tx.requeue_parked(9999, now=LATER)
    with store.transaction() as tx:
        (after,) = [m for m in tx.list_outbox() if m.id == row.id]

    assert depth == {
        ("send_card", OutboxStatus.PARKED): 1,
        ("write_back", OutboxStatus.IN_FLIGHT): 1,
    }
    assert before is not None and (before.status, before.attempts) == (OutboxStatus.PARKED, 1)
    assert again is None
    assert (after.status, after.attempts, after.next_attempt_at) == (
        OutboxStatus.PENDING,
        0,
        LATER,
    )
    assert [m.id for m in store.claim_outbox(LATER, 5, "w2")] == [row.id]
