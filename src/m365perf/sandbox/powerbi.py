"""Power BI dataset refresh on shared capacity: trigger, history, the 8-a-day limit.

A refresh's progress is computed from its start time and the configured duration
whenever someone looks, so no background thread runs and a restart loses nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from m365perf.sandbox.core import Sandbox, sandbox_of
from m365perf.sandbox.replies import Reply, powerbi_error
from m365perf.sandbox.store import RefreshRow, iso

router = APIRouter()

_DAY_S = 24 * 3600
_FAIL_NEXT = "powerbi_fail_next"
_NOTIFY_OPTIONS = {"MailOnFailure", "MailOnCompletion", "NoNotification"}
_FAILURE = json.dumps(
    {
        "errorCode": "ModelRefresh_ShortMessage_ProcessingError",
        "errorDescription": "The sandbox was told to fail this refresh.",
    }
)


def _status(refresh: RefreshRow, now: float) -> str:
    if now < refresh.started + refresh.duration_s:
        return "Unknown"
    return "Failed" if refresh.fails else "Completed"


def refresh_json(refresh: RefreshRow, now: float) -> dict[str, Any]:
    status = _status(refresh, now)
    body: dict[str, Any] = {
        "requestId": refresh.request_id,
        "id": refresh.id,
        "refreshType": refresh.refresh_type,
        "startTime": iso(refresh.started),
        "status": status,
    }
    attempt: dict[str, Any] = {"attemptId": 1, "startTime": iso(refresh.started), "type": "Data"}
    if status != "Unknown":
        body["endTime"] = iso(refresh.started + refresh.duration_s)
        attempt["endTime"] = body["endTime"]
    if status == "Failed":
        body["serviceExceptionJson"] = _FAILURE
        attempt["serviceExceptionJson"] = _FAILURE
    body["refreshAttempts"] = [attempt]
    return body


def _dataset_missing(dataset: str) -> Reply:
    return powerbi_error(
        404,
        "ItemNotFound",
        f"Dataset {dataset} is not found! please verify datasetId is correct and user have "
        "sufficient permissions.",
    )


def _not_authorized() -> Reply:
    return powerbi_error(
        401,
        "PowerBINotAuthorizedException",
        "The service principal is not allowed to use Power BI APIs or has no access "
        "to this workspace.",
    )


def _refused(request: Request) -> Reply | None:
    """Power BI's own refusal of an app it does not let in (see ``SandboxApp.powerbi``)."""
    claims = request.scope.get("state", {}).get("claims") or {}
    app_id = claims.get("appid") or claims.get("azp")
    for app in sandbox_of(request).config.apps:
        if app.client_id == app_id and not app.powerbi:
            return _not_authorized()
    return None


def record_scheduled_refresh(sandbox: Sandbox, workspace: str, dataset: str) -> bool:
    """A refresh Power BI's own schedule ran just now (completed); False if no such dataset."""
    if not sandbox.store.dataset_exists(workspace, dataset):
        return False
    now = sandbox.now()
    with sandbox.store.lock:
        sandbox.store.add_refresh(
            RefreshRow(0, str(uuid.uuid4()), workspace, dataset, "Scheduled", now - 60, 30, False)
        )
    return True


