"""Power BI dataset (semantic model) refresh: trigger, then poll by the request id.

Polling by the id the trigger returned, not "the latest refresh", avoids reading a
scheduled refresh that happened to start at the same time. Whether a failed refresh
is worth another go (shared capacity allows eight a day) is the caller's decision:
:meth:`PowerBIClient.wait_for_refresh` reports the final state, it does not raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from m365perf.m365.errors import M365Error, WaitTimeout
from m365perf.m365.http import ApiClient, Clock, json_object

FINAL_STATUSES = frozenset({"Completed", "Failed", "Disabled"})


@dataclass(frozen=True)
class Refresh:
    """One entry of a dataset's refresh history."""

    request_id: str
    status: str  # Unknown (also: in progress), Completed, Failed, Disabled
    refresh_type: str
    start_time: str | None
    end_time: str | None
    service_exception_json: str | None

    @property
    def finished(self) -> bool:
        """True once the refresh reached a final state."""
        return self.status in FINAL_STATUSES


class PowerBIClient:
    """Dataset refreshes in a workspace (``groups/{id}``)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def trigger_refresh(
        self, workspace_id: str, dataset_id: str, *, notify_option: str | None = None
    ) -> str:
        """Ask for a refresh (202 Accepted); returns the request id to poll with.

        ``notify_option`` is not allowed for service principals, so it is left out
        unless given. Not retried after a timeout: it could start a second refresh.
        """
        body: dict[str, Any] = {}
        if notify_option:
            body["notifyOption"] = notify_option
        response = self._api.request("POST", self._refreshes(workspace_id, dataset_id), json=body)
        request_id = (
            response.headers.get("x-ms-request-id")
            or response.headers.get("RequestId")
            or _last_segment(response.headers.get("Location", ""))
        )
        if not request_id:
            raise M365Error("Power BI accepted the refresh but returned no request id")
        return request_id

    def refresh_history(
        self, workspace_id: str, dataset_id: str, top: int | None = None
    ) -> list[Refresh]:
        """The dataset's recent refreshes, newest first (Power BI keeps 20-60)."""
        if top is not None and top < 1:
            raise ValueError("top must be at least 1")
        params = {"$top": top} if top is not None else None
        body = json_object(
            self._api.request("GET", self._refreshes(workspace_id, dataset_id), params=params)
        )
        return [_refresh(raw) for raw in body.get("value", []) if isinstance(raw, Mapping)]

    def get_refresh(
        self, workspace_id: str, dataset_id: str, request_id: str, *, top: int = 20
    ) -> Refresh | None:
        """The history entry for ``request_id``, or None while it is not listed yet."""
        for refresh in self.refresh_history(workspace_id, dataset_id, top):
            if refresh.request_id.lower() == request_id.lower():
                return refresh
        return None

    def in_flight_refresh(self, workspace_id: str, dataset_id: str) -> Refresh | None:
        """The newest refresh not finished yet, if any (Power BI runs one at a time)."""
        for refresh in self.refresh_history(workspace_id, dataset_id, top=5):
            if not refresh.finished:
                return refresh
        return None

    def wait_for_refresh(
        self,
        workspace_id: str,
        dataset_id: str,
        request_id: str,
        *,
        poll_every_s: float = 30.0,
        timeout_s: float = 3600.0,
        clock: Clock | None = None,
        on_poll: Callable[[Refresh | None], None] | None = None,
    ) -> Refresh:
        """Poll until the refresh is Completed, Failed or Disabled; :class:`WaitTimeout` if not."""
        if poll_every_s <= 0 or timeout_s < 0:
            raise ValueError("poll_every_s must be positive and timeout_s not negative")
        clock = clock or self._api.core.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            refresh = self.get_refresh(workspace_id, dataset_id, request_id)
            if on_poll is not None:
                on_poll(refresh)
            if refresh is not None and refresh.finished:
                return refresh
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                state = refresh.status if refresh else "not listed yet"
                raise WaitTimeout(
                    f"refresh {request_id} of dataset {dataset_id} still {state} "
                    f"after {timeout_s:.0f}s"
                )
            clock.sleep(min(poll_every_s, remaining))

    def _refreshes(self, workspace_id: str, dataset_id: str) -> str:
        if not workspace_id or not dataset_id:
            raise ValueError("workspace_id and dataset_id must not be empty")
        workspace, dataset = quote(workspace_id, safe=""), quote(dataset_id, safe="")
        return f"groups/{workspace}/datasets/{dataset}/refreshes"


def _refresh(raw: Mapping[str, Any]) -> Refresh:
    return Refresh(
        request_id=str(raw.get("requestId") or raw.get("id") or ""),
        status=str(raw.get("status") or "Unknown"),
        refresh_type=str(raw.get("refreshType") or ""),
        start_time=raw.get("startTime"),
        end_time=raw.get("endTime"),
        service_exception_json=raw.get("serviceExceptionJson"),
    )


def _last_segment(location: str) -> str:
    segments = urlsplit(location).path.rstrip("/").split("/")
    return segments[-1] if len(segments) > 1 and segments[-2].lower() == "refreshes" else ""
