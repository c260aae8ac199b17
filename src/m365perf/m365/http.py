"""The HTTP core every Microsoft 365 client shares: one session, retries, budgets.

Why our own retry loop rather than tenacity: the wait before a retry is not a
property of one call but of a *budget* shared by every thread (a 429 pauses all
SharePoint traffic until its ``Retry-After`` has passed), and the wait comes from
response headers; tenacity would need both bolted on, so a 40-line loop is clearer.

Retry rules (the Graph SDKs' rules, which the fact sheet's throttling guidance
matches):

* 429, 503 and 504 are retried up to ``RetryPolicy.max_attempts`` times. The wait is
  exactly ``Retry-After`` (seconds or an HTTP-date); when the service gives none,
  jittered exponential backoff with a cap. A server-given wait pauses the whole
  budget, across threads (and, with a shared ledger, across processes).
  A wait longer than ``max_wait_s`` is not sat out in-process: :class:`ThrottledError`
  is raised at once with ``retry_after`` so the dispatcher can reschedule the work.
* ``RateLimit-Remaining`` on a successful answer (SharePoint, from 80% of the minute
  used) caps the budget's tokens: the client slows to what is left, without pausing.
* Other 4xx (including 401: the token came from a cache MSAL already keeps fresh,
  so a second try would get the same answer) raise their typed error at once.
* Other 5xx raise :class:`ServerError` (transient) at once: a 500 on a create may
  have created the item, so only the dispatcher, which re-reads keys before it
  writes, may try again.
* A timeout or dropped connection is retried only when repeating the request is
  harmless: for idempotent methods, and for connect timeouts (nothing was sent).
* A transient failure to get a token (the login service busy or unreachable) is
  retried with backoff: nothing was sent.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from m365perf.m365.auth import TokenProvider
from m365perf.m365.errors import (
    AuthError,
    BadRequest,
    ClientError,
    HttpError,
    M365Error,
    NotFound,
    PreconditionFailed,
    ServerError,
    ThrottledError,
    TransportError,
    Unauthorized,
)
from m365perf.m365.traffic import Traffic

log = logging.getLogger(__name__)

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_THROTTLE_STATUSES = frozenset({429, 503, 504})
_STATUS_ERRORS: dict[int, type[HttpError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    412: PreconditionFailed,
}
_REQUEST_ID_HEADERS = ("request-id", "x-ms-request-id", "RequestId", "client-request-id")
# Query characters left readable: OData's $-options, fields(select=a,b), quoted values.
_QUERY_SAFE = "$(),=/:'@"


class Clock(Protocol):
    """Time as the clients see it; injected so tests never really sleep."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for waits)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (to read ``Retry-After`` HTTP-dates)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SLOT_HOLD_S = 420.0
"""How long a shared concurrency slot is held if its holder never releases it (a crash).
Longer than the longest pause a holder sits out with its slot (``RetryPolicy.max_wait_s``,
300 s) plus a read, so a live holder's slot never lapses to another instance mid-wait."""


class BudgetLedger(Protocol):
    """Where a budget's tokens, slots and pauses are kept (memory, or a shared store).

    Times are seconds since the epoch, so several processes on one host or one
    database agree on them. m365/ only asks; what backs the ledger is wired elsewhere
    (``m365perf.store.budgets`` holds them in the store for every ``serve`` process).
    """

    def take(self, name: str, cost: float, *, rate: float, capacity: float, now: float) -> float:
        """Take ``cost`` tokens and return 0, or return seconds until they (and any
        pause) allow it, taking nothing. ``rate`` is tokens per second."""
        ...

    def cap(self, name: str, at_most: float, *, rate: float, capacity: float, now: float) -> None:
        """Hold the bucket at no more than ``at_most`` tokens (the service said so)."""
        ...

    def block(self, name: str, until: float) -> None:
        """No request on ``name`` before ``until`` (a Retry-After); never shortens."""
        ...

    def blocked_until(self, name: str) -> float:
        """The instant before which ``name`` may not send (``-inf`` if none)."""
        ...

    def acquire(self, name: str, slots: int, *, now: float, hold_s: float) -> str | None:
        """One of ``slots`` concurrency slots until released or ``now + hold_s``; None if all
        are held."""
        ...

    def release(self, name: str, slot: str) -> None:
        """Give a slot back."""
        ...


