"""The store contract: every test here runs on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from store_helpers import FLOW, NOW, PERIOD, Backend, new_return, open_cycle, race

from m365perf.domain.kinds import Frequency, Polarity, Rag, Unit
from m365perf.store import (
    APPROVED_SOURCE,
    AlreadyDecided,
    CardChannel,
    IndicatorSpec,
    NestedTransaction,
    NewReturn,
    NotFound,
    OutboxStatus,
    PersonSpec,
    ReturnFigure,
    ReturnStatus,
    StaleVersion,
    StepSpec,
    StepStatus,
    Store,
    TimerStatus,
    TransitionRefused,
)

LATER = NOW + timedelta(hours=1)

MONTHLY = Frequency.MONTHLY


class _Boom(Exception):
    pass


def _spec(key: str, **overrides: object) -> IndicatorSpec:
    fields: dict[str, object] = {
        "indicator_key": key,
        "name": f"Indicator {key}",
        "unit": Unit.PERCENTAGE,
        "polarity": Polarity.HIGHER_IS_BETTER,
        "frequency": Frequency.MONTHLY,
        "owner_id": "officer-1",
        "target_value": 90.0,
        "raw": {"ID": key, "Target": "90%"},
    }
    fields.update(overrides)
    return IndicatorSpec.model_validate(fields)


# --- cycles ----------------------------------------------------------------------------


def test_opening_a_cycle_twice_creates_it_once(store: Store) -> None:
    with store.transaction() as tx:
        first, created_first = open_cycle(tx)
    with store.transaction() as tx:
        again, created_again = open_cycle(tx)
        cycles = tx.list_cycles(flow_id=FLOW)
    assert (created_first, created_again) == (True, False)
    assert again.id == first.id
    assert [c.period for c in cycles] == [PERIOD]


def test_racing_instances_open_a_cycle_exactly_once(backend: Backend) -> None:
    stores = [backend.new_store() for _ in range(4)]
    for period in ("2026-07", "2026-08", "2026-09"):

        def open_it(i: int, period: str = period) -> tuple[int | None, bool]:
            with stores[i].transaction() as tx:
                cycle, created = open_cycle(tx, period)
            return cycle.id, created

        outcomes = race(len(stores), open_it)
        assert all(isinstance(o, tuple) for o in outcomes), outcomes
        assert sum(1 for o in outcomes if isinstance(o, tuple) and o[1]) == 1
        assert len({o[0] for o in outcomes if isinstance(o, tuple)}) == 1


def test_cycles_are_found_listed_and_closed(store: Store) -> None:
    with store.transaction() as tx:
        sept, _ = open_cycle(tx, "2026-09")
        aug, _ = open_cycle(tx, "2026-08")
        open_cycle(tx, "2026-08", flow="quarterly")
    with store.transaction() as tx:
        closed = tx.close_cycle(aug.id or 0, 1, by="perf", reason="year end", now=LATER)
        with pytest.raises(TransitionRefused, match="closed"):
            tx.close_cycle(aug.id or 0, 2, by="perf", reason="again", now=LATER)
        with pytest.raises(TransitionRefused, match="version"):
            tx.close_cycle(sept.id or 0, 7, by="perf", reason="stale", now=LATER)
        assert tx.find_cycle(FLOW, "2026-09") == sept
        assert tx.find_cycle(FLOW, "2025-01") is None
        assert [c.period for c in tx.list_cycles(flow_id=FLOW)] == ["2026-08", "2026-09"]
        assert [c.period for c in tx.list_cycles(flow_id=FLOW, status="open")] == ["2026-09"]
        with pytest.raises(NotFound):
            tx.get_cycle(9999)
    assert closed.status == "closed" and closed.closed_at == LATER
    assert (closed.version, closed.closed_by, closed.close_reason) == (2, "perf", "year end")


def test_a_cycle_starts_collecting_once(store: Store) -> None:
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx)
        assert tx.collect_cycle(cycle.id or 0, now=NOW)
        assert not tx.collect_cycle(cycle.id or 0, now=LATER)
        assert tx.get_cycle(cycle.id or 0).status == "collecting"


# --- returns ---------------------------------------------------------------------------


def test_creating_returns_again_creates_only_the_missing_ones(store: Store) -> None:
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx)
        first = tx.create_returns(
            cycle.id or 0, [NewReturn(indicator_key=k, owner_id="o1") for k in ("A", "B")], now=NOW
        )
    with store.transaction() as tx:
        second = tx.create_returns(
            cycle.id or 0,
            [NewReturn(indicator_key=k, owner_id="o1") for k in ("A", "B", "C")],
            now=NOW,
        )
        everything = tx.list_returns(cycle_id=cycle.id)
    assert [r.indicator_key for r in first] == ["A", "B"]
    assert [r.indicator_key for r in second] == ["C"]
    assert [r.indicator_key for r in everything] == ["A", "B", "C"]
    assert all(r.status == ReturnStatus.AWAITING and r.version == 1 for r in everything)


def test_returns_for_an_unknown_cycle_or_twice_the_same_key_are_refused(store: Store) -> None:
    with store.transaction() as tx:
        with pytest.raises(NotFound):
            tx.create_returns(404, [NewReturn(indicator_key="A")], now=NOW)
        cycle, _ = open_cycle(tx)
        with pytest.raises(ValueError, match="'A' appears more than once"):
            tx.create_returns(
                cycle.id or 0, [NewReturn(indicator_key="A"), NewReturn(indicator_key="A")], now=NOW
            )


def test_returns_are_listed_by_owner_and_status(store: Store) -> None:
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx)
        a, b, c = tx.create_returns(
            cycle.id or 0,
            [
                NewReturn(indicator_key="A", owner_id="alice"),
                NewReturn(indicator_key="B", owner_id="bob"),
                NewReturn(indicator_key="C", owner_id="alice"),
            ],
            now=NOW,
        )
        tx.submit_return(c.id or 0, 1, ReturnFigure(value=3.0), by="alice", now=LATER)
    with store.transaction() as tx:
        alices = tx.list_returns(owner_id="alice")
        awaiting = tx.list_returns(cycle_id=cycle.id, status=ReturnStatus.AWAITING)
        alice_open = tx.list_returns(
            owner_id="alice", status=[ReturnStatus.AWAITING, ReturnStatus.REJECTED]
        )
        assert tx.find_return(cycle.id or 0, "B") == b
        assert tx.find_return(cycle.id or 0, "Z") is None
    assert [r.indicator_key for r in alices] == ["A", "C"]
    assert [r.indicator_key for r in awaiting] == ["A", "B"]
    assert [r.id for r in alice_open] == [a.id]


def test_submitting_a_return_bumps_its_version_and_keeps_the_figure(store: Store) -> None:
    ret = new_return(store)
    submitted_at = datetime(2026, 10, 2, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    figure = ReturnFigure(
        value=87.5, raw_value="87.5%", commentary="Below target: staff vacancies.", rag=Rag.AMBER
    )
    with store.transaction() as tx:
        updated = tx.submit_return(ret.id or 0, 1, figure, by="officer-1", now=submitted_at)
    with store.transaction() as tx:
        stored = tx.get_return(ret.id or 0)
    assert updated.version == 2
    assert stored == updated
    assert stored.status == ReturnStatus.RETURNED and stored.rag == Rag.AMBER
    assert stored.value == 87.5 and stored.commentary == "Below target: staff vacancies."
    assert stored.submitted_by == "officer-1" and stored.submitted_at == submitted_at
    assert stored.submitted_at is not None and stored.submitted_at.tzinfo == UTC
    assert stored.updated_at == submitted_at


def test_a_return_moves_only_along_the_lifecycle(store: Store) -> None:
    ret = new_return(store)
    rid = ret.id or 0
    with store.transaction() as tx:
        # Not returned yet: it cannot be approved, sent back or reopened.
        for attempt in (
            lambda: tx.approve_return(rid, 1, by="sup", now=NOW),
            lambda: tx.send_back_return(rid, 1, by="sup", reason="x", now=NOW),
            lambda: tx.reopen_return(rid, 1, by="perf", reason="x", now=NOW),
        ):
            with pytest.raises(TransitionRefused, match="awaiting"):
                attempt()
        assert tx.get_return(rid).version == 1
        tx.submit_return(rid, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
        back = tx.send_back_return(rid, 2, by="sup", reason="Check it", now=LATER)
        assert (back.status, back.sent_back_by, back.sent_back_reason) == (
            ReturnStatus.REJECTED,
            "sup",
            "Check it",
        )
        tx.submit_return(rid, 3, ReturnFigure(value=2.0), by="officer-1", now=LATER)
        approved = tx.approve_return(rid, 4, by="sup", now=LATER)
        assert (approved.status, approved.version, approved.decided_by) == ("approved", 5, "sup")
        with pytest.raises(TransitionRefused):
            tx.submit_return(rid, 5, ReturnFigure(value=3.0), by="officer-1", now=LATER)
        reopened = tx.reopen_return(rid, 5, by="perf", reason="Typo", now=LATER)
        assert (reopened.status, reopened.sent_back_reason) == (ReturnStatus.REJECTED, "Typo")


def test_closing_misses_only_the_returns_still_with_their_owners(store: Store) -> None:
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx)
        a, b, c = tx.create_returns(
            cycle.id or 0, [NewReturn(indicator_key=k) for k in "ABC"], now=NOW
        )
        tx.submit_return(b.id or 0, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
        tx.submit_return(c.id or 0, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
        tx.send_back_return(c.id or 0, 2, by="sup", reason="x", now=NOW)
        missed = tx.miss_returns(cycle.id or 0, now=LATER)
        again = tx.miss_returns(cycle.id or 0, now=LATER)
        # A missed figure can still be returned late (if the flow takes it).
        late = tx.submit_return(a.id or 0, 2, ReturnFigure(value=5.0), by="officer-1", now=LATER)
    assert [(r.indicator_key, r.status, r.version) for r in missed] == [
        ("A", ReturnStatus.MISSED, 2),
        ("C", ReturnStatus.MISSED, 4),
    ]
    assert again == []
    assert late.status is ReturnStatus.RETURNED


def test_a_stale_version_raises_and_changes_nothing(store: Store) -> None:
    ret = new_return(store)
    with store.transaction() as tx:
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
        tx.send_back_return(ret.id or 0, 2, by="sup", reason="Check", now=NOW)
    with store.transaction() as tx, pytest.raises(StaleVersion) as raised:
        # A second click on the first card still carries version 1.
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=2.0), by="officer-1", now=LATER)
    with store.transaction() as tx:
        current = tx.get_return(ret.id or 0)
    assert raised.value.current.version == 3
    assert (current.version, current.value, current.updated_at) == (3, 1.0, NOW)


def test_a_figure_refuses_unknown_fields_and_an_unknown_return_is_not_found(
    store: Store,
) -> None:
    ret = new_return(store)
    with pytest.raises(ValueError, match="colour"):
        ReturnFigure.model_validate({"value": 1.0, "colour": "red"})
    with store.transaction() as tx:
        with pytest.raises(NotFound):
            tx.submit_return(404, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
        assert tx.get_return(ret.id or 0).version == 1


def test_history_lists_approved_values_by_period(store: Store) -> None:
    with store.transaction() as tx:
        for period, value, status in [
            ("2026-07", 80.0, ReturnStatus.APPROVED),
            ("2026-08", 85.0, ReturnStatus.REJECTED),
            ("2026-06", 70.0, ReturnStatus.APPROVED),
            ("2026-09", 90.0, ReturnStatus.APPROVED),
        ]:
            cycle, _ = open_cycle(tx, period)
            (ret,) = tx.create_returns(cycle.id or 0, [NewReturn(indicator_key="A")], now=NOW)
            figure = ReturnFigure(value=value, rag=Rag.GREEN)
            tx.submit_return(ret.id or 0, 1, figure, by="officer-1", now=NOW)
            if status is ReturnStatus.APPROVED:
                tx.approve_return(ret.id or 0, 2, by="sup", now=NOW)
            else:
                tx.send_back_return(ret.id or 0, 2, by="sup", reason="x", now=NOW)
    with store.transaction() as tx:
        everything = tx.history("A", MONTHLY)
        before_sept = tx.history("A", MONTHLY, before=date(2026, 9, 1))
    assert [(p.period, p.value) for p in everything] == [
        ("2026-06", 70.0),
        ("2026-07", 80.0),
        ("2026-09", 90.0),
    ]
    assert [p.period for p in before_sept] == ["2026-06", "2026-07"]
    assert everything[0].rag == Rag.GREEN


def _approve(store: Store, period: str, value: float, key: str = "A") -> int:
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx, period)
        (ret,) = tx.create_returns(cycle.id or 0, [NewReturn(indicator_key=key)], now=NOW)
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=value), by="officer-1", now=NOW)
        tx.approve_return(ret.id or 0, 2, by="sup", now=NOW)
    return ret.id or 0


def test_history_starts_with_imported_values_and_approved_returns_take_over(
    store: Store,
) -> None:
    source = "import:coventry-2025-26.csv"
    with store.transaction() as tx:
        for month, value in [(6, 60.0), (7, 70.0), (8, 75.0)]:
            tx.put_history(
                "A",
                frequency=MONTHLY,
                period=f"2026-0{month}",
                period_start=date(2026, month, 1),
                value=value,
                source=source,
                now=NOW,
            )
        tx.put_history(
            "B",
            frequency=MONTHLY,
            period="2026-05",
            period_start=date(2026, 5, 1),
            value=1,
            source=source,
            now=NOW,
        )
    august = _approve(store, "2026-08", 80.0)  # the council's approved figure wins
    september = _approve(store, "2026-09", 90.0)
    with store.transaction() as tx:
        points = tx.history("A", MONTHLY)
        before_aug = tx.history("A", MONTHLY, before=date(2026, 8, 1))
        quarterly = tx.history("A", Frequency.QUARTERLY)
    assert [(p.period, p.value, p.source, p.return_id) for p in points] == [
        ("2026-06", 60.0, source, None),
        ("2026-07", 70.0, source, None),
        ("2026-08", 80.0, APPROVED_SOURCE, august),
        ("2026-09", 90.0, APPROVED_SOURCE, september),
    ]
    assert [p.period for p in before_aug] == ["2026-06", "2026-07"]
    assert quarterly == []  # the same id at another frequency is another series


def test_history_is_per_indicator_so_a_move_to_another_flow_keeps_its_past(
    store: Store,
) -> None:
    with store.transaction() as tx:
        tx.put_history(
            "A",
            frequency=MONTHLY,
            period="2026-06",
            period_start=date(2026, 6, 1),
            value=60.0,
            source="import:pentana.csv",
            note="from the old system",
            now=NOW,
        )
        cycle, _ = open_cycle(tx, "2026-07")  # approved in the flow it used to be in
        (ret,) = tx.create_returns(cycle.id or 0, [NewReturn(indicator_key="A")], now=NOW)
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=70.0), by="officer-1", now=NOW)
        tx.approve_return(ret.id or 0, 2, by="sup", now=NOW)
        moved, _ = open_cycle(tx, "2026-08", flow="another-flow")  # and now in this one
        (again,) = tx.create_returns(moved.id or 0, [NewReturn(indicator_key="A")], now=NOW)
        tx.submit_return(again.id or 0, 1, ReturnFigure(value=80.0), by="officer-1", now=NOW)
        tx.approve_return(again.id or 0, 2, by="sup", now=NOW)
    with store.transaction() as tx:
        points = tx.history("A", MONTHLY)
    assert [(p.period, p.value) for p in points] == [
        ("2026-06", 60.0),
        ("2026-07", 70.0),
        ("2026-08", 80.0),
    ]
    assert points[0].note == "from the old system"


def test_importing_a_period_again_replaces_its_value(store: Store) -> None:
    with store.transaction() as tx:
        for value, source in [(61.0, "import:first.csv"), (62.5, "import:corrected.csv")]:
            tx.put_history(
                "A",
                frequency=MONTHLY,
                period="2026-06",
                period_start=date(2026, 6, 1),
                value=value,
                source=source,
                now=NOW,
            )
        (point,) = tx.history("A", MONTHLY)
    assert (point.value, point.source) == (62.5, "import:corrected.csv")


@pytest.mark.parametrize(
    ("value", "source", "message"),
    [
        (float("nan"), "import:x.csv", "finite number"),
        (float("inf"), "import:x.csv", "finite number"),
        (True, "import:x.csv", "finite number"),
        (1.0, "approved", "kept for approved returns"),
        (1.0, " ", "source"),
    ],
)
def test_imported_history_refuses_values_that_would_mislead(
    store: Store, value: float, source: str, message: str
) -> None:
    with store.transaction() as tx, pytest.raises(ValueError, match=message):
        tx.put_history(
            "A",
            frequency=MONTHLY,
            period="2026-06",
            period_start=date(2026, 6, 1),
            value=value,
            source=source,
            now=NOW,
        )


# --- approvals -------------------------------------------------------------------------


def _chain(store: Store) -> tuple[int, list[int]]:
    ret = new_return(store)
    with store.transaction() as tx:
        steps = tx.create_steps(
            ret.id or 0,
            2,
            [
                StepSpec(name="Supervisor", approvers=["sup-1", "sup-2"]),
                StepSpec(name="Head of service", approvers=["hos-1"]),
            ],
            now=NOW,
        )
    return ret.id or 0, [s.id or 0 for s in steps]


def test_the_second_decision_loses_and_is_told_who_decided(store: Store) -> None:
    _, (step_id, _) = _chain(store)
    with store.transaction() as tx:
        tx.ask_step(step_id, 1, at=NOW)
        won = tx.approve_step(step_id, 2, by="sup-1", at=NOW)
    with store.transaction() as tx, pytest.raises(AlreadyDecided) as lost:
        tx.reject_step(step_id, 2, by="sup-2", at=LATER, reason="Wrong")
    with store.transaction() as tx:
        stored = tx.get_step(step_id)
    assert won.status == StepStatus.APPROVED
    assert lost.value.step.decided_by == "sup-1" and lost.value.step.decided_at == NOW
    assert "sup-1" in str(lost.value)
    assert (stored.status, stored.decided_by, stored.reason) == (StepStatus.APPROVED, "sup-1", None)


def test_concurrent_approvers_one_wins(backend: Backend) -> None:
    stores = [backend.new_store() for _ in range(3)]
    _, (step_id, _) = _chain(stores[0])
    with stores[0].transaction() as tx:
        tx.ask_step(step_id, 1, at=NOW)

    def decide(i: int) -> str:
        with stores[i].transaction() as tx:
            return tx.approve_step(step_id, 2, by=f"sup-{i}", at=NOW).decided_by or ""

    outcomes = race(len(stores), decide)
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, AlreadyDecided)]
    assert len(winners) == 1 and len(losers) == len(stores) - 1, outcomes
    assert all(lost.step.decided_by == winners[0] for lost in losers)


def test_steps_are_created_once_per_return_version(store: Store) -> None:
    ret_id, step_ids = _chain(store)
    with store.transaction() as tx:
        again = tx.create_steps(ret_id, 2, [StepSpec(name="Other", approvers=["x"])], now=LATER)
        resubmitted = tx.create_steps(
            ret_id, 4, [StepSpec(name="Supervisor", approvers=["sup-1"])], now=LATER
        )
        latest = tx.list_steps(ret_id)
        first_chain = tx.list_steps(ret_id, 2)
    assert [s.id for s in again] == step_ids  # a second call returns the first chain
    assert [s.name for s in first_chain] == ["Supervisor", "Head of service"]
    assert [s.id for s in latest] == [s.id for s in resubmitted]
    assert [(s.return_version, s.step_index) for s in latest] == [(4, 0)]


def test_an_escalated_step_can_still_be_decided_but_a_decided_one_cannot_escalate(
    store: Store,
) -> None:
    _, (first, second) = _chain(store)
    with store.transaction() as tx:
        tx.ask_step(first, 1, at=NOW)
        escalated = tx.escalate_step(first, 2, ["deputy-1"], at=NOW)
        decided = tx.approve_step(first, 3, by="deputy-1", at=LATER)
        tx.skip_step(second, 1, by="system", at=LATER, reason="not needed")
        with pytest.raises(AlreadyDecided):
            tx.escalate_step(second, 2, ["deputy-2"], at=LATER)
        with pytest.raises(AlreadyDecided):
            tx.ask_step(first, 4, at=LATER)
    assert (escalated.status, escalated.approvers) == (StepStatus.ESCALATED, ["deputy-1"])
    assert decided.status == StepStatus.APPROVED


def test_only_the_asked_step_can_be_decided(store: Store) -> None:
    _, (first, second) = _chain(store)
    with store.transaction() as tx:
        # Every step starts pending: nobody may decide one before it is asked.
        with pytest.raises(TransitionRefused, match="pending") as refused:
            tx.approve_step(second, 1, by="head-1", at=NOW)
        assert not isinstance(refused.value, AlreadyDecided)
        with pytest.raises(TransitionRefused):
            tx.reject_step(first, 1, by="sup-1", at=NOW, reason="x")
        asked = tx.ask_step(first, 1, at=NOW)
        with pytest.raises(TransitionRefused, match="version"):
            tx.approve_step(first, 1, by="sup-1", at=NOW)  # read before it was asked
        with pytest.raises(TransitionRefused):
            tx.skip_step(first, 2, by="system", at=NOW, reason="the current step is not skipped")
        assert [s.status for s in tx.list_steps(tx.get_step(first).return_id)] == [
            StepStatus.ASKED,
            StepStatus.PENDING,
        ]
    assert (asked.status, asked.version) == (StepStatus.ASKED, 2)


def test_open_steps_are_listed_by_approver_and_return(store: Store) -> None:
    ret_id, (first, second) = _chain(store)
    other = new_return(store, key="CP02")
    with store.transaction() as tx:
        (other_step,) = tx.create_steps(
            other.id or 0, 2, [StepSpec(name="Supervisor", approvers=["sup-1"])], now=NOW
        )
        tx.ask_step(other_step.id or 0, 1, at=NOW)
        tx.ask_step(first, 1, at=NOW)
        tx.approve_step(first, 2, by="sup-1", at=NOW)
        tx.ask_step(second, 1, at=NOW)
        tx.escalate_step(second, 2, ["deputy-1", "sup-1"], at=NOW)
    with store.transaction() as tx:
        everything = tx.list_open_steps()
        for_sup_1 = tx.list_open_steps(approver="sup-1")
        for_sup_2 = tx.list_open_steps(approver="sup-2")
        of_first_return = tx.list_open_steps(return_ids=[ret_id])
        sup_1_on_other = tx.list_open_steps(approver="sup-1", return_ids={other.id or 0})
        of_no_return = tx.list_open_steps(return_ids=[])
    assert [s.id for s in everything] == [second, other_step.id]
    assert [s.id for s in for_sup_1] == [second, other_step.id]
    assert for_sup_2 == []  # the step they could act on is decided
    assert [(s.id, s.status) for s in of_first_return] == [(second, StepStatus.ESCALATED)]
    assert [s.id for s in sup_1_on_other] == [other_step.id]
    assert of_no_return == []


# --- timers ----------------------------------------------------------------------------


def test_a_timer_is_scheduled_once_per_dedup_key(store: Store) -> None:
    with store.transaction() as tx:
        timer, created = tx.schedule_timer(
            "reminder",
            due_at=NOW,
            dedup_key="reminder:1:1",
            subject_type="return",
            subject_id=1,
            payload={"n": 1},
            now=NOW,
        )
        same, created_again = tx.schedule_timer(
            "reminder",
            due_at=LATER,
            dedup_key="reminder:1:1",
            subject_type="return",
            subject_id=1,
            payload={"n": 2},
            now=LATER,
        )
    assert (created, created_again) == (True, False)
    assert same == timer and same.payload == {"n": 1} and same.due_at == NOW


def test_due_timers_are_claimed_once_then_again_only_after_the_lease(store: Store) -> None:
    with store.transaction() as tx:
        for i, due in enumerate([NOW, NOW - timedelta(minutes=5), LATER]):
            tx.schedule_timer(
                "reminder", due_at=due, dedup_key=f"t{i}", subject_type="return", now=NOW
            )
    first = store.claim_due_timers(NOW, 10, "worker-a", lease=timedelta(minutes=10))
    nothing = store.claim_due_timers(NOW + timedelta(minutes=9), 10, "worker-b")
    reclaimed = store.claim_due_timers(NOW + timedelta(minutes=10), 1, "worker-b")
    assert [t.dedup_key for t in first] == ["t1", "t0"]  # soonest first, future one left
    assert all(t.status == TimerStatus.CLAIMED and t.claimed_by == "worker-a" for t in first)
    assert nothing == []
    assert [(t.dedup_key, t.claimed_by) for t in reclaimed] == [("t1", "worker-b")]


def test_completing_a_timer_succeeds_once_and_cancelled_timers_never_fire(store: Store) -> None:
    with store.transaction() as tx:
        a, _ = tx.schedule_timer(
            "reminder", due_at=NOW, dedup_key="a", subject_type="return", subject_id=7, now=NOW
        )
        tx.schedule_timer(
            "escalation", due_at=NOW, dedup_key="b", subject_type="return", subject_id=7, now=NOW
        )
        tx.schedule_timer(
            "reminder", due_at=NOW, dedup_key="c", subject_type="return", subject_id=8, now=NOW
        )
    (claimed,) = store.claim_due_timers(NOW, 1, "w")
    with store.transaction() as tx:
        assert tx.complete_timer(claimed.id or 0, now=NOW) is True
        assert tx.complete_timer(claimed.id or 0, now=NOW) is False
        assert tx.cancel_timers("return", 7, now=NOW) == 1  # "a" is done already
        with pytest.raises(NotFound):
            tx.complete_timer(404, now=NOW)
    due_now = store.claim_due_timers(LATER, 10, "w")
    with store.transaction() as tx:
        statuses = {t.dedup_key: t.status for t in tx.list_timers()}
    assert claimed.id == a.id
    assert [t.dedup_key for t in due_now] == ["c"]
    assert statuses == {"a": "done", "b": "cancelled", "c": "claimed"}


def test_timers_can_be_cancelled_by_kind(store: Store) -> None:
    with store.transaction() as tx:
        for kind in ("reminder", "escalation"):
            tx.schedule_timer(
                kind, due_at=LATER, dedup_key=kind, subject_type="cycle", subject_id=1, now=NOW
            )
        assert tx.cancel_timers("cycle", 1, kinds={"reminder"}, now=NOW) == 1
        live = tx.list_timers(subject_type="cycle", subject_id=1, status=TimerStatus.PENDING)
    assert [t.kind for t in live] == ["escalation"]


# --- outbox ----------------------------------------------------------------------------


def _enqueue(store: Store, count: int, budget: str = "bot", at: datetime = NOW) -> list[int]:
    with store.transaction() as tx:
        return [
            tx.enqueue(
                "send_card", budget=budget, payload={"n": i}, dedup_key=f"{budget}:{i}", now=at
            )[0].id
            or 0
            for i in range(count)
        ]


def test_enqueueing_an_existing_dedup_key_changes_nothing(store: Store) -> None:
    with store.transaction() as tx:
        first, created = tx.enqueue(
            "send_card", budget="bot", payload={"to": "a"}, dedup_key="card:1", now=NOW
        )
    with store.transaction() as tx:
        again, created_again = tx.enqueue(
            "send_mail", budget="mailbox:x", payload={"to": "b"}, dedup_key="card:1", now=LATER
        )
        rows = tx.list_outbox()
    assert (created, created_again) == (True, False)
    assert again == first and again.payload == {"to": "a"}
    assert len(rows) == 1


def test_claiming_the_outbox_takes_due_rows_oldest_first_and_counts_attempts(
    store: Store,
) -> None:
    ids = _enqueue(store, 3)
    sharepoint = _enqueue(store, 1, budget="sharepoint")
    with store.transaction() as tx:
        tx.enqueue(
            "refresh", budget="powerbi:ds", payload={}, dedup_key="later", now=NOW, not_before=LATER
        )
    day = timedelta(days=1)
    only_bot = store.claim_outbox(NOW, 2, "w1", budgets=["bot"], lease=day)
    rest = store.claim_outbox(NOW, 10, "w2", lease=day)
    assert [m.id for m in only_bot] == ids[:2]
    assert [m.id for m in rest] == [ids[2], *sharepoint]  # the refresh is not due yet
    assert all(m.status == OutboxStatus.IN_FLIGHT and m.attempts == 1 for m in only_bot + rest)
    assert [m.kind for m in store.claim_outbox(LATER, 10, "w3")] == ["refresh"]


def test_retry_later_and_park(store: Store) -> None:
    first, second, third = _enqueue(store, 3)
    store.claim_outbox(NOW, 3, "w")
    assert store.mark_done(first, now=NOW) is True
    assert store.mark_done(first, now=NOW) is False  # no longer in flight
    assert store.retry_later(second, LATER, "429 Too Many Requests", now=NOW) is True
    assert store.park(third, "400 Bad Request: no such list", now=NOW) is True
    too_early = store.claim_outbox(LATER - timedelta(seconds=1), 10, "w")
    retried = store.claim_outbox(LATER, 10, "w")
    with store.transaction() as tx:
        counts = tx.outbox_counts()
        (parked,) = tx.list_outbox(status=OutboxStatus.PARKED)
    assert too_early == []
    assert [(m.id, m.attempts, m.last_error) for m in retried] == [
        (second, 2, "429 Too Many Requests")
    ]
    assert (parked.id, parked.last_error) == (third, "400 Bad Request: no such list")
    assert counts == {
        OutboxStatus.PENDING: 0,
        OutboxStatus.IN_FLIGHT: 1,
        OutboxStatus.DONE: 1,
        OutboxStatus.PARKED: 1,
    }
    with pytest.raises(NotFound):
        store.park(404, "x", now=NOW)


def test_a_row_whose_sender_died_is_claimed_again_after_its_lease(store: Store) -> None:
    (only,) = _enqueue(store, 1)
    store.claim_outbox(NOW, 1, "crashed", lease=timedelta(minutes=1))
    assert store.claim_outbox(NOW + timedelta(seconds=59), 1, "w") == []
    (again,) = store.claim_outbox(NOW + timedelta(minutes=1), 1, "w")
    assert (again.id, again.claimed_by, again.attempts) == (only, "w", 2)


def test_concurrent_workers_claim_disjoint_rows(backend: Backend) -> None:
    stores = [backend.new_store() for _ in range(4)]
    ids = _enqueue(stores[0], 40)
    outcomes = race(len(stores), lambda i: [m.id for m in stores[i].claim_outbox(NOW, 15, f"w{i}")])
    claimed = [ident for o in outcomes if isinstance(o, list) for ident in o]
    assert all(isinstance(o, list) for o in outcomes), outcomes
    assert sorted(claimed) == sorted(ids)  # every row once: none twice, none lost


# --- audit, conversations, indicators, targets --------------------------------------------


def test_audit_lists_events_by_time_then_in_append_order(store: Store) -> None:
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx)
        cid = cycle.id
        tx.audit(
            "return.approved",
            at=LATER,
            actor="hos-1",
            subject_type="return",
            subject_id=1,
            cycle_id=cid,
            before={"status": "returned"},
            after={"status": "approved"},
        )
        tx.audit(
            "cycle.opened",
            at=NOW,
            actor="scheduler",
            subject_type="cycle",
            subject_id=cid or 0,
            cycle_id=cid,
        )
        tx.audit(
            "return.submitted",
            at=NOW,
            actor="officer-1",
            subject_type="return",
            subject_id=1,
            cycle_id=cid,
        )
        tx.audit("register.synced", at=NOW, actor="sync", subject_type="flow", subject_id=FLOW)
    with store.transaction() as tx:
        in_cycle = tx.list_audit(cycle_id=cid)
        of_return = tx.list_audit(subject_type="return", subject_id=1)
    assert [e.action for e in in_cycle] == ["cycle.opened", "return.submitted", "return.approved"]
    assert [e.action for e in of_return] == ["return.submitted", "return.approved"]
    assert of_return[1].before == {"status": "returned"}
    assert of_return[1].after == {"status": "approved"}


def test_conversation_refs_are_remembered_and_replaced(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_conversation_ref("u1", conversation_id="a:1", service_url="https://s/", now=NOW)
        tx.put_conversation_ref("u1", conversation_id="a:2", service_url="https://t/", now=LATER)
        ref = tx.find_conversation_ref("u1")
        assert tx.find_conversation_ref("nobody") is None
    assert ref is not None
    assert (ref.conversation_id, ref.service_url, ref.updated_at) == ("a:2", "https://t/", LATER)


def test_register_snapshot_reports_added_changed_and_retired(store: Store) -> None:
    with store.transaction() as tx:
        first = tx.upsert_indicators(FLOW, [_spec("A"), _spec("B"), _spec("C")], now=NOW)
        tx.upsert_indicators("other-flow", [_spec("A"), _spec("C")], now=NOW)
    with store.transaction() as tx:
        second = tx.upsert_indicators(
            FLOW, [_spec("A"), _spec("B", target_value=95.0), _spec("D")], now=LATER
        )
        found = {key: tx.find_indicator(FLOW, key) for key in "ABCDE"}
        other = tx.find_indicator("other-flow", "C")
    assert first.added == ["A", "B", "C"] and first.changed == first.retired == []
    assert (second.added, second.changed, second.retired) == (["D"], ["B"], ["C"])
    active = {key: i.active for key, i in found.items() if i is not None}
    assert active == {"A": True, "B": True, "C": False, "D": True}  # retired C is kept
    assert other is not None and other.active  # one flow's register never retires another's
    b = found["B"]
    assert b is not None and b.target_value == 95.0 and b.unit == Unit.PERCENTAGE
    assert b.raw == {"ID": "B", "Target": "90%"} and b.snapshot_at == LATER


def test_next_years_target_does_not_change_last_years(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_target(
            FLOW,
            "A",
            applies_from="2025/26",
            applies_from_start=date(2025, 4, 1),
            value=80.0,
            tolerance_kind="absolute",
            tolerance_amount=5.0,
            now=NOW,
        )
        tx.put_target(
            FLOW,
            "A",
            applies_from="2026/27",
            applies_from_start=date(2026, 4, 1),
            value=85.0,
            now=NOW,
        )
    with store.transaction() as tx:
        # Next year's target is revised; last year's stays as it was.
        tx.put_target(
            FLOW,
            "A",
            applies_from="2026/27",
            applies_from_start=date(2026, 4, 1),
            value=88.0,
            now=LATER,
        )
        last_year = tx.target_for(FLOW, "A", date(2026, 1, 1))
        this_year = tx.target_for(FLOW, "A", date(2026, 9, 1))
        before_any = tx.target_for(FLOW, "A", date(2024, 4, 1))
    assert last_year is not None and (last_year.value, last_year.tolerance_amount) == (80.0, 5.0)
    assert this_year is not None and this_year.value == 88.0
    assert before_any is None


# --- card deliveries -----------------------------------------------------------------------


def _deliver(store: Store, card_id: str, user: str, step_id: int, **ids: str) -> None:
    with store.transaction() as tx:
        tx.record_delivery(
            card_id,
            user_id=user,
            channel=CardChannel.TEAMS,
            subject_type="step",
            subject_id=step_id,
            now=NOW,
            **ids,
        )


def test_a_group_step_finds_its_members_cards_to_replace_them_once(store: Store) -> None:
    for user in ("sup-1", "sup-2"):
        _deliver(
            store,
            f"step:7:{user}",
            user,
            7,
            conversation_id=f"a:{user}",
            activity_id="1",
            service_url="https://smba/",
        )
    _deliver(store, "step:8:sup-1", "sup-1", 8)
    with store.transaction() as tx:
        tx.record_delivery(
            "return:3:officer-1",
            user_id="officer-1",
            channel=CardChannel.EMAIL,
            subject_type="return",
            subject_id=3,
            message_id="<m1@council>",
            now=LATER,
        )
    with store.transaction() as tx:
        group = tx.list_deliveries(subject_type="step", subject_id=7)
        of_sup_1 = tx.list_deliveries(user_id="sup-1")
        mail = tx.find_delivery("return:3:officer-1")
        first = tx.mark_replaced("step:7:sup-2", now=LATER)
        again = tx.mark_replaced("step:7:sup-2", now=LATER + timedelta(minutes=1))
        replaced = tx.find_delivery("step:7:sup-2")
        assert tx.find_delivery("nothing") is None
        with pytest.raises(NotFound):
            tx.mark_replaced("nothing", now=LATER)
    assert [(d.user_id, d.conversation_id) for d in group] == [
        ("sup-1", "a:sup-1"),
        ("sup-2", "a:sup-2"),
    ]
    assert [d.card_id for d in of_sup_1] == ["step:7:sup-1", "step:8:sup-1"]
    assert mail is not None and (mail.channel, mail.message_id) == ("email", "<m1@council>")
    assert (first, again) == (True, False)
    assert replaced is not None and replaced.replaced_at == LATER


def test_a_resent_card_keeps_one_delivery_with_the_latest_ids(store: Store) -> None:
    _deliver(
        store, "c1", "sup-1", 7, conversation_id="a:1", activity_id="1", service_url="https://s/"
    )
    with store.transaction() as tx:
        resent = tx.record_delivery(
            "c1",
            user_id="sup-1",
            channel=CardChannel.TEAMS,
            subject_type="step",
            subject_id=7,
            conversation_id="a:1",
            activity_id="2",
            service_url="https://s/",
            now=LATER,
        )
        (only,) = tx.list_deliveries()
    assert only == resent
    assert (only.activity_id, only.delivered_at, only.replaced_at) == ("2", LATER, None)


def test_a_card_id_cannot_be_recorded_for_someone_else(store: Store) -> None:
    _deliver(store, "c1", "sup-1", 7, activity_id="1")
    with store.transaction() as tx:
        with pytest.raises(ValueError, match="delivered to sup-1"):
            tx.record_delivery(
                "c1",
                user_id="sup-2",
                channel=CardChannel.TEAMS,
                subject_type="step",
                subject_id=7,
                now=NOW,
            )
        with pytest.raises(ValueError, match="channel"):
            tx.record_delivery(
                "c2",
                user_id="sup-1",
                channel="fax",  # type: ignore[arg-type]  # what a bad caller sends
                subject_type="step",
                subject_id=7,
                now=NOW,
            )
        stored = tx.find_delivery("c1")
    assert stored is not None and (stored.user_id, stored.activity_id) == ("sup-1", "1")


def test_racing_retries_of_one_card_leave_one_delivery(backend: Backend) -> None:
    stores = [backend.new_store() for _ in range(4)]

    def deliver(i: int) -> str | None:
        with stores[i].transaction() as tx:
            return tx.record_delivery(
                "c1",
                user_id="sup-1",
                channel=CardChannel.TEAMS,
                subject_type="step",
                subject_id=7,
                activity_id=str(i),
                now=NOW,
            ).activity_id

    outcomes = race(len(stores), deliver)
    assert all(isinstance(o, str) for o in outcomes), outcomes
    with stores[0].transaction() as tx:
        (only,) = tx.list_deliveries()
    assert only.activity_id in outcomes


# --- people ---------------------------------------------------------------------------------


def _person(ident: str, email: str, name: str = "", manager: str | None = None) -> PersonSpec:
    return PersonSpec(id=ident, name=name or ident.title(), email=email, line_manager_id=manager)


def test_people_are_found_by_id_or_by_email_in_any_case(store: Store) -> None:
    with store.transaction() as tx:
        added = tx.upsert_people(
            [
                _person("aa-1", " Alice.Smith@Coventry.gov.uk ", "Alice Smith", manager="bb-2"),
                _person("bb-2", "bob@coventry.gov.uk", "bob Jones"),
                PersonSpec(
                    id="cc-3", name="Carol", email="carol@coventry.gov.uk", line_manager_id=""
                ),
            ],
            now=NOW,
        )
    with store.transaction() as tx:
        by_id = tx.find_person("aa-1")
        by_email = tx.find_person("ALICE.SMITH@coventry.GOV.UK")
        people = tx.list_people()
        assert tx.find_person("nobody@coventry.gov.uk") is None
        assert tx.find_person("zz-9") is None
    assert added == 3
    assert by_id is not None and by_id == by_email
    assert (by_id.name, by_id.email, by_id.line_manager_id) == (
        "Alice Smith",
        "alice.smith@coventry.gov.uk",
        "bb-2",
    )
    assert [p.name for p in people] == ["Alice Smith", "bob Jones", "Carol"]
    assert people[2].line_manager_id is None and people[0].updated_at == NOW


def test_syncing_people_again_updates_them_and_counts_only_changes(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_people([_person("aa-1", "a@c.gov.uk"), _person("bb-2", "b@c.gov.uk")], now=NOW)
    with store.transaction() as tx:
        changed = tx.upsert_people(
            [_person("aa-1", "a@c.gov.uk"), _person("bb-2", "b@c.gov.uk", manager="aa-1")],
            now=LATER,
        )
        tx.upsert_people([_person("cc-3", "c@c.gov.uk")], now=LATER)  # another flow's people
        people = {p.id: p for p in tx.list_people()}
    assert changed == 1
    assert set(people) == {"aa-1", "bb-2", "cc-3"}  # a sync never drops people it omits
    assert people["bb-2"].line_manager_id == "aa-1" and people["aa-1"].updated_at == LATER


def test_an_email_that_moves_to_another_id_follows_the_directory(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_people(
            [
                _person("old-1", "jo@c.gov.uk", "Jo (old account)"),
                _person("aa-1", "a@c.gov.uk"),
                _person("bb-2", "b@c.gov.uk"),
            ],
            now=NOW,
        )
    with store.transaction() as tx:
        # Jo's account was re-created; Alice and Bob swapped mailboxes, in one sync.
        tx.upsert_people(
            [
                _person("new-1", "Jo@c.gov.uk", "Jo"),
                _person("aa-1", "b@c.gov.uk"),
                _person("bb-2", "a@c.gov.uk"),
            ],
            now=LATER,
        )
    with store.transaction() as tx:
        jo = tx.find_person("jo@c.gov.uk")
        old = tx.find_person("old-1")
        a = tx.find_person("a@c.gov.uk")
        everyone = [p.id for p in tx.list_people()]
    assert jo is not None and (jo.id, jo.name) == ("new-1", "Jo")
    assert old is None
    assert a is not None and a.id == "bb-2"
    assert sorted(everyone) == ["aa-1", "bb-2", "new-1"]


@pytest.mark.parametrize(
    ("people", "message"),
    [
        ([{"id": "a", "name": "A", "email": "a@c"}] * 2, "person 'a' appears more than once"),
        (
            [{"id": "a", "name": "A", "email": "x@c"}, {"id": "b", "name": "B", "email": "X@c"}],
            "e-mail 'x@c' appears more than once",
        ),
    ],
)
def test_a_snapshot_naming_someone_twice_is_refused(
    store: Store, people: list[dict[str, str]], message: str
) -> None:
    specs = [PersonSpec.model_validate(p) for p in people]
    with store.transaction() as tx:
        with pytest.raises(ValueError, match=message):
            tx.upsert_people(specs, now=NOW)
        assert tx.list_people() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "alice.coventry.gov.uk"}, "not an e-mail address"),
        ({"email": "alice smith@c.gov.uk"}, "not an e-mail address"),
        ({"name": "  "}, "name"),
        ({"id": ""}, "id"),
        ({"line_manager_id": "aa-1"}, "their own line manager"),
    ],
)
def test_a_person_record_that_would_not_resolve_is_refused(
    fields: dict[str, str], message: str
) -> None:
    person = {"id": "aa-1", "name": "Alice", "email": "a@c.gov.uk", **fields}
    with pytest.raises(ValueError, match=message):
        PersonSpec.model_validate(person)


# --- units of work -----------------------------------------------------------------------


def test_a_failed_transaction_leaves_neither_state_nor_outbox_row(store: Store) -> None:
    with pytest.raises(_Boom), store.transaction() as tx:
        open_cycle(tx)
        tx.enqueue("send_card", budget="bot", payload={}, dedup_key="card", now=NOW)
        tx.schedule_timer("reminder", due_at=NOW, dedup_key="r", subject_type="cycle", now=NOW)
        tx.audit("cycle.opened", at=NOW, actor="scheduler", subject_type="cycle", subject_id=1)
        tx.upsert_people([PersonSpec(id="a", name="A", email="a@c.gov.uk")], now=NOW)
        tx.record_delivery(
            "card",
            user_id="a",
            channel=CardChannel.TEAMS,
            subject_type="cycle",
            subject_id=1,
            now=NOW,
        )
        tx.put_history(
            "A",
            frequency=MONTHLY,
            period="p",
            period_start=date(2026, 1, 1),
            value=1,
            source="s",
            now=NOW,
        )
        raise _Boom
    with store.transaction() as tx:
        assert tx.find_cycle(FLOW, PERIOD) is None
        assert tx.list_outbox() == [] and tx.list_timers() == [] and tx.list_audit() == []
        assert tx.list_people() == [] and tx.list_deliveries() == []
        assert tx.history("A", MONTHLY) == []
    with store.transaction() as tx:  # and the keys are free for the retry
        assert tx.enqueue("send_card", budget="bot", payload={}, dedup_key="card", now=NOW)[1]


def test_a_stale_click_rolls_back_the_side_effects_queued_with_it(store: Store) -> None:
    ret = new_return(store)
    with store.transaction() as tx:
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
    with pytest.raises(StaleVersion), store.transaction() as tx:
        tx.enqueue("send_card", budget="bot", payload={}, dedup_key="approver-card", now=NOW)
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=1.0), by="officer-1", now=NOW)
    with store.transaction() as tx:
        assert tx.list_outbox() == []


def test_records_are_snapshots_and_a_finished_transaction_is_closed(store: Store) -> None:
    ret = new_return(store)
    ret.status = ReturnStatus.APPROVED  # changing a record changes nothing stored
    with store.transaction() as tx:
        assert tx.get_return(ret.id or 0).status == ReturnStatus.AWAITING
        with pytest.raises(NestedTransaction), store.transaction():
            pass
    with pytest.raises(RuntimeError, match="ended"):
        tx.get_return(ret.id or 0)


def test_times_come_back_in_utc_and_naive_times_are_refused(store: Store) -> None:
    bst = timezone(timedelta(hours=1))
    with store.transaction() as tx:
        timer, _ = tx.schedule_timer(
            "deadline",
            due_at=datetime(2026, 10, 10, 17, 0, tzinfo=bst),
            dedup_key="d",
            subject_type="cycle",
            now=NOW,
        )
        with pytest.raises(ValueError, match="timezone-aware"):
            tx.enqueue("x", budget="bot", payload={}, dedup_key="n", now=datetime(2026, 1, 1))
    with store.transaction() as tx:
        (stored,) = tx.list_timers()
    assert stored.due_at == datetime(2026, 10, 10, 16, 0, tzinfo=UTC)
    assert stored.due_at.tzinfo == UTC and timer.due_at == stored.due_at


def test_payloads_must_be_json(store: Store) -> None:
    with store.transaction() as tx, pytest.raises(ValueError, match="JSON"):
        tx.enqueue("x", budget="bot", payload={"when": NOW}, dedup_key="k", now=NOW)


# --- the scheduler's lock -------------------------------------------------------------------


def test_only_one_instance_holds_the_scheduler_lock(backend: Backend) -> None:
    a, b = backend.new_store(), backend.new_store()
    key = f"scheduler:{backend.url}"
    assert a.try_advisory_lock(key) is True
    assert a.try_advisory_lock(key) is True  # the holder keeps it
    if backend.name != "postgres":
        assert b.try_advisory_lock(key) is True  # one process: nobody to exclude
        return
    assert b.try_advisory_lock(key) is False
    a.release_advisory_lock(key)
    assert b.try_advisory_lock(key) is True
    assert a.try_advisory_lock(key) is False
    b.close()  # a stopped instance lets the next one take over
    assert a.try_advisory_lock(key) is True
