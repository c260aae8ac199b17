"""The store's batched reads (status page, reports, /metrics) and requeueing a parked row,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_helpers import FLOW, NOW, open_cycle

from m365perf.domain.kinds import Frequency, Polarity, Unit
from m365perf.store import (
    IndicatorSpec,
    NewReturn,
    NotFound,
    OutboxStatus,
    ReturnStatus,
    StepSpec,
    Store,
)

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


def test_reads_for_a_batch_of_indicators_match_the_reads_one_at_a_time(store: Store) -> None:
    """Opening a cycle reads targets, history, indicators and queued cards for a batch at
    once; each must answer exactly what the one-at-a-time read answers."""
    from datetime import date

    from m365perf.store import IndicatorTarget

    keys = [f"K{n:03d}" for n in range(450)]  # more than one statement's chunk
    with store.transaction() as tx:
        tx.upsert_indicators(FLOW, [_spec(k) for k in keys], now=NOW)
        tx.put_targets(
            FLOW,
            [
                IndicatorTarget(
                    flow_id=FLOW,
                    indicator_key=k,
                    applies_from=label,
                    applies_from_start=start,
                    value=value,
                    tolerance_kind="percent" if n % 2 else None,
                    tolerance_amount=5.0 if n % 2 else None,
                    recorded_at=NOW,
                )
                for n, k in enumerate(keys)
                for label, start, value in (
                    ("2026-04", date(2026, 4, 1), 10.0 + n),
                    ("2026-10", date(2026, 10, 1), 20.0 + n),
                )
            ],
            now=NOW,
        )
        for n, k in enumerate(keys[::7]):
            tx.put_history(
                k,
                frequency=Frequency.MONTHLY,
                period="2026-08",
                period_start=date(2026, 8, 1),
                value=float(n),
                source="test",
                now=NOW,
            )
        tx.enqueue("send_card", budget="bot", payload={}, dedup_key="send:a", now=NOW)
        september, _ = open_cycle(tx, "2026-09")
        tx.create_returns(september.id or 0, [NewReturn(indicator_key="K000")], now=NOW)
    with store.transaction() as tx:
        september_start = date(2026, 9, 1)
        targets = tx.targets_for(FLOW, keys, september_start)
        history = tx.histories(keys, Frequency.MONTHLY, before=september_start)
        found = tx.find_indicators(FLOW, [*keys, "missing"])
        for key in keys:
            one = tx.target_for(FLOW, key, september_start)
            assert one is not None and targets[key].value == one.value == 10.0 + keys.index(key)
            assert targets[key].tolerance_kind == one.tolerance_kind
            assert history[key] == tx.history(key, Frequency.MONTHLY, before=september_start)
        assert sum(1 for points in history.values() if points) == len(keys[::7])
        assert sorted(found) == keys
        assert tx.queued_keys(["send:a", "send:b"]) == {"send:a"}
        assert tx.has_returns(september.id or 0, [ReturnStatus.AWAITING])
        assert not tx.has_returns(september.id or 0, [ReturnStatus.APPROVED])
