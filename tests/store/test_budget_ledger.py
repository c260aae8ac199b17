"""Budgets in the store: two processes on one database spend from one allowance."""

from __future__ import annotations

import threading

import pytest
from store_helpers import Backend

from m365perf.m365.http import Budgets, Limits
from m365perf.store.budgets import SqlBudgetLedger, store_ledger


class SharedClock:
    """Virtual time both "processes" read; ``sleep`` moves it on at once."""

    def __init__(self) -> None:
        self._now = 1_767_225_600.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds


def ledger_of(backend: Backend) -> SqlBudgetLedger:
    ledger = store_ledger(backend.new_store())
    assert ledger is not None
    return ledger


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock()


def test_a_retry_after_seen_by_one_process_holds_the_other(
    backend: Backend, clock: SharedClock
) -> None:
    first = Budgets(Limits(), clock, ledger=ledger_of(backend))
    second = Budgets(Limits(), clock, ledger=ledger_of(backend))

    first.sharepoint.pause_for(30)

    assert second.sharepoint.paused_s() == pytest.approx(30)
    with second.sharepoint.spend(1):
        pass
    assert clock.sleeps == [pytest.approx(30)]  # it waited the window out, no more


def test_two_processes_together_spend_no_more_than_the_bucket(
    backend: Backend, clock: SharedClock
) -> None:
    limits = Limits(sharepoint_ru_per_minute=60, sharepoint_ru_burst=10)  # 1 RU a second
    first = Budgets(limits, clock, ledger=ledger_of(backend))
    second = Budgets(limits, clock, ledger=ledger_of(backend))

    with first.sharepoint.spend(6):
        pass
    # 3.75 left in the shared bucket (10, less a quarter second kept back for arrival
    # jitter, less the first's 6): the second waits for 2.25 more.
    with second.sharepoint.spend(6):
        pass

    assert clock.sleeps == [pytest.approx(2.25)]


def test_a_process_alone_has_the_whole_budget(backend: Backend, clock: SharedClock) -> None:
    budgets = Budgets(Limits(), clock, ledger=ledger_of(backend))

    with budgets.sharepoint.spend(1250):
        pass

    assert clock.sleeps == []


def test_mailbox_slots_are_shared_and_a_dead_holder_frees_its_slot(
    backend: Backend, clock: SharedClock
) -> None:
    first, second = ledger_of(backend), ledger_of(backend)
    now = clock.time()

    held = [first.acquire("mailbox:kpi@council", 4, now=now, hold_s=60) for _ in range(3)]
    held.append(second.acquire("mailbox:kpi@council", 4, now=now, hold_s=60))

    assert None not in held
    assert second.acquire("mailbox:kpi@council", 4, now=now, hold_s=60) is None
    slot = held[0]
    assert slot is not None
    first.release("mailbox:kpi@council", slot)
    assert second.acquire("mailbox:kpi@council", 4, now=now, hold_s=60) is not None
    # A process that died holding a slot frees it once its hold runs out.
    assert first.acquire("mailbox:kpi@council", 4, now=now + 61, hold_s=60) is not None


def test_a_rate_limit_warning_caps_the_shared_bucket(backend: Backend, clock: SharedClock) -> None:
    limits = Limits(sharepoint_ru_per_minute=60, sharepoint_ru_burst=100)
    first = Budgets(limits, clock, ledger=ledger_of(backend))
    second = Budgets(limits, clock, ledger=ledger_of(backend))

    first.sharepoint.observe_remaining(1)
    with second.sharepoint.spend(3):
        pass

    assert clock.sleeps == [pytest.approx(2.0)]
