"""What can go wrong talking to Microsoft 365, as one exception tree.

The dispatcher catches :class:`M365Error` and reads two attributes to decide
what to do next; the clients never decide it themselves:

* ``transient`` — True when the same request may succeed later unchanged
  (throttling, timeouts, 5xx); False when retrying cannot help (4xx, bad
  credentials, duplicate keys).
* ``retry_after`` — seconds the service asked us to wait, or None.

::

    M365Error                      transient / retry_after as documented per class
    ├── TransportError             connect/read timeout, dropped connection (transient)
    ├── HttpError                  error status; .status .request_id .body_excerpt
    │   ├── ThrottledError         429/503/504 after our retries (transient, retry_after)
    │   ├── ClientError            other 4xx, never retried (permanent)
    │   │   ├── BadRequest         400 (e.g. filter on a non-indexed column)
    │   │   ├── Unauthorized       401 and 403
    │   │   ├── NotFound           404
    │   │   └── PreconditionFailed 412 (stale eTag on an update)
    │   └── ServerError            other 5xx (transient)
    ├── BatchError                 $batch sub-requests that failed for good; .failures .succeeded
    ├── AuthError                  token acquisition failed (transient only for outages)
    ├── DuplicateKeyError          a keyed SharePoint list holds two items with one key (permanent)
    └── WaitTimeout                a Power BI refresh did not finish in time (transient)

Errors never carry the ``Authorization`` header, the client secret or an access
token: only the method, the URL, the status, the service's request id and a short
excerpt of the response body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from m365perf.errors import M365PerfError

_EXCERPT_CHARS = 500


class M365Error(M365PerfError):
    """Base of every error raised by ``m365perf.m365``."""

    transient: bool = False
    retry_after: float | None = None


class TransportError(M365Error):
    """The request never got a response: timeout, refused or dropped connection."""

    transient = True

    def __init__(self, method: str, url: str, cause: BaseException) -> None:
        super().__init__(f"{method} {url}: {type(cause).__name__}: {cause}")
        self.method = method
        self.url = url


class HttpError(M365Error):
    """The service answered with an error status."""

    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        *,
        request_id: str | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.request_id = request_id
        self.body_excerpt = body_excerpt[:_EXCERPT_CHARS]
        self.retry_after = retry_after
        detail = f" [request-id {request_id}]" if request_id else ""
        text = f": {self.body_excerpt}" if self.body_excerpt else ""
        super().__init__(f"{method} {url} -> {status}{detail}{text}")


class ThrottledError(HttpError):
    """Throttled (429) or busy (503/504) after every retry we were allowed."""

    transient = True


class ClientError(HttpError):
    """A 4xx the service will give again for the same request."""

    transient = False


class BadRequest(ClientError):
    """400: malformed request, or a filter on a column that is not indexed."""


class Unauthorized(ClientError):
    """401/403: the token is wrong, or the app lacks the permission or the grant."""


class NotFound(ClientError):
    """404: no such site, list, item, user or dataset."""


class PreconditionFailed(ClientError):
    """412: the item changed since its eTag was read."""


class ServerError(HttpError):
    """A 5xx other than the throttling statuses; retrying later may work."""

    transient = True


@dataclass(frozen=True)
class BatchFailure:
    """One sub-request of a ``$batch`` that did not succeed."""

    id: str
    status: int
    message: str
    retry_after: float | None = None

    _TRANSIENT_STATUSES: ClassVar[frozenset[int]] = frozenset({429, 500, 502, 503, 504})

    @property
    def transient(self) -> bool:
        """True when the sub-request may succeed if sent again later."""
        return self.status in self._TRANSIENT_STATUSES


class BatchError(M365Error):
    """Some sub-requests of a ``$batch`` failed for good; the rest took effect.

    ``succeeded`` maps the ids that did go through to their responses, so a caller
    can record them (a created item's id, say) before handling the failures.
    """

    def __init__(self, failures: Sequence[BatchFailure], succeeded: Mapping[str, Any]) -> None:
        self.failures = list(failures)
        self.succeeded = dict(succeeded)
        self.transient = bool(self.failures) and all(f.transient for f in self.failures)
        waits = [f.retry_after for f in self.failures if f.retry_after is not None]
        self.retry_after = max(waits) if waits else None
        lines = "; ".join(f"{f.id}: {f.status} {f.message}" for f in self.failures)
        super().__init__(f"{len(self.failures)} batch sub-request(s) failed: {lines}")


class AuthError(M365Error):
    """No access token: bad credentials, wrong tenant or scope, or the login service is down."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class DuplicateKeyError(M365Error):
    """A list meant to hold one item per key holds several; a person must tidy it."""

    def __init__(self, key: tuple[str, ...], item_ids: Sequence[str]) -> None:
        super().__init__(f"key {key!r} is held by several items: {', '.join(item_ids)}")
        self.key = key
        self.item_ids = list(item_ids)


class WaitTimeout(M365Error):
    """Polling gave up before the operation reached a final state."""

    transient = True


def never_reached(exc: BaseException) -> bool:
    """True when a request failed before any connection was made (refused, connect timeout).

    Nothing reached Microsoft 365, so nothing was sent: this is an outage (or a network
    cut) rather than a fault of the message. The token request counts too: it is chained
    as the cause of an :class:`AuthError`.
    """
    from requests import ConnectTimeout
    from urllib3.exceptions import NewConnectionError

    seen: BaseException | None = exc
    for _ in range(8):  # causes and contexts chain a few deep; never loop forever
        if seen is None:
            return False
        if isinstance(seen, ConnectTimeout | NewConnectionError):
            return True
        reason = getattr(seen.args[0], "reason", None) if seen.args else None
        if isinstance(reason, NewConnectionError | ConnectTimeout):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
