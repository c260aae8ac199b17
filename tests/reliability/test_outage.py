"""Dependencies down: Microsoft 365 unreachable for 10 simulated minutes and PostgreSQL
cut mid-cycle, each behind a TCP proxy this test cuts (the real servers stay up for
everyone else). The service keeps answering, says so on ``/health`` and ``/status``,
parks nothing for the outage and catches up when the dependency returns.

Full size (a longer outage, more simulated minutes)::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability/test_outage.py -q -s
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from dependency_support import delivered, sent_twice
from fastapi.testclient import TestClient
from reliability_support import report, sized
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy, tcp_proxy

from m365perf.demo import SimulatedClock
from m365perf.flows import load_flow
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.service import Service
from m365perf.settings import load_settings
from m365perf.store import OutboxStatus
from m365perf.web.status import gather_status
from m365perf.web.status_page import render_status_html

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "flows" / "annual-statutory-returns.yaml"  # its period opens late: now
STEP = timedelta(seconds=30)

pytestmark = pytest.mark.postgres


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path) as running:
        yield running


@pytest.fixture
def m365(sandbox: RunningSandbox) -> Iterator[TcpProxy]:
    with tcp_proxy("127.0.0.1", urlsplit(sandbox.base_url).port or 80) as proxy:
        yield proxy


@pytest.fixture
def database(postgres_schema_url: str) -> Iterator[tuple[str, TcpProxy]]:
    real = make_url(postgres_schema_url)
    with tcp_proxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
        yield real.set(port=proxy.port).render_as_string(hide_password=False), proxy


def outage_service(
    sandbox: RunningSandbox, m365: TcpProxy, database_url: str, tmp_path: Path
) -> tuple[Service, SimulatedClock]:
    health = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=10).json()
    direct = sandbox.base_url.removeprefix("http://")
    overrides = {
        key: value.replace(direct, f"127.0.0.1:{m365.port}") if isinstance(value, str) else value
        for key, value in health["settings"].items()
    }
    overrides["database_url"] = database_url
    settings = load_settings(**overrides)
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(FLOW, flows / FLOW.name)
    clock = SimulatedClock(datetime.now(UTC))
    service = Service(settings, [load_flow(flows / FLOW.name)], clock=clock, worker_id="outage")
    return service, clock


def outbox(service: Service) -> dict[OutboxStatus, int]:
    with service.store.transaction() as tx:
        return tx.outbox_counts()


def test_microsoft_365_away_for_ten_minutes_then_back_loses_nothing(
    sandbox: RunningSandbox, m365: TcpProxy, database: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    url, _ = database
    service, clock = outage_service(sandbox, m365, url, tmp_path)
    web = TestClient(service.app)
    try:
        assert service.start()  # the register read; the owners' requests queued
        queued = outbox(service)[OutboxStatus.PENDING]
        assert queued > 0

        m365.cut()
        minutes = sized(10, 60)
        for _ in range(int(timedelta(minutes=minutes) / STEP)):
            clock.now += STEP
            service.tick()
            ready = web.get("/health/ready")
            assert ready.status_code == 200  # still takes clicks: they wait in the outbox
            assert web.get("/health/live").status_code == 200
        counts = outbox(service)
        with service.store.transaction() as tx:
            tries = max(m.attempts for m in tx.list_outbox())
        assert tries > 8  # more tries than a failing message gets before it is parked
        assert counts.get(OutboxStatus.PARKED, 0) == 0  # an outage parks nothing
        assert counts.get(OutboxStatus.DONE, 0) == 0
        body = ready.json()
        assert body["status"] == "degraded" and body["microsoft365"] == "unreachable"
        assert body["queue"] == queued
        assert web.get("/health").json()["outage"]["service"] == "Microsoft 365"
        page = render_status_html(
            gather_status(
                service.store, service.engine.flows, now=clock(), outage=service.dispatcher.outage
            )
        )
        assert "Microsoft 365 cannot be reached" in page
        assert "nothing is parked" not in page

        m365.restore()
        back_at, wall = clock.now, time.monotonic()
        while outbox(service).get(OutboxStatus.PENDING, 0):
            clock.now += STEP
            service.tick()
            assert clock.now - back_at < timedelta(minutes=30), "never caught up"
        catch_up = clock.now - back_at
        counts = outbox(service)
        assert counts.get(OutboxStatus.PARKED, 0) == 0
        assert counts.get(OutboxStatus.DONE, 0) == queued
        assert web.get("/health/ready").json()["microsoft365"] == "reachable"
        assert sent_twice(sandbox) == []
        assert len(delivered(sandbox)) == queued  # each waiting message reached its person
        report(
            "outage-m365",
            outage_simulated_min=minutes,
            messages_waiting=queued,
            tries_per_message=tries,
            parked=0,
            catch_up_simulated_s=catch_up.total_seconds(),
            catch_up_wall_s=round(time.monotonic() - wall, 2),
        )
    finally:
        service.store.close()


def test_postgresql_cut_mid_cycle_the_service_answers_and_carries_on(
    sandbox: RunningSandbox, m365: TcpProxy, database: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    url, postgres = database
    service, clock = outage_service(sandbox, m365, url, tmp_path)
    web = TestClient(service.app)
    try:
        service.start()
        queued = outbox(service)[OutboxStatus.PENDING]
        postgres.cut()
        clock.now += STEP
        service._safe_tick()  # what the scheduler runs: logged, not raised
        assert web.get("/health/live").status_code == 200
        assert web.get("/health/ready").status_code == 503
        assert web.get("/health").json() == {"status": "unavailable", "store": "unreachable"}

        postgres.restore()
        for _ in range(20):
            clock.now += STEP
            service._safe_tick()
            if not outbox(service).get(OutboxStatus.PENDING, 0):
                break
        counts = outbox(service)
        assert counts.get(OutboxStatus.DONE, 0) == queued  # every request sent once
        assert counts.get(OutboxStatus.PARKED, 0) == 0
        assert web.get("/health/ready").json()["status"] == "ok"
        assert sent_twice(sandbox) == []
        report("outage-postgres", messages=queued, parked=0)
    finally:
        service.store.close()