_EPSILON = 1e-4
"""Tokens short of a request that still let it go: a sleep's rounding, not a shortfall."""


class MemoryLedger:
    """The ledger of one process: the default for tests, the CLI and a single ``serve``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, stamp)
        self._blocked: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}

    def _refilled(self, name: str, rate: float, capacity: float, now: float) -> float:
        tokens, stamp = self._buckets.get(name, (capacity, now))
        return min(capacity, tokens + max(0.0, now - stamp) * rate)

    def take(self, name: str, cost: float, *, rate: float, capacity: float, now: float) -> float:
        with self._lock:
            wait = self._blocked.get(name, -math.inf) - now
            if wait > 0:
                return wait
            tokens = self._refilled(name, rate, capacity, now)
            # A request dearer than the whole bucket waits for a full bucket and goes
            # into debt, rather than waiting forever.
            need = min(cost, capacity)
            if tokens >= need - _EPSILON:
                self._buckets[name] = (tokens - cost, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (need - tokens) / rate

    def cap(self, name: str, at_most: float, *, rate: float, capacity: float, now: float) -> None:
        with self._lock:
            tokens = self._refilled(name, rate, capacity, now)
            self._buckets[name] = (min(tokens, at_most), now)

    def block(self, name: str, until: float) -> None:
        with self._lock:
            self._blocked[name] = max(self._blocked.get(name, -math.inf), until)

    def blocked_until(self, name: str) -> float:
        with self._lock:
            return self._blocked.get(name, -math.inf)

    def acquire(self, name: str, slots: int, *, now: float, hold_s: float) -> str | None:
        with self._lock:
            held = self._slots.setdefault(name, {})
            for number in range(slots):
                slot = str(number)
                if held.get(slot, -math.inf) <= now:
                    held[slot] = now + hold_s
                    return slot
            return None

    def release(self, name: str, slot: str) -> None:
        with self._lock:
            self._slots.get(name, {}).pop(slot, None)


ARRIVAL_JITTER_S = 0.25
"""How much closer together than they were sent requests may reach the service; the
burst of every rate the service enforces is kept this much of its rate below it."""

_SLOT_POLL_S = 0.05
"""How often a request waiting for another process's concurrency slot asks again."""


