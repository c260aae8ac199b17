"""The running service: one place that wires store, engine, clients, dispatcher and web.

APScheduler is only the clock: it fires each flow's morning job (open the cycles due,
re-read the register for the cycles still open) and a periodic tick that picks up due
timers and outbox rows. All state lives in the store, so several ``m365perf serve``
processes on one PostgreSQL database work side by side; only the holder of the advisory
lock opens and re-reads cycles.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from m365perf.csvfiles import UnreadableCsv
from m365perf.dispatch import Dispatcher
from m365perf.domain.periods import Period
from m365perf.engine import (
    CycleError,
    CycleOpening,
    CycleResync,
    EmptyCycle,
    Engine,
    EngineConfig,
)
from m365perf.engine.context import LONDON
from m365perf.flows.model import Flow
from m365perf.m365 import M365, clients_from_settings
from m365perf.m365.errors import NotFound as GraphNotFound
from m365perf.plan.catchup import opening_now
from m365perf.plan.fieldmap import FieldMapError
from m365perf.plan.register import Indicator, RowProblem
from m365perf.settings import Settings
from m365perf.store import CardDelivery, CycleStatus, Store, create_store
from m365perf.store.budgets import store_ledger
from m365perf.sync import EntraPeople, PeopleSource, RegisterSource, SharePointRegister, sync
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier
from m365perf.web.links import LinkSigner, links_from_settings
from m365perf.web.signin import signin_from_settings

log = logging.getLogger(__name__)

CLOCK_LOCK = "m365perf-clock"

#: Where a flow's register and the people it names are read from.
SourcesFor = Callable[[Flow], tuple[RegisterSource, PeopleSource]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def engine_config(settings: Settings, links: LinkSigner | None = None) -> EngineConfig:
    """What the engine puts in what it sends, from settings (also for the CLI).

    Approval cards and e-mails link to the approvals page only when web sign-in is set up.
    """
    signin = settings.has_web_signin
    return EngineConfig(
        public_base_url=settings.public_base_url,
        service_mailbox=settings.service_mailbox or "performance@localhost",
        return_links=links if links is not None else links_from_settings(settings),
        approvals_base_url=settings.staff_url if signin else None,
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
        sources: SourcesFor | None = None,
    ) -> None:
        """``sources`` defaults to the tenant: the SharePoint register and Entra ID."""
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.store = store or create_store(settings.database_url, migrate=True)
        self.lease = timedelta(seconds=settings.worker_lease_s)
        self.links = links_from_settings(settings)
        self.engine = Engine(
            self.store,
            flows,
            engine_config(settings, self.links),
        )
        self.clients = clients or clients_from_settings(
            settings, ledger=store_ledger(self.store) if settings.uses_shared_budgets else None
        )
        self.sources: SourcesFor = sources or self._tenant_sources
        self.dispatcher = Dispatcher(
            self.store,
            self.clients,
            settings,
            on_sent=self.engine.on_sent,
            on_parked=self.engine.on_parked,
            find_delivery=self._find_delivery,
            worker_id=self.worker_id,
            clock=clock,
            links=self.links,
            lease=self.lease,
            give_up_after=timedelta(seconds=settings.outbox_give_up_s),
        )
        self.verifier = verifier or BotTokenVerifier.from_settings(settings)
        self.signin = signin_from_settings(settings, flows)
        split = settings.staff_port is not None
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        self.app = create_app(
            self.engine,
            self.verifier,
            clock=clock,
            links=self.links,
            contact=settings.service_mailbox,
            signin=self.signin,
            part="public" if split else "all",
            traffic=self.clients.traffic,
            metrics_token=token,
            outage=lambda: self.dispatcher.outage,
        )
        self.staff_app = (
            create_app(
                self.engine,
                self.verifier,
                clock=clock,
                signin=self.signin,
                part="staff",
                traffic=self.clients.traffic,
                metrics_token=token,
                outage=lambda: self.dispatcher.outage,
            )
            if split
            else None
        )
        self._tick_lock = threading.Lock()
        self._has_clock = False
        self._wake = threading.Event()

    def _find_delivery(self, card_id: str) -> CardDelivery | None:
        with self.store.transaction() as tx:
            return tx.find_delivery(card_id)

    # --- the work -------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Fire due timers, then send what is due in the outbox (one drain)."""
        with self._tick_lock:
            timers = self.fire_timers()
            report = self.dispatcher.drain()
        return TickReport(timers, report.sent, report.retried, report.parked)

    def fire_timers(self) -> int:
        """Fire the timers due now; wake the outbox loop if they queued anything."""
        fired = self.engine.fire_due_timers(
            worker=self.worker_id, now=self.clock(), lease=self.lease
        )
        if fired:
            self._wake.set()
        return fired

    def settle(self, max_rounds: int = 50) -> None:
        """Tick until nothing is due now (timers and outbox); for rehearsals and the CLI."""
        for _ in range(max_rounds):
            report = self.tick()
            if not (report.timers or report.sent or report.retried):
                return

    def _tenant_sources(self, flow: Flow) -> tuple[RegisterSource, PeopleSource]:
        return SharePointRegister(self.clients.graph), EntraPeople(self.clients.graph)

    def read_register(
        self, flow: Flow, *, now: datetime
    ) -> tuple[list[Indicator], list[RowProblem]]:
        """Sync the register and the people it names into the store; its indicators."""
        register, people = self.sources(flow)
        return sync(self.store, flow, register, people, now=now)

    def open_cycle(self, flow: Flow, period: Period, *, actor: str) -> CycleOpening:
        """Sync the register and the people it names from Microsoft 365, then open."""
        now = self.clock()
        indicators, problems = self.read_register(flow, now=now)
        return self.engine.open_cycle(flow.id, period, indicators, problems, now=now, actor=actor)

    def open_due_cycles(self) -> list[CycleOpening]:
        """Open every flow's cycle whose opening time has come (catching up after downtime).

        Never a period before the flow's ``collect_from``; a period opened long after its
        planned opening counts its dates from now (``plan.catchup``).
        """
        if not self.store.try_advisory_lock(CLOCK_LOCK):
            return []
        opened = []
        now = self.clock()
        for flow in self.engine.flows.values():
            decision = opening_now(flow, now)
            period = decision.period
            if not decision.opens:
                log.debug("%s: %s", flow.id, decision.reason)
                continue
            with self.store.transaction() as tx:
                if tx.find_cycle(flow.id, period.label) is not None:
                    continue
            try:
                opened.append(self.open_cycle(flow, period, actor="scheduler"))
            except FieldMapError as exc:
                log.error(
                    "cannot open %s %s: the flow names register columns the register "
                    "does not have; will try again at the next opening time\n%s",
                    flow.id,
                    period.label,
                    exc,
                )
            except EmptyCycle as exc:
                log.warning("%s; will try again at the next opening time", exc.message)
                for problem in exc.problems:
                    log.warning("  %s %s: %s", problem.indicator_id, problem.name, problem.reason)
            except (UnreadableCsv, GraphNotFound) as exc:
                log.error(
                    "cannot open %s %s: its register cannot be read (%s); no cycle was opened "
                    "and nothing was sent; will try again at the next opening time",
                    flow.id,
                    period.label,
                    exc,
                )
            except Exception:  # one flow's failure must not stop the others
                log.exception("opening %s %s failed; will try again", flow.id, period.label)
        return opened

    def resync_open_cycles(
        self, flow_ids: Collection[str] | None = None, *, skip: Collection[int] = ()
    ) -> list[CycleResync]:
        """Re-read the register for every cycle not closed (of ``flow_ids``, default all).

        This keeps the promise of the "cannot be routed" e-mail: a row fixed in the
        register is asked for the next weekday morning. ``skip`` names cycles whose
        register was read just now (opened by the same job). One read per flow.
        """
        if not self.store.try_advisory_lock(CLOCK_LOCK):
            return []
        with self.store.transaction() as tx:
            cycles = [
                c
                for c in tx.list_cycles()
                if c.status is not CycleStatus.CLOSED
                and c.flow_id in self.engine.flows
                and (flow_ids is None or c.flow_id in flow_ids)
                and c.id not in skip
            ]
        done: list[CycleResync] = []
        for flow_id in dict.fromkeys(c.flow_id for c in cycles):
            flow = self.engine.flows[flow_id]
            try:
                now = self.clock()
                indicators, problems = self.read_register(flow, now=now)
            except FieldMapError as exc:
                log.error("cannot re-read the register of %s:\n%s", flow.id, exc)
                continue
            except Exception:  # one flow's failure must not stop the others
                log.exception("reading the register of %s failed; will try again", flow.id)
                continue
            for cycle in (c for c in cycles if c.flow_id == flow_id):
                period = self.engine.ctx.period_of(cycle)
                try:
                    done.append(
                        self.engine.resync_cycle(
                            flow.id, period, indicators, problems, now=now, actor="scheduler"
                        )
                    )
                except CycleError as exc:
                    log.warning("re-reading %s %s: %s", flow.id, period.label, exc.message)
                except Exception:
                    log.exception("re-reading %s %s failed", flow.id, period.label)
        return done

    def morning(self, flow_id: str) -> None:
        """A flow's job at its opening time each weekday: open what is due, re-read the rest."""
        opened = self.open_due_cycles()
        self.resync_open_cycles([flow_id], skip={o.cycle_id for o in opened if o.created})
        self.engine.keep_cycles_closing(now=self.clock())
        self.engine.cover_open_steps(now=self.clock())

    def take_clock(self) -> bool:
        """Try for the scheduler clock; on taking it over, do what the last holder missed.

        Every instance tries every ``clock_takeover_s``: when the holder dies its session
        ends, PostgreSQL frees the lock, and the next try here wins it. The new holder
        opens what came due and closes what is due to close (both idempotent, so a cycle
        is never opened twice). True while this instance holds the clock.
        """
        held = self.store.try_advisory_lock(CLOCK_LOCK)
        if held and not self._has_clock:
            self._has_clock = True
            log.info("%s holds the scheduler clock", self.worker_id)
            self.start()
        elif not held and self._has_clock:
            self._has_clock = False
            log.warning("%s lost the scheduler clock", self.worker_id)
        return held

    # --- running ----------------------------------------------------------------------

    def start(self) -> list[CycleOpening]:
        """What ``serve`` does before it answers its first request; the cycles it opened.

        Opens every cycle whose time has come (catching up after downtime or on a first
        start) and closes those due to close. One method, so a test of the first start
        runs exactly what ``m365perf serve`` runs.
        """
        opened = self.open_due_cycles()
        self.engine.keep_cycles_closing(now=self.clock())
        return opened

    def run(self, host: str, port: int, *, tick_s: float = 5.0) -> None:
        """Serve the web endpoints with the scheduler running beside them until stopped."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        from m365perf.web.app import serve_apps

        scheduler = BackgroundScheduler(
            timezone=LONDON,
            job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
        )
        # Timers on the tick; the outbox on its own thread, drained without pause while
        # rows are due (the budgets pace it), then looked at again after outbox_idle_s.
        scheduler.add_job(self._safe_fire_timers, IntervalTrigger(seconds=tick_s), id="tick")
        stop = threading.Event()
        drainer = threading.Thread(
            target=self.dispatcher.run_forever,
            args=(stop, self.settings.outbox_idle_s),
            kwargs={"wake": self._wake},
            name="outbox",
            daemon=True,
        )
        scheduler.add_job(
            self._safe_take_clock,
            IntervalTrigger(seconds=self.settings.clock_takeover_s),
            id="clock",
        )
        for flow in self.engine.flows.values():
            at = flow.schedule.opening_time
            scheduler.add_job(
                self.morning,
                CronTrigger(day_of_week="mon-fri", hour=at.hour, minute=at.minute, timezone=LONDON),
                args=[flow.id],
                id=f"morning:{flow.id}",
            )
        try:
            # Before the scheduler runs, so its clock job never starts alongside this one.
            if not self.take_clock():
                self.start()  # not the clock's holder: opens nothing, closes what is due
            scheduler.start()
            drainer.start()
            listeners = [(self.app, host, port)]
            if self.staff_app is not None and self.settings.staff_port is not None:
                listeners.append(
                    (self.staff_app, self.settings.staff_host, self.settings.staff_port)
                )
            serve_apps(listeners)
        finally:
            stop.set()
            self._wake.set()
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if drainer.is_alive():
                drainer.join(timeout=30)  # a drain in progress settles its rows
            self.store.release_advisory_lock(CLOCK_LOCK)
            self.store.close()

    def _safe_take_clock(self) -> None:
        try:
            self.take_clock()
        except Exception:  # the database away: the next try asks again
            log.exception("could not ask for the scheduler clock")

    def _safe_tick(self) -> None:
        """One tick (timers, then one drain), logged rather than raised, as a failing
        database makes it."""
        try:
            self.tick()
        except Exception:  # the next tick tries again; nothing is lost in the store
            log.exception("tick failed")

    def _safe_fire_timers(self) -> None:
        try:
            self.fire_timers()
        except Exception:  # the next tick tries again; nothing is lost in the store
            log.exception("tick failed")
