"""The running service: one place that wires store, engine, clients, dispatcher and web.

APScheduler is only the clock: it fires each flow's opening trigger and a periodic tick
that picks up due timers and outbox rows. All state lives in the store, so several
``m365perf serve`` processes on one PostgreSQL database work side by side; only the
holder of the advisory lock opens cycles.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from m365perf.dispatch import Dispatcher
from m365perf.domain.periods import Period
from m365perf.engine import CycleOpening, Engine, EngineConfig
from m365perf.engine.context import LONDON, local_day
from m365perf.flows.model import Flow
from m365perf.m365 import M365, clients_from_settings
from m365perf.plan.timetable import collected_period, timetable
from m365perf.settings import Settings
from m365perf.store import CardDelivery, Store, create_store
from m365perf.sync import EntraPeople, SharePointRegister, sync
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier
from m365perf.web.links import LinkSigner

log = logging.getLogger(__name__)

CLOCK_LOCK = "m365perf-clock"


def utc_now() -> datetime:
    return datetime.now(UTC)


def links_from_settings(settings: Settings) -> LinkSigner | None:
    """The web-form link signer, or None (no links sent) when no key is configured."""
    if settings.link_secret is None:
        return None
    return LinkSigner(
        settings.link_secret.get_secret_value(),
        lifetime=timedelta(days=settings.link_lifetime_days),
    )


def engine_config(settings: Settings, links: LinkSigner | None = None) -> EngineConfig:
    """What the engine puts in what it sends, from settings (also for the CLI)."""
    return EngineConfig(
        public_base_url=settings.public_base_url,
        service_mailbox=settings.service_mailbox or "performance@localhost",
        return_links=links if links is not None else links_from_settings(settings),
    )


@dataclass(frozen=True)
class TickReport:
    timers: int
    sent: int
    retried: int
    parked: int


class Service:
    """Everything ``m365perf serve`` runs, built from settings and flows."""

    def __init__(
        self,
        settings: Settings,
        flows: Sequence[Flow],
        *,
        clock: Callable[[], datetime] = utc_now,
        store: Store | None = None,
        clients: M365 | None = None,
        verifier: BotTokenVerifier | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.store = store or create_store(settings.database_url, migrate=True)
        self.links = links_from_settings(settings)
        self.engine = Engine(
            self.store,
            flows,
            engine_config(settings, self.links),
        )
        self.clients = clients or clients_from_settings(settings)
        self.dispatcher = Dispatcher(
            self.store,
            self.clients,
            settings,
            on_sent=self.engine.on_sent,
            on_parked=self.engine.on_parked,
            find_delivery=self._find_delivery,
            worker_id=self.worker_id,
            clock=clock,
        )
        self.verifier = verifier or BotTokenVerifier.from_settings(settings)
        self.app = create_app(self.engine, self.verifier, clock=clock, links=self.links)
        self._tick_lock = threading.Lock()

    def _find_delivery(self, card_id: str) -> CardDelivery | None:
        with self.store.transaction() as tx:
            return tx.find_delivery(card_id)

    # --- the work -------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Fire due timers, then send what is due in the outbox."""
        with self._tick_lock:
            timers = self.engine.fire_due_timers(worker=self.worker_id, now=self.clock())
            report = self.dispatcher.drain()
        return TickReport(timers, report.sent, report.retried, report.parked)

    def settle(self, max_rounds: int = 50) -> None:
        """Tick until nothing is due now (timers and outbox); for rehearsals and the CLI."""
        for _ in range(max_rounds):
            report = self.tick()
            if not (report.timers or report.sent or report.retried):
                return

    def open_cycle(self, flow: Flow, period: Period, *, actor: str) -> CycleOpening:
        """Sync the register and the people it names from Microsoft 365, then open."""
        now = self.clock()
        indicators, problems = sync(
            self.store,
            flow,
            SharePointRegister(self.clients.graph),
            EntraPeople(self.clients.graph),
            now=now,
        )
        return self.engine.open_cycle(flow.id, period, indicators, problems, now=now, actor=actor)

    def open_due_cycles(self) -> list[CycleOpening]:
        """Open every flow's cycle whose opening time has come (catching up after downtime)."""
        if not self.store.try_advisory_lock(CLOCK_LOCK):
            return []
        opened = []
        now = self.clock()
        today = local_day(now)
        for flow in self.engine.flows.values():
            period = collected_period(flow, today)
            plan = timetable(flow, period)
            opening_time = now.astimezone(LONDON).time()
            due_now = plan.opens < today or (
                plan.opens == today and opening_time >= flow.schedule.opening_time
            )
            if not due_now:
                continue
            with self.store.transaction() as tx:
                if tx.find_cycle(flow.id, period.label) is not None:
                    continue
            try:
                opened.append(self.open_cycle(flow, period, actor="scheduler"))
            except Exception:  # one flow's failure must not stop the others
                log.exception("opening %s %s failed; will try again", flow.id, period.label)
        return opened

    # --- running ----------------------------------------------------------------------

    def run(self, host: str, port: int, *, tick_s: float = 5.0) -> None:
        """Serve the web endpoints with the scheduler running beside them until stopped."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        from m365perf.web.app import serve_app

        scheduler = BackgroundScheduler(
            timezone=LONDON,
            job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
        )
        scheduler.add_job(self._safe_tick, IntervalTrigger(seconds=tick_s), id="tick")
        for flow in self.engine.flows.values():
            at = flow.schedule.opening_time
            scheduler.add_job(
                self.open_due_cycles,
                CronTrigger(day_of_week="mon-fri", hour=at.hour, minute=at.minute, timezone=LONDON),
                id=f"open:{flow.id}",
            )
        scheduler.start()
        try:
            self.open_due_cycles()
            serve_app(self.app, host, port)
        finally:
            scheduler.shutdown(wait=False)
            self.store.release_advisory_lock(CLOCK_LOCK)
            self.store.close()

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:  # the next tick tries again; nothing is lost in the store
            log.exception("tick failed")
