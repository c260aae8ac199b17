"""The service's morning job keeps the "cannot be routed" e-mail's promise.

Each weekday at the flow's opening time it opens the cycles due and re-reads the
register for every cycle still open, so a row fixed since is asked for that morning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from m365perf.demo import SimulatedClock
from m365perf.domain.periods import Period
from m365perf.engine.context import at_local
from m365perf.flows import Flow, load_flow
from m365perf.plan.timetable import timetable
from m365perf.service import CLOCK_LOCK, Service
from m365perf.settings import load_settings
from m365perf.sync import CsvPeople, CsvRegister, PeopleSource, RegisterSource

ROOT = Path(__file__).resolve().parents[1]
FLOW = load_flow(ROOT / "flows" / "monthly-corporate-kpis.yaml")
HEADER = (
    "IndicatorId,Title,Unit,Frequency,Owner,Supervisor,HeadOfService,Active,"
    "Polarity,Target,Tolerance,TargetFrom,Comparator,Service,Kind,Profile"
)
ROWS = [
    "CP001,Household waste recycled,%,Monthly,ann.lee@contoso.gov.uk,"
    "bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,Yes,,,,,,,,",
    "CP004,Missed bin collections,number,Monthly,eve.hart@contoso.gov.uk,"
    "bob.ray@contoso.gov.uk,cat.doe@contoso.gov.uk,Yes,,,,,,,,",
]
PEOPLE = [
    "id,name,email,line_manager",
    "a1,Ann Lee,ann.lee@contoso.gov.uk,bob.ray@contoso.gov.uk",
    "b2,Bob Ray,bob.ray@contoso.gov.uk,",
    "c3,Cat Doe,cat.doe@contoso.gov.uk,",
    "n5,Nadia Clarke,nadia.clarke@contoso.gov.uk,",
    "b6,Ben Foster,ben.foster@contoso.gov.uk,",
]
EVE = "e7,Eve Hart,eve.hart@contoso.gov.uk,bob.ray@contoso.gov.uk"


@dataclass
class Files:
    register: Path
    directory: Path

    def sources(self, flow: Flow) -> tuple[RegisterSource, PeopleSource]:
        return CsvRegister(self.register), CsvPeople(self.directory)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    found = Files(tmp_path / "register.csv", tmp_path / "people.csv")
    found.register.write_text("\n".join([HEADER, *ROWS]) + "\n")
    found.directory.write_text("\n".join(PEOPLE) + "\n")
    return found


def _service(url: str, files: Files, clock: SimulatedClock, worker: str = "a") -> Service:
    settings = load_settings(
        database_url=url,
        tenant_id="tenant",
        client_id="client",
        client_secret="secret",
        bot_app_id="bot",
    )
    return Service(settings, [FLOW], clock=clock, sources=files.sources, worker_id=worker)


def _opening() -> SimulatedClock:
    opens = timetable(FLOW, Period.parse("2026-10")).opens  # Wednesday 4 November 2026
    return SimulatedClock(at_local(opens, FLOW.schedule.opening_time))


def test_the_morning_job_asks_for_a_row_fixed_since_the_cycle_opened(
    tmp_path: Path, files: Files
) -> None:
    clock = _opening()
    service = _service(f"sqlite:///{tmp_path / 'service.db'}", files, clock)
    try:
        service.morning(FLOW.id)  # opens October; Eve is not in the directory yet
        with service.store.transaction() as tx:
            (cycle,) = tx.list_cycles()
            assert [r.indicator_key for r in tx.list_returns(cycle_id=cycle.id)] == ["CP001"]
            assert [e.action for e in tx.list_audit()] == ["cycle.opened"]  # not re-read yet

        files.directory.write_text("\n".join([*PEOPLE, EVE]) + "\n")
        clock.now += timedelta(days=1)
        service.morning(FLOW.id)
        with service.store.transaction() as tx:
            assert [r.indicator_key for r in tx.list_returns(cycle_id=cycle.id)] == [
                "CP001",
                "CP004",
            ]
            cards = [m.payload["user"]["email"] for m in tx.list_outbox(kind="send_card")]
            assert cards == ["ann.lee@contoso.gov.uk", "eve.hart@contoso.gov.uk"]
            (resynced,) = [e for e in tx.list_audit() if e.action == "cycle.resynced"]
            assert resynced.actor == "scheduler" and (resynced.after or {})["added"] == ["CP004"]

        clock.now += timedelta(days=1)
        assert [r.added for r in service.resync_open_cycles()] == [()]
    finally:
        service.store.close()


@pytest.mark.postgres
def test_only_the_lock_holder_re_reads(postgres_schema_url: str, files: Files) -> None:
    clock = _opening()
    first = _service(postgres_schema_url, files, clock, worker="a")
    second = _service(postgres_schema_url, files, clock, worker="b")
    try:
        assert len(first.open_due_cycles()) == 1  # takes the clock's lock
        files.directory.write_text("\n".join([*PEOPLE, EVE]) + "\n")
        assert second.resync_open_cycles() == []
        assert [r.added for r in first.resync_open_cycles()] == [("CP004",)]
    finally:
        first.store.release_advisory_lock(CLOCK_LOCK)
        first.store.close()
        second.store.close()
