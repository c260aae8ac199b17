"""Send the outbox: claim due rows, send them concurrently per budget, settle each one.

Every claimed row ends one of three ways, and only one: sent (the engine is told with
``on_sent``, then the row is marked done), back to wait (``retry_later``) or parked for
an operator. A row is never dropped: if this process dies mid-send, the row's lease
lapses and another drain sends it again, so delivery is *at least once*.

Why ``on_sent`` before ``mark_done``: the other order could lose the engine's
follow-up (the delivery record an update needs, the next timer) if the process died
between the two. This order can at worst repeat a send and its ``on_sent``, so
**on_sent must be idempotent** (a delivery recorded twice is recorded once) and safe
to call from several worker threads at once (each call its own transaction). If it
raises, the row is parked, not retried: the message did go, and sending it again
would not mend the engine.

Rows are grouped by their ``budget`` and each group goes out on its own thread pool,
as wide as the budget allows (four requests per mailbox, eight bot sends, four
SharePoint batches, one Power BI call per dataset); the clients' own budgets still
pace the requests inside that. A budget the service paused for longer than a minute
(a long ``Retry-After``) is not waited out on a thread: its rows go back to wait until
the pause ends, without a request.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from types import MappingProxyType
from typing import assert_never

from m365perf.dispatch import _writeback
from m365perf.dispatch._failures import BadPayload, NotYet, backoff_s, judge
from m365perf.dispatch._sends import FindDelivery, Sendable, SendContext, send
from m365perf.logs import correlated
from m365perf.m365.errors import never_reached
from m365perf.m365.factory import M365
from m365perf.m365.graph import GraphClient
from m365perf.m365.http import Budget
from m365perf.messages import (
    CheckRefresh,
    MessageError,
    Outcome,
    Refresh,
    SendCard,
    SendMail,
    UpdateCard,
    WriteBack,
    parse_message,
)
from m365perf.settings import Settings
from m365perf.store.base import DEFAULT_LEASE, Store
from m365perf.store.tables import OutboxMessage
from m365perf.web.links import LinkSigner, links_from_settings

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY: Mapping[str, int] = MappingProxyType(
    {"mailbox:*": 4, "bot": 8, "sharepoint": 4, "powerbi:*": 1}
)
"""Rows of one budget in flight at once; ``family:*`` covers every budget of a family."""

DRAIN_LIMIT = 100
_UNKNOWN_BUDGET_CONCURRENCY = 1
_PAUSE_SIT_OUT_S = 60.0
"""A budget paused by the service for longer than this is not waited out on a thread."""

#: Told of each row sent and the outcome model of its kind (``m365perf.messages``).
OnSent = Callable[[OutboxMessage, Outcome, datetime], None]
#: Told when a row is parked for good (the engine may choose another channel).
OnParked = Callable[[OutboxMessage, str, datetime], None]
_Result = tuple[OutboxMessage, Outcome | BaseException]
_SENT, _RETRIED, _PARKED = "sent", "retried", "parked"


@dataclass(frozen=True)
class DrainReport:
    """What one drain did with the rows it claimed."""

    sent: int = 0
    retried: int = 0
    parked: int = 0

    @property
    def claimed(self) -> int:
        """Every claimed row is counted once, so this is how many were claimed."""
        return self.sent + self.retried + self.parked


@dataclass(frozen=True)
class Outage:
    """Microsoft 365 could not be reached at all since ``since`` (no send got through)."""

    since: datetime
    error: str


@dataclass(eq=False)
class _Job:
    """Work for one thread of a budget's pool, answering for ``rows``.

    ``work`` returns the rows it settled and, for write-back, the batch jobs its read
    planned. ``after``: a job whose outcome this one needs first (a card's send
    before its update in the same drain).
    """

    budget: str
    rows: list[OutboxMessage]
    work: Callable[[], tuple[list[_Result], list[_Job]]]
    after: _Job | None = None


@dataclass
class _JobDone:
    counts: Counter[str] = field(default_factory=Counter)
    follow_ups: list[_Job] = field(default_factory=list)


class Dispatcher:
    """Sends outbox rows through the Microsoft 365 clients and reports back to the engine."""

    def __init__(
        self,
        store: Store,
        clients: M365,
        settings: Settings,
        *,
        on_sent: OnSent,
        on_parked: OnParked | None = None,
        find_delivery: FindDelivery,
        worker_id: str,
        clock: Callable[[], datetime],
        max_attempts: int = 8,
        backoff_base_s: float = 2,
        backoff_cap_s: float = 600,
        concurrency: Mapping[str, int] | None = None,
        links: LinkSigner | None = None,
        lease: timedelta = DEFAULT_LEASE,
        give_up_after: timedelta = timedelta(0),
    ) -> None:
        """``links`` signs web-form links as e-mails go (default: from ``settings``).
        ``lease``: how long a claimed row is this worker's before another may take it.
        ``give_up_after``: a row failing transiently is parked only after ``max_attempts``
        *and* this long since it was queued; the service sets it well past the lease, so a
        card update waiting for a dead worker's send outlasts that worker's lease."""
        if not worker_id:
            raise ValueError("worker_id is empty: name this dispatcher (host and process)")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < backoff_base_s <= backoff_cap_s:
            raise ValueError("need 0 < backoff_base_s <= backoff_cap_s")
        limits = {**DEFAULT_CONCURRENCY, **(concurrency or {})}
        for budget, limit in limits.items():
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"concurrency for {budget!r} must be a whole number ≥ 1")
        self._store = store
        self._clients = clients
        self._on_sent = on_sent
        self._on_parked = on_parked
        self._worker_id = worker_id
        self._clock = clock
        if give_up_after and give_up_after <= lease:
            raise ValueError("give_up_after must be longer than the lease")
        self._max_attempts = max_attempts
        self._lease = lease
        self._give_up_after = give_up_after
        self._backoff_base_s = float(backoff_base_s)
        self._backoff_cap_s = float(backoff_cap_s)
        self._limits = limits
        self._rng = random.Random()
        self._ids = _writeback.SharePointIds(clients.graph)
        signer = links if links is not None else links_from_settings(settings)
        self._context = SendContext(store, clients, settings, find_delivery, signer, clock)
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        self._secrets = (secret,) if secret else ()
        self._outage_cap_s = max(settings.outage_retry_cap_s, self._backoff_base_s)
        self._outage: Outage | None = None
        self._outage_mutex = threading.Lock()

    @property
    def outage(self) -> Outage | None:
        """The outage this process sees now, or None when its last send got through."""
        return self._outage

    # --- the loop ------------------------------------------------------------------------

    def drain(self, limit: int = DRAIN_LIMIT) -> DrainReport:
        """Claim up to ``limit`` due rows, send them, and settle every one before returning."""
        claimed = self._store.claim_outbox(self._now(), limit, self._worker_id, lease=self._lease)
        if not claimed:
            return DrainReport()
        counts = _Run(self).run(self._jobs(claimed))
        return DrainReport(counts[_SENT], counts[_RETRIED], counts[_PARKED])

    def run_forever(
        self, stop: threading.Event, idle_s: float = 1.0, *, wake: threading.Event | None = None
    ) -> None:
        """Drain until ``stop`` is set: drain after drain while rows are due, then rest up
        to ``idle_s`` (or until ``wake`` is set) once the outbox had nothing more due.

        A drain in progress finishes its rows before the loop looks at ``stop``. A drain
        that fails as a whole (the database unreachable) is logged and tried again.
        """
        if idle_s <= 0:
            raise ValueError("idle_s must be positive")
        rest = wake or threading.Event()
        while not stop.is_set():
            try:
                report = self.drain(DRAIN_LIMIT)
            except Exception:
                log.exception("outbox drain failed; trying again in %.1fs", idle_s)
                stop.wait(idle_s)
                continue
            if report.claimed < DRAIN_LIMIT and not stop.is_set():
                rest.wait(idle_s)
                rest.clear()

    def _concurrency(self, budget: str) -> int:
        """How many rows of ``budget`` go out at once."""
        if budget in self._limits:
            return self._limits[budget]
        family = budget.split(":", 1)[0]
        return self._limits.get(f"{family}:*", _UNKNOWN_BUDGET_CONCURRENCY)

    # --- planning ------------------------------------------------------------------------

    def _jobs(self, claimed: Sequence[OutboxMessage]) -> list[_Job]:
        jobs: list[_Job] = []
        card_sends: dict[str, _Job] = {}
        card_updates: list[tuple[str, _Job]] = []
        lists: dict[tuple[str, _writeback.Target], list[_writeback.Row]] = {}
        for row in sorted(claimed, key=lambda m: m.id or 0):
            try:
                message = parse_message(row.kind, row.payload)
            except MessageError as exc:
                jobs.append(_failed(row, BadPayload(str(exc))))
                continue
            if isinstance(message, WriteBack):
                planned = _writeback.row(row, message)
                lists.setdefault((row.budget, planned.target), []).append(planned)
                continue
            job = _Job(row.budget, [row], partial(self._send_one, row, message))
            match message:
                case UpdateCard():
                    card_updates.append((str(message.card_id), job))
                    continue
                case SendCard():
                    card_sends[str(message.card_id)] = job
                case SendMail() | Refresh() | CheckRefresh():
                    pass
                case _:
                    assert_never(message)
            jobs.append(job)
        for (budget, target), rows in lists.items():
            work = partial(self._write_list, budget, target, rows)
            jobs.append(_Job(budget, [r.message for r in rows], work))
        # Updates last, so the send they wait for is already submitted.
        for card_id, job in card_updates:
            job.after = card_sends.get(card_id)
            jobs.append(job)
        return jobs

    def _send_one(self, row: OutboxMessage, message: Sendable) -> tuple[list[_Result], list[_Job]]:
        return [(row, send(self._context, message, retried=_maybe_sent_before(row)))], []

    def _write_list(
        self, budget: str, target: _writeback.Target, rows: list[_writeback.Row]
    ) -> tuple[list[_Result], list[_Job]]:
        graph = self._clients.graph
        plan = _writeback.plan(graph, self._ids, target, rows, self._store)
        batches = [
            _Job(
                budget,
                [m for write in chunk for m in write.messages],
                partial(_send_batch, graph, target.list_title, chunk, self._store),
            )
            for chunk in _writeback.chunks(plan.writes)
        ]
        return plan.settled, batches

    # --- running a job and settling its rows --------------------------------------------

    def _execute(self, job: _Job) -> _JobDone:
        """Run one job on a pool thread, logged under its rows' ids (``outbox-<id>``)."""
        with correlated("outbox-" + "+".join(str(m.id) for m in job.rows[:3])):
            return self._execute_job(job)

    def _execute_job(self, job: _Job) -> _JobDone:
        """Never raises, and settles every row it holds."""
        done = _JobDone()
        try:
            paused_s = self._paused_s(job.budget)  # reads the shared ledger: may fail too
            if paused_s > _PAUSE_SIT_OUT_S:
                for message in job.rows:
                    done.counts[self._defer(message, job.budget, paused_s)] += 1
                return done
            results, done.follow_ups = job.work()
        except Exception as exc:
            results, done.follow_ups = [(m, exc) for m in job.rows], []
        handed_on = {_id(m) for follow_up in done.follow_ups for m in follow_up.rows}
        settled = set()
        for message, result in results:
            settled.add(_id(message))
            done.counts[self._settle(message, result)] += 1
        for message in job.rows:
            if _id(message) not in settled | handed_on:
                stray = RuntimeError("dispatcher bug: the row was neither sent nor failed")
                done.counts[self._settle(message, stray)] += 1
        return done

    def _settle(self, message: OutboxMessage, result: Outcome | BaseException) -> str:
        """Record one row's fate; a store failure leaves it to its lease (sent again)."""
        now = self._now()
        try:
            if isinstance(result, BaseException):
                return self._failed(message, result, now)
            try:
                self._on_sent(message, result, now)
            except Exception as exc:
                log.exception("outbox row %s was sent but on_sent failed", message.id)
                error = (
                    "sent, but recording the delivery failed: " + judge(exc, self._secrets).error
                )
                self._store.park(_id(message), error, now=now)
                return _PARKED
            self._reached()
            if not self._store.mark_done(_id(message), now=now):
                log.warning("outbox row %s was no longer ours when marked done", message.id)
            return _SENT
        except Exception:
            log.exception(
                "could not record outbox row %s; its lease will bring it back", message.id
            )
            return _RETRIED

    def _failed(self, message: OutboxMessage, exc: BaseException, now: datetime) -> str:
        verdict = judge(exc, self._secrets)
        if never_reached(exc):
            return self._wait_out_outage(message, verdict.error, now)
        if verdict.retry and not self._gives_up(message, now):
            wait_s = backoff_s(
                message.attempts, self._backoff_base_s, self._backoff_cap_s, self._rng
            )
            at = now + timedelta(seconds=max(wait_s, verdict.retry_after or 0.0))
            log.info(
                "outbox row %s (%s) retries at %s: %s", message.id, message.kind, at, verdict.error
            )
            self._store.retry_later(_id(message), at, verdict.error, now=now)
            return _RETRIED
        error = verdict.error
        if verdict.retry:
            tries = "attempt" if message.attempts == 1 else "attempts"
            error = f"gave up after {message.attempts} {tries}: {error}"
        log.warning("outbox row %s (%s) parked: %s", message.id, message.kind, error)
        self._store.park(_id(message), error, now=now)
        if self._on_parked is not None:
            try:
                self._on_parked(message, error, now)
            except Exception:  # the row stays parked for the status page either way
                log.exception("on_parked failed for outbox row %s", message.id)
        return _PARKED

    def _wait_out_outage(self, message: OutboxMessage, error: str, now: datetime) -> str:
        """Microsoft 365 unreachable: wait (backoff capped at ``outage_retry_cap_s``), never park.

        Nothing was sent, and the fault is not the message's: parking it would leave an
        operator to resend a whole outage's work by hand.
        """
        with self._outage_mutex:
            if self._outage is None:
                self._outage = Outage(now, error)
                log.warning("Microsoft 365 unreachable: messages wait until it returns: %s", error)
        wait_s = backoff_s(message.attempts, self._backoff_base_s, self._outage_cap_s, self._rng)
        at = now + timedelta(seconds=wait_s)
        self._store.retry_later(_id(message), at, f"unreachable, waiting: {error}", now=now)
        return _RETRIED

    def _reached(self) -> None:
        with self._outage_mutex:
            if self._outage is not None:
                log.warning(
                    "Microsoft 365 reachable again (unreachable since %s)", self._outage.since
                )
                self._outage = None

    def _gives_up(self, message: OutboxMessage, now: datetime) -> bool:
        """A transient failure is parked only once both the attempts and the time are spent."""
        if message.attempts < self._max_attempts:
            return False
        return now - message.created_at >= self._give_up_after

    def _defer(self, message: OutboxMessage, budget: str, paused_s: float) -> str:
        """Send later, without a request: the service asked this budget to hold off."""
        now = self._now()
        error = f"budget {budget} held off by the service for {paused_s:.0f}s more"
        try:
            self._store.retry_later(_id(message), now + timedelta(seconds=paused_s), error, now=now)
        except Exception:
            log.exception("could not defer outbox row %s; its lease will bring it back", message.id)
        return _RETRIED

    def _paused_s(self, budget: str) -> float:
        """How much longer the clients' budget for this row is paused by a throttle."""
        client_budget = self._client_budget(budget)
        if client_budget is None:
            return 0.0
        return client_budget.paused_s()

    def _client_budget(self, budget: str) -> Budget | None:
        budgets = self._clients.budgets
        family, _, name = budget.partition(":")
        if budget == "bot":
            return budgets.bot
        if budget == "sharepoint":
            return budgets.sharepoint
        if family == "mailbox" and name:
            return budgets.mailbox(name)
        if family == "powerbi":
            return budgets.powerbi
        return None

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the dispatcher's clock must return timezone-aware datetimes")
        return now