class Budget:
    """A client-side allowance shared by every request that spends from it.

    Three independent gates, each optional: a token bucket (``rate`` units per
    ``per_s`` seconds, e.g. SharePoint resource units per minute or bot sends per
    second), a concurrency limit (e.g. four requests in flight per mailbox), and a
    "blocked until" instant set by a throttling response that every thread honours.
    The state lives in a :class:`BudgetLedger`: this process's memory by default, or
    the store, so every ``serve`` process spends from one allowance. ``also``: budgets
    spent together with this one (SharePoint's day beside its minute; a conversation's
    rate beside the bot's).
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        rate: float | None = None,
        per_s: float = 60.0,
        burst: float | None = None,
        concurrency: int | None = None,
        ledger: BudgetLedger | None = None,
        also: tuple[Budget, ...] = (),
        hold_s: float = SLOT_HOLD_S,
        jitter_s: float = 0.0,
    ) -> None:
        if rate is not None and (rate <= 0 or per_s <= 0):
            raise ValueError(f"budget {name}: rate and period must be positive")
        if burst is not None and burst <= 0:
            raise ValueError(f"budget {name}: burst must be positive")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"budget {name}: concurrency must be at least 1")
        self.name = name
        self._clock = clock
        self._ledger: BudgetLedger = ledger if ledger is not None else MemoryLedger()
        self._shared = ledger is not None
        self._per_second = rate / per_s if rate is not None else None
        capacity = burst if burst is not None else (rate or 0.0)
        if self._per_second is not None and jitter_s > 0:
            # Requests taken in order can arrive closer together than they left (a new
            # connection's handshake delays the first more than the next): keep back what
            # the rate brings in ``jitter_s``, so the service's bucket is never overdrawn.
            capacity = max(min(1.0, capacity), capacity - self._per_second * jitter_s)
        self._capacity = capacity
        self._concurrency = concurrency
        self._hold_s = hold_s
        self._also = also
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None

    @property
    def blocked_until(self) -> float:
        """Monotonic instant before which no request may be sent (``-inf`` if none)."""
        until = self._ledger.blocked_until(self.name)
        if not math.isfinite(until):
            return until
        return until - self._clock.time() + self._clock.monotonic()

    def paused_s(self) -> float:
        """Seconds until this budget (or one spent with it) may send again; 0 if it may now."""
        now = self._clock.time()
        waits = [self._ledger.blocked_until(self.name) - now]
        waits += [b.paused_s() for b in self._also]
        return max(0.0, *waits)

    def pause_for(self, seconds: float) -> None:
        """Hold every request on this budget, and those spent with it, for ``seconds``
        from now (never shortens): a throttled conversation holds the bot back too."""
        until = self._clock.time() + max(0.0, seconds)
        self._ledger.block(self.name, until)
        for budget in self._also:
            budget._ledger.block(budget.name, until)

    def observe_remaining(self, remaining: float) -> None:
        """The service says only ``remaining`` units are left: spend no more than that
        until they refill (SharePoint's early warning, sent from 80% use)."""
        if self._per_second is None:
            return
        self._ledger.cap(
            self.name,
            max(0.0, remaining),
            rate=self._per_second,
            capacity=self._capacity,
            now=self._clock.time(),
        )

    @contextmanager
    def spend(self, cost: float = 1.0) -> Iterator[None]:
        """Wait for a slot, the end of any pause and enough tokens; hold the slot inside."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        if self._slots is not None:
            self._slots.acquire()
        slot: str | None = None
        try:
            if self._shared and self._concurrency is not None:
                slot = self._acquire_shared_slot()
            # Our own (narrow) budget first, the shared wider one last: a token of the
            # bot's per-app rate is never held while this conversation's refills.
            self._wait_turn(cost)
            for budget in self._also:
                budget._wait_turn(cost if budget._per_second is not None else 0.0)
            yield
        finally:
            if slot is not None:
                with suppress(Exception):  # a lost release only holds the slot to hold_s
                    self._ledger.release(self.name, slot)
            if self._slots is not None:
                self._slots.release()

    def _acquire_shared_slot(self) -> str:
        assert self._concurrency is not None
        while True:
            slot = self._ledger.acquire(
                self.name, self._concurrency, now=self._clock.time(), hold_s=self._hold_s
            )
            if slot is not None:
                return slot
            self._clock.sleep(_SLOT_POLL_S)

    def _wait_turn(self, cost: float) -> None:
        while True:
            if self._per_second is None:
                wait = self._ledger.blocked_until(self.name) - self._clock.time()
            else:
                wait = self._ledger.take(
                    self.name,
                    cost,
                    rate=self._per_second,
                    capacity=self._capacity,
                    now=self._clock.time(),
                )
            if wait <= 0:
                return
            self._clock.sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries before its error reaches the caller."""

    max_attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_wait_s: float = 300.0
    retry_statuses: frozenset[int] = _THROTTLE_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base_s <= 0 or self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("need 0 < backoff_base_s <= backoff_cap_s")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Wait after failed attempt ``attempt`` (1-based): in [d/2, d], d = base·2^(n-1) ≤ cap."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


SHAREPOINT_BANDS: tuple[tuple[int, float, float], ...] = (
    (1_000, 1_250.0, 1_200_000.0),
    (5_000, 2_500.0, 2_400_000.0),
    (15_000, 3_750.0, 3_600_000.0),
    (50_000, 5_000.0, 4_800_000.0),
)
"""Licences up to, resource units per app a minute and a day (facts §3.2, §9)."""
SHAREPOINT_TOP_BAND = (6_250.0, 6_000_000.0)
"""Above 50,000 licences."""


def sharepoint_band(licences: int) -> tuple[float, float]:
    """The tenant's per-app SharePoint resource units a minute and a day for its licences."""
    if licences < 0:
        raise ValueError("the licence count must not be negative")
    for up_to, per_minute, per_day in SHAREPOINT_BANDS:
        if licences <= up_to:
            return per_minute, per_day
    return SHAREPOINT_TOP_BAND


@dataclass(frozen=True)
class Limits:
    """The client-side budgets, at Microsoft's documented limits for the tenant.

    Defaults are the published figures for the smallest tenant (facts §3, §9): 1,250
    SharePoint resource units a minute (the whole minute may go at once, as the service
    allows) and 1.2 million a day; per mailbox four concurrent requests and 10,000
    in ten minutes; 50 bot
    requests a second per app; per conversation 7 in a second, 8 in two, 60 in 30.
    ``sharepoint_concurrency`` caps SharePoint requests in flight (None: no cap); at 1,
    no request is ever on the wire when a 429 arrives, so none can land inside its
    Retry-After window. Settings build these per tenant (``limits_from_settings``).
    """

    sharepoint_ru_per_minute: float = 1_250.0
    sharepoint_ru_burst: float | None = None
    sharepoint_ru_per_day: float | None = 1_200_000.0
    sharepoint_concurrency: int | None = None
    mailbox_concurrency: int = 4
    mailbox_per_10_minutes: float = 10_000.0
    bot_sends_per_second: float = 50.0
    bot_conversation_burst: int = 5
    bot_conversation_per_30s: float = 60.0
    batch_rounds: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class Budgets:
    """The budgets of one process, handed out by name, kept in one ledger.

    With a shared ledger (the store) every process on the database spends from the same
    allowance and honours the same Retry-After.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Clock | None = None,
        *,
        ledger: BudgetLedger | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.clock: Clock = clock or SystemClock()
        self.ledger: BudgetLedger = ledger if ledger is not None else MemoryLedger()
        self.shared = ledger is not None
        limits = self.limits
        day = (
            (
                Budget(
                    "sharepoint:day",
                    clock=self.clock,
                    rate=limits.sharepoint_ru_per_day,
                    per_s=86_400.0,
                    ledger=self.ledger,
                    jitter_s=ARRIVAL_JITTER_S,
                ),
            )
            if limits.sharepoint_ru_per_day
            else ()
        )
        self.sharepoint = Budget(
            "sharepoint",
            clock=self.clock,
            rate=limits.sharepoint_ru_per_minute,
            per_s=60.0,
            burst=limits.sharepoint_ru_burst,
            concurrency=limits.sharepoint_concurrency,
            ledger=self.ledger,
            also=day,
            jitter_s=ARRIVAL_JITTER_S,
        )
        self.graph = Budget("graph", clock=self.clock, ledger=self.ledger)
        self.powerbi = Budget("powerbi", clock=self.clock, ledger=self.ledger)
        self.bot = Budget(
            "bot",
            clock=self.clock,
            rate=limits.bot_sends_per_second,
            per_s=1.0,
            ledger=self.ledger,
            jitter_s=ARRIVAL_JITTER_S,
        )
        self._mailboxes: dict[str, Budget] = {}
        self._conversations: dict[str, Budget] = {}
        self._lock = threading.Lock()

    def mailbox(self, address: str) -> Budget:
        """The budget of one mailbox: throttling one mailbox leaves the others alone."""
        key = address.strip().lower()
        with self._lock:
            budget = self._mailboxes.get(key)
            if budget is None:
                budget = Budget(
                    f"mailbox:{key}",
                    clock=self.clock,
                    rate=self.limits.mailbox_per_10_minutes,
                    per_s=600.0,
                    concurrency=self.limits.mailbox_concurrency,
                    ledger=self.ledger if self.shared else None,
                    jitter_s=ARRIVAL_JITTER_S,
                )
                self._mailboxes[key] = budget
            return budget

    def conversation(self, conversation_id: str) -> Budget:
        """The bot's budget for one conversation, spent beside the bot's own.

        A bucket of ``bot_conversation_burst`` (5) refilling at 60 in 30 seconds less
        that burst: never more than 7 in a second, 8 in two or 60 in 30 (facts §3.5). The
        hourly 1,800 is not held: no one person is sent that many cards in an hour.
        """
        limits = self.limits
        with self._lock:
            budget = self._conversations.get(conversation_id)
            if budget is None:
                burst = float(limits.bot_conversation_burst)
                refill = max(limits.bot_conversation_per_30s - burst, 1.0)
                budget = Budget(
                    f"bot:{conversation_id}",
                    clock=self.clock,
                    rate=refill,
                    per_s=30.0,
                    burst=burst,
                    ledger=self.ledger,
                    also=(self.bot,),
                    jitter_s=ARRIVAL_JITTER_S,
                )
                self._conversations[conversation_id] = budget
            return budget


def new_session(user_agent: str, *, pool_size: int = 20) -> requests.Session:
    """A pooled session with the traffic decoration Microsoft asks for; no hidden retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=10, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class HttpCore:
    """Sends one request with auth, budget, timeouts and the retry rules above.

    The session is the only side-effect seam: everything else is computed here.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        traffic: Traffic | None = None,
    ) -> None:
        self.session = session
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.traffic = traffic

    def send(
        self,
        method: str,
        url: str,
        *,
        tokens: TokenProvider | None,
        budget: Budget,
        retry: RetryPolicy,
        cost: float = 1.0,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send until success, a permanent error, or the attempts run out."""
        method = method.upper()
        repeatable = method in _IDEMPOTENT if idempotent is None else idempotent
        for attempt in range(1, retry.max_attempts + 1):
            request_headers = {"client-request-id": str(uuid.uuid4())}
            request_headers.update(headers or {})
            last = attempt == retry.max_attempts
            if tokens is not None:
                try:
                    request_headers["Authorization"] = f"Bearer {tokens.token()}"
                except AuthError as exc:
                    # Nothing was sent yet, so trying again is always harmless.
                    if not exc.transient or last:
                        raise
                    wait = retry.backoff(attempt, self.rng)
                    log.info("%s %s: no token (%s); retry in %.1fs", method, url, exc, wait)
                    self.clock.sleep(wait)
                    continue
            failure: requests.RequestException | None = None
            server_wait: float | None = None
            with budget.spend(cost):
                started = time.perf_counter()
                try:
                    response = self.session.request(
                        method, url, headers=request_headers, json=json, timeout=self.timeout
                    )
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                ) as exc:
                    failure = exc
                    self._observe(budget, None, started)
                else:
                    self._observe(budget, response.status_code, started)
                    if response.status_code >= 400:
                        server_wait = server_delay(response.headers, self.clock.time())
                    if response.status_code in retry.retry_statuses and server_wait is not None:
                        # Pause before our slot is freed, so a thread waiting for it
                        # cannot send in the moment between the two.
                        budget.pause_for(server_wait)
                    elif response.status_code < 400:
                        remaining = rate_limit_remaining(response.headers)
                        if remaining is not None:
                            budget.observe_remaining(remaining)
            if failure is not None:
                safe = repeatable or isinstance(failure, requests.ConnectTimeout)
                if last or not safe:
                    raise TransportError(method, url, failure) from failure
                wait = retry.backoff(attempt, self.rng)
                log.info("%s %s: %s; retry in %.1fs", method, url, type(failure).__name__, wait)
                self.clock.sleep(wait)
                continue
            if response.status_code < 400:
                return response
            if (
                response.status_code in retry.retry_statuses
                and not last
                and (server_wait is None or server_wait <= retry.max_wait_s)
            ):
                if server_wait is None:
                    server_wait = retry.backoff(attempt, self.rng)
                    self.clock.sleep(server_wait)
                # else: the budget's pause holds the next attempt back.
                log.info(
                    "%s %s: %s; retry in %.1fs", method, url, response.status_code, server_wait
                )
                continue
            raise error_for(method, url, response, retry_after=server_wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _observe(self, budget: Budget, status: int | None, started: float) -> None:
        # Wall time on purpose: an injected test clock never moves while the wire does.
        if self.traffic is not None:
            self.traffic.record(budget.name, status, time.perf_counter() - started)


def server_delay(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds a throttled (429/503) answer asked us to wait: its ``Retry-After``.

    ``Retry-After`` is the service's instruction and is followed exactly, never
    lengthened by ``RateLimit-Reset``: that header says when the whole quota is full
    again, not when the next request may go (a 1-second Retry-After with a 60-second
    reset once held all SharePoint traffic for a minute). Only when a throttled answer
    has no ``Retry-After`` but says ``RateLimit-Remaining: 0`` is its reset the wait.
    """
    retry_after = headers.get("Retry-After")
    if retry_after:
        value = retry_after.strip()
        try:
            wait = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            wait = when.timestamp() - now if when is not None else math.nan
        if math.isfinite(wait):
            return max(0.0, wait)
    if rate_limit_remaining(headers) == 0:
        with suppress(ValueError):
            reset = float((headers.get("RateLimit-Reset") or "").strip())
            if math.isfinite(reset):
                return max(0.0, reset)
    return None


def rate_limit_remaining(headers: Mapping[str, str]) -> float | None:
    """``RateLimit-Remaining`` (SharePoint's early warning from 80% of the minute used),
    or None when absent or unreadable. A warning to slow down, not a pause."""
    value = headers.get("RateLimit-Remaining")
    if not value:
        return None
    try:
        remaining = float(value.strip())
    except ValueError:
        return None
    return remaining if math.isfinite(remaining) and remaining >= 0 else None


def error_for(
    method: str, url: str, response: requests.Response, *, retry_after: float | None = None
) -> HttpError:
    """The typed error for an error response, with the service's request id and message."""
    status = response.status_code
    cls: type[HttpError]
    if status in _THROTTLE_STATUSES:
        cls = ThrottledError
    elif status in _STATUS_ERRORS:
        cls = _STATUS_ERRORS[status]
    elif 400 <= status < 500:
        cls = ClientError
    else:
        cls = ServerError
    request_id = next(
        (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
    )
    if request_id is None:
        request_id = response.request.headers.get("client-request-id") if response.request else None
    return cls(
        method,
        url.split("?", 1)[0],
        status,
        request_id=request_id,
        body_excerpt=_excerpt(response),
        retry_after=retry_after,
    )


def _excerpt(response: requests.Response) -> str:
    """The service's own error code and message when it sent JSON, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    if isinstance(body, dict):
        for key in ("error", "message"):  # Entra-style and Bot Connector-style bodies
            if isinstance(body.get(key), str):
                return str(body[key])
    return response.text[:500]


def with_query(url: str, params: Mapping[str, str | int] | None) -> str:
    """Append a query string, keeping OData syntax readable (``$filter``, ``fields(select=…)``)."""
    if not params:
        return url
    query = urlencode({k: str(v) for k, v in params.items()}, quote_via=quote, safe=_QUERY_SAFE)
    return f"{url}{'&' if '?' in url else '?'}{query}"


class ApiClient:
    """One service at one base URL: the httpx ``Client(base_url=…)`` of this package."""

    def __init__(
        self,
        core: HttpCore,
        base_url: str,
        *,
        tokens: TokenProvider | None,
        budget: Budget,
        retry: RetryPolicy,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base URL is not an http(s) URL: {base_url!r}")
        self.core = core
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.budget = budget
        self.retry = retry
        self._origin = (parts.scheme, parts.netloc.lower())

    def url(self, path: str) -> str:
        """Absolute URL for ``path``; an absolute URL (a nextLink) must stay on our host."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            if (parts.scheme, parts.netloc.lower()) != self._origin:
                raise M365Error(
                    f"refusing to send our token to {parts.scheme}://{parts.netloc}: "
                    f"not the configured {self.base_url}"
                )
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        budget: Budget | None = None,
        cost: float = 1.0,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request relative to the base URL (or to a same-host absolute URL)."""
        return self.core.send(
            method,
            with_query(self.url(path), params),
            tokens=self.tokens,
            budget=budget or self.budget,
            retry=self.retry,
            cost=cost,
            json=json,
            headers=headers,
            idempotent=idempotent,
        )

    def get_json(self, path: str, **options: Any) -> dict[str, Any]:
        """GET and decode a JSON object."""
        return json_object(self.request("GET", path, **options))


def json_object(response: requests.Response) -> dict[str, Any]:
    """The response body as a JSON object, or an error that says what came back instead."""
    try:
        body = response.json()
    except ValueError as exc:
        raise M365Error(
            f"{response.request.method if response.request else ''} {response.url}: "
            f"expected JSON, got {response.headers.get('Content-Type', 'no content type')}"
        ) from exc
    if not isinstance(body, dict):
        raise M365Error(f"{response.url}: expected a JSON object, got {type(body).__name__}")
    return body