def trigger(sandbox: Sandbox, workspace: str, dataset: str, payload: Any, base: str) -> Reply:
    store, config = sandbox.store, sandbox.config
    if not store.dataset_exists(workspace, dataset):
        return _dataset_missing(dataset)
    if payload is not None and not isinstance(payload, dict):
        return powerbi_error(400, "InvalidRequest", "The request body is not valid JSON.")
    body = payload or {}
    enhanced = set(body) - {"notifyOption"}
    if enhanced:
        return powerbi_error(
            400,
            "InvalidRequest",
            "Enhanced refresh parameters are not supported on Shared capacity: "
            + ", ".join(sorted(enhanced)),
        )
    option = body.get("notifyOption")
    if option is not None and option not in _NOTIFY_OPTIONS:
        return powerbi_error(400, "InvalidRequest", f"Invalid notifyOption '{option}'.")
    now = sandbox.now()
    with store.lock:
        recent = store.refreshes(workspace, dataset, since=now - _DAY_S)
        if len(recent) >= config.powerbi_daily_limit:
            return powerbi_error(
                400,
                "InvalidRequest",
                "Invalid dataset refresh request. Number of refresh requests in last 24 hours "
                "exceeded limit",
            )
        if any(_status(r, now) == "Unknown" for r in recent):
            return powerbi_error(
                409,
                "Conflict",
                "Only one refresh operation at a time is accepted for a dataset.",
            )
        fails = store.get_meta(_FAIL_NEXT) == "1"
        if fails:
            store.set_meta(_FAIL_NEXT, "0")
        request_id = str(uuid.uuid4())
        store.add_refresh(
            RefreshRow(
                0, request_id, workspace, dataset, "ViaApi", now, config.powerbi_refresh_s, fails
            )
        )
    location = f"{base}/groups/{workspace}/datasets/{dataset}/refreshes/{request_id}"
    return Reply(
        202, None, {"x-ms-request-id": request_id, "RequestId": request_id, "Location": location}
    )


def history(sandbox: Sandbox, workspace: str, dataset: str, top: str | None, base: str) -> Reply:
    if not sandbox.store.dataset_exists(workspace, dataset):
        return _dataset_missing(dataset)
    limit = 60
    if top is not None:
        if not top.isdigit() or int(top) < 1:
            return powerbi_error(400, "InvalidRequest", f"Invalid $top value '{top}'.")
        limit = min(int(top), 60)
    now = sandbox.now()
    rows = sandbox.store.refreshes(workspace, dataset)[:limit]
    return Reply(
        200,
        {
            "@odata.context": f"{base}/$metadata#refreshes",
            "value": [refresh_json(r, now) for r in rows],
        },
    )


def one(sandbox: Sandbox, workspace: str, dataset: str, request_id: str) -> Reply:
    if not sandbox.store.dataset_exists(workspace, dataset):
        return _dataset_missing(dataset)
    now = sandbox.now()
    for refresh in sandbox.store.refreshes(workspace, dataset):
        if refresh.request_id.lower() == request_id.lower():
            return Reply(200, refresh_json(refresh, now))
    return powerbi_error(404, "ItemNotFound", f"Refresh {request_id} is not found.")


def fail_next_refresh(sandbox: Sandbox) -> None:
    """Make the next accepted refresh end as Failed (a rehearsal of a broken data source)."""
    sandbox.store.set_meta(_FAIL_NEXT, "1")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/powerbi/v1.0/myorg"


_PREFIX = "/powerbi/v1.0/myorg/groups/{workspace}/datasets/{dataset}/refreshes"


@router.post(_PREFIX)
async def post_refresh(workspace: str, dataset: str, request: Request) -> Response:
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError:
        return powerbi_error(
            400, "InvalidRequest", "The request body is not valid JSON."
        ).response()
    refused = _refused(request)
    if refused is not None:
        return refused.response()
    return trigger(sandbox_of(request), workspace, dataset, payload, _base(request)).response()


@router.get(_PREFIX)
async def get_refreshes(workspace: str, dataset: str, request: Request) -> Response:
    top = request.query_params.get("$top") or request.query_params.get("top")
    refused = _refused(request)
    if refused is not None:
        return refused.response()
    return history(sandbox_of(request), workspace, dataset, top, _base(request)).response()


@router.get(_PREFIX + "/{request_id}")
async def get_refresh(workspace: str, dataset: str, request_id: str, request: Request) -> Response:
    refused = _refused(request)
    if refused is not None:
        return refused.response()
    return one(sandbox_of(request), workspace, dataset, request_id).response()