class _Run:
    """One drain's pools and the jobs in flight; only the draining thread touches it."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._futures: dict[_Job, Future[_JobDone]] = {}
        self._waiting: dict[Future[_JobDone], list[_Job]] = {}
        self._pending: set[Future[_JobDone]] = set()

    def run(self, jobs: Sequence[_Job]) -> Counter[str]:
        counts: Counter[str] = Counter()
        try:
            for job in jobs:
                self._submit(job)
            while self._pending:
                finished, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done = future.result()
                    counts.update(done.counts)
                    for job in done.follow_ups + self._waiting.pop(future, []):
                        self._submit(job)
        finally:
            for pool in self._pools.values():
                pool.shutdown(wait=True)
        return counts

    def _submit(self, job: _Job) -> None:
        if job.after is not None:
            before = self._futures.get(job.after)
            if before is not None and not before.done():
                self._waiting.setdefault(before, []).append(job)
                return
        pool = self._pools.get(job.budget)
        if pool is None:
            pool = self._pools[job.budget] = ThreadPoolExecutor(
                max_workers=self._dispatcher._concurrency(job.budget),
                thread_name_prefix=f"outbox-{job.budget}",
            )
        future = pool.submit(self._dispatcher._execute, job)
        self._futures[job] = future
        self._pending.add(future)


def _send_batch(
    graph: GraphClient, list_title: str, chunk: list[_writeback.Write], store: Store
) -> tuple[list[_Result], list[_Job]]:
    return _writeback.send(graph, list_title, chunk, store), []


def _failed(message: OutboxMessage, exc: BaseException) -> _Job:
    def work() -> tuple[list[_Result], list[_Job]]:
        return [(message, exc)], []

    return _Job(message.budget, [message], work)


def _maybe_sent_before(row: OutboxMessage) -> bool:
    """An earlier attempt may have reached the service unheard: it was dropped, timed
    out or its worker died. Not when it ended "not yet" (the service's known refusal)."""
    return row.attempts > 1 and not (row.last_error or "").startswith(NotYet.__name__)


def _id(message: OutboxMessage) -> int:
    assert message.id is not None, "claimed outbox rows always have an id"
    return message.id
