"""Sandbox-only endpoints under ``/_sandbox``: what no tenant offers but a rehearsal needs.

Reading mailboxes and chats, the request log, acting as a user, minting odd tokens,
moving the sandbox clock. None of these is checked for a bearer token and none is
throttled or logged: they are the test bench, not the system under test.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from m365perf.sandbox.act import ActRequest, act
from m365perf.sandbox.auth import issue_access_token
from m365perf.sandbox.core import sandbox_of
from m365perf.sandbox.mail import message_json
from m365perf.sandbox.powerbi import fail_next_refresh, record_scheduled_refresh
from m365perf.sandbox.renderer import find_renderer
from m365perf.sandbox.seed import describe, site_id
from m365perf.sandbox.store import ListRow, iso
from m365perf.sandbox.teams import chats_of

router = APIRouter(prefix="/_sandbox")


def _not_found(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=404)


M = TypeVar("M", bound=BaseModel)


async def _model(request: Request, model: type[M]) -> M | Response:
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        return JSONResponse({"error": exc.errors(include_url=False)}, status_code=400)


@router.get("/health")
async def health(request: Request) -> Response:
    sandbox = sandbox_of(request)
    config = sandbox.config
    return JSONResponse(
        {
            "status": "ok",
            "tenant_id": config.tenant_id,
            "http_base_url": config.http_base_url,
            "https_base_url": config.https_base_url,
            "ca_file": str(config.ca_file) if config.tls else None,
            "bot_app_id": config.bot_app_id,
            "bot_endpoint": config.bot_endpoint,
            "throttle": config.throttle,
            "settings": config.settings_overrides(),
            "renderer": find_renderer(config.renderer_dir).as_json(),
            **describe(sandbox),
        }
    )


@router.get("/users")
async def users(request: Request) -> Response:
    return JSONResponse(
        {"value": [dataclasses.asdict(u) for u in sandbox_of(request).store.users()]}
    )


@router.get("/requests")
async def requests_log(request: Request) -> Response:
    """The request log; ``after`` (a row id) and ``budget`` narrow it."""
    after = request.query_params.get("after", "0")
    if not after.isdigit():
        return JSONResponse({"error": "after must be a row id"}, status_code=400)
    rows = sandbox_of(request).store.requests(int(after), request.query_params.get("budget"))
    return JSONResponse({"value": [dataclasses.asdict(r) for r in rows]})


@router.get("/mailboxes/{address}")
async def mailbox(address: str, request: Request) -> Response:
    folder = request.query_params.get("folder", "inbox")
    rows = [m for m in sandbox_of(request).store.messages(address) if m.folder == folder]
    return JSONResponse({"value": [message_json(m) for m in rows]})


@router.get("/chats/{user}")
async def chats(user: str, request: Request) -> Response:
    sandbox = sandbox_of(request)
    found = sandbox.store.user(user)
    if found is None:
        return _not_found(f"no user {user!r}")
    return JSONResponse({"value": chats_of(sandbox, found)})


@router.post("/act")
async def act_as_user(request: Request) -> Response:
    parsed = await _model(request, ActRequest)
    if isinstance(parsed, Response):
        return parsed
    reply = await run_in_threadpool(act, sandbox_of(request), parsed)
    return reply.response()


class TokenRequest(BaseModel):
    """A token minted on demand, e.g. already expired (negative lifetime) or for another API."""

    model_config = ConfigDict(extra="forbid")

    resource: str = "https://graph.microsoft.com"
    client_id: str | None = None
    lifetime_s: int = 3599
    roles: list[str] | None = None


@router.post("/token")
async def mint_token(request: Request) -> Response:
    parsed = await _model(request, TokenRequest)
    if isinstance(parsed, Response):
        return parsed
    sandbox = sandbox_of(request)
    app = sandbox.config.apps[0]
    if parsed.client_id is not None:
        match = [a for a in sandbox.config.apps if a.client_id == parsed.client_id]
        if not match:
            return _not_found(f"no app {parsed.client_id!r}")
        app = match[0]
    if parsed.roles is not None:
        app = app.model_copy(update={"roles": tuple(parsed.roles)})
    token = issue_access_token(sandbox, app, parsed.resource, lifetime_s=parsed.lifetime_s)
    return JSONResponse({"access_token": token, "token_type": "Bearer"})


@router.post("/powerbi/fail-next")
async def powerbi_fail_next(request: Request) -> Response:
    fail_next_refresh(sandbox_of(request))
    return JSONResponse({"next_refresh": "fails"})


class ScheduledRefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace: str
    dataset: str


@router.post("/powerbi/scheduled-refresh")
async def powerbi_scheduled_refresh(request: Request) -> Response:
    """Record a refresh Power BI's own schedule ran (it counts against the daily limit)."""
    parsed = await _model(request, ScheduledRefreshRequest)
    if isinstance(parsed, Response):
        return parsed
    if not record_scheduled_refresh(sandbox_of(request), parsed.workspace, parsed.dataset):
        return _not_found(f"no dataset {parsed.dataset} in workspace {parsed.workspace}")
    return JSONResponse({"recorded": "Scheduled"})


class ClockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_s: float


@router.post("/clock")
async def clock(request: Request) -> Response:
    """Move the sandbox clock forward (Power BI refresh progress and its 24-hour window)."""
    parsed = await _model(request, ClockRequest)
    if isinstance(parsed, Response):
        return parsed
    if parsed.advance_s < 0:
        return JSONResponse({"error": "the clock only moves forward"}, status_code=400)
    offset = sandbox_of(request).advance_clock(parsed.advance_s)
    return JSONResponse({"offset_s": offset})


# a tenant a council got wrong: lists and columns broken on purpose (doctor, provision)

_KINDS = ("text", "number", "boolean", "dateTime")


class ColumnChange(BaseModel):
    """What to change in a column: un-index it, make it (not) required, or change its kind."""

    model_config = ConfigDict(extra="forbid")

    indexed: bool | None = None
    required: bool | None = None
    kind: str | None = None


def _seeded_list(request: Request, title: str) -> ListRow | None:
    sandbox = sandbox_of(request)
    return sandbox.store.list_(site_id(sandbox), title)


@router.delete("/lists/{title}")
async def drop_list(title: str, request: Request) -> Response:
    """Remove a list of the seeded site with its items, as if it had never been made."""
    lst = _seeded_list(request, title)
    if lst is None:
        return _not_found(f"no list {title!r}")
    sandbox_of(request).store.delete_list(lst.id)
    return JSONResponse({"deleted": lst.display_name})


@router.delete("/lists/{title}/columns/{name}")
async def drop_column(title: str, name: str, request: Request) -> Response:
    """Remove a column (its values stay in the items, unreadable, as in SharePoint)."""
    sandbox = sandbox_of(request)
    with sandbox.store.lock:
        lst = _seeded_list(request, title)
        if lst is None or lst.column(name) is None:
            return _not_found(f"no column {name!r} in list {title!r}")
        lst.columns = [c for c in lst.columns if c.name != name]
        lst.modified = iso()
        sandbox.store.put_list(lst)
    return JSONResponse({"list": lst.display_name, "dropped": name})


@router.patch("/lists/{title}/columns/{name}")
async def change_column(title: str, name: str, request: Request) -> Response:
    """Un-index a column, or give it another kind, without the app permissions Graph wants."""
    parsed = await _model(request, ColumnChange)
    if isinstance(parsed, Response):
        return parsed
    if parsed.kind is not None and parsed.kind not in _KINDS:
        return JSONResponse({"error": f"kind is one of {', '.join(_KINDS)}"}, status_code=400)
    sandbox = sandbox_of(request)
    with sandbox.store.lock:
        lst = _seeded_list(request, title)
        column = lst.column(name) if lst is not None else None
        if lst is None or column is None:
            return _not_found(f"no column {name!r} in list {title!r}")
        if parsed.indexed is not None:
            column.indexed = parsed.indexed
        if parsed.required is not None:
            column.required = parsed.required
        if parsed.kind is not None:
            column.kind = parsed.kind
        lst.modified = iso()
        sandbox.store.put_list(lst)
    return JSONResponse({"list": lst.display_name, "column": column.as_json()})
