"""The HTTP core every Microsoft 365 client shares: one session, retries, budgets.

Why our own retry loop rather than tenacity: the wait before a retry is not a
property of one call but of a *budget* shared by every thread (a 429 pauses all
SharePoint traffic until its ``Retry-After`` has passed), and the wait comes from
response headers; tenacity would need both bolted on, so a 40-line loop is clearer.

Retry rules (the Graph SDKs' rules, which the fact sheet's throttling guidance
matches):

* 429, 503 and 504 are retried up to ``RetryPolicy.max_attempts`` times. The wait is
  the greater of ``Retry-After`` (seconds or an HTTP-date) and ``RateLimit-Reset``;
  when the service gives neither, jittered exponential backoff with a cap. A
  server-given wait pauses the whole budget, across threads. A wait longer than
  ``max_wait_s`` is not sat out in-process: :class:`ThrottledError` is raised at once
  with ``retry_after`` so the dispatcher can reschedule the work.
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


class Budget:
    """A client-side allowance shared by every request that spends from it.

    Three independent gates, each optional: a token bucket (``rate`` units per
    ``per_s`` seconds, e.g. SharePoint resource units per minute or bot sends per
    second), a concurrency limit (e.g. four requests in flight per mailbox), and a
    "blocked until" instant set by a throttling response that every thread honours.
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
    ) -> None:
        if rate is not None and (rate <= 0 or per_s <= 0):
            raise ValueError(f"budget {name}: rate and period must be positive")
        if burst is not None and burst <= 0:
            raise ValueError(f"budget {name}: burst must be positive")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"budget {name}: concurrency must be at least 1")
        self.name = name
        self._clock = clock
        self._per_second = rate / per_s if rate is not None else None
        self._capacity = burst if burst is not None else (rate or 0.0)
        self._tokens = self._capacity
        self._refilled_at = clock.monotonic()
        self._blocked_until = -math.inf
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None

    @property
    def blocked_until(self) -> float:
        """Monotonic instant before which no request may be sent (``-inf`` if none)."""
        with self._lock:
            return self._blocked_until

    def pause_for(self, seconds: float) -> None:
        """Hold every request on this budget for ``seconds`` from now (never shortens)."""
        with self._lock:
            until = self._clock.monotonic() + max(0.0, seconds)
            self._blocked_until = max(self._blocked_until, until)

    @contextmanager
    def spend(self, cost: float = 1.0) -> Iterator[None]:
        """Wait for a slot, the end of any pause and enough tokens; hold the slot inside."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        if self._slots is not None:
            self._slots.acquire()
        try:
            self._wait_turn(cost)
            yield
        finally:
            if self._slots is not None:
                self._slots.release()

    def _wait_turn(self, cost: float) -> None:
        while True:
            with self._lock:
                now = self._clock.monotonic()
                wait = self._blocked_until - now
                if wait <= 0:
                    wait = self._take(cost, now)
                    if wait <= 0:
                        return
            self._clock.sleep(wait)

    def _take(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens and return 0, or return how long until they are there."""
        if self._per_second is None:
            return 0.0
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._per_second)
        self._refilled_at = now
        # A request dearer than the whole bucket waits for a full bucket and goes
        # into debt, rather than waiting forever.
        need = min(cost, self._capacity)
        if self._tokens >= need:
            self._tokens -= cost
            return 0.0
        return (need - self._tokens) / self._per_second


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


@dataclass(frozen=True)
class Limits:
    """The client-side budgets, kept under Microsoft's documented limits.

    Defaults: SharePoint 1,000 resource units a minute (80% of 1,250, the smallest
    tenant band; raise it for larger tenants), four concurrent requests per mailbox,
    30 bot sends a second (the lower of the two published global figures).
    ``sharepoint_concurrency`` caps SharePoint requests in flight (None: no cap); at 1,
    no request is ever on the wire when a 429 arrives, so none can land inside its
    Retry-After window.
    """

    sharepoint_ru_per_minute: float = 1000.0
    sharepoint_ru_burst: float = 100.0
    sharepoint_concurrency: int | None = None
    mailbox_concurrency: int = 4
    bot_sends_per_second: float = 30.0
    batch_rounds: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class Budgets:
    """The shared budgets of one process, handed out by name."""

    def __init__(self, limits: Limits | None = None, clock: Clock | None = None) -> None:
        self.limits = limits or Limits()
        self.clock: Clock = clock or SystemClock()
        self.sharepoint = Budget(
            "sharepoint",
            clock=self.clock,
            rate=self.limits.sharepoint_ru_per_minute,
            per_s=60.0,
            burst=self.limits.sharepoint_ru_burst,
            concurrency=self.limits.sharepoint_concurrency,
        )
        self.graph = Budget("graph", clock=self.clock)
        self.powerbi = Budget("powerbi", clock=self.clock)
        self.bot = Budget("bot", clock=self.clock, rate=self.limits.bot_sends_per_second, per_s=1.0)
        self._mailboxes: dict[str, Budget] = {}
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
                    concurrency=self.limits.mailbox_concurrency,
                )
                self._mailboxes[key] = budget
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
    """Seconds the service asked us to wait: the greater of Retry-After and RateLimit-Reset."""
    waits: list[float] = []
    retry_after = headers.get("Retry-After")
    if retry_after:
        value = retry_after.strip()
        try:
            waits.append(max(0.0, float(value)))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                waits.append(max(0.0, when.timestamp() - now))
    reset = headers.get("RateLimit-Reset")
    if reset:
        with suppress(ValueError):
            waits.append(max(0.0, float(reset.strip())))
    waits = [w for w in waits if math.isfinite(w)]
    return max(waits) if waits else None


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
