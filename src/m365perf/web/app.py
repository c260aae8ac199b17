"""The service's HTTP face: the bot endpoint for Teams and Outlook clicks, health and status.

``POST /api/messages`` is the one endpoint the Bot Framework calls, for Teams and for
Outlook actionable e-mails alike. Nothing in a request is believed until its token is
proven (:mod:`m365perf.web.bot_auth`): the body is read (size-limited) and parsed as
JSON only because the check needs the activity's ``serviceUrl`` and ``channelId``. Then:

* ``invoke`` / ``adaptiveCard/action`` — a card click. The engine acts for the verified
  caller (the token's user, never an id or e-mail from the card's data) and the reply,
  a Universal Actions invoke response, replaces the card. A refusal the engine explains
  (:class:`~m365perf.engine.ActionError`) is an error invoke response, still HTTP 200, so
  Teams and Outlook show its message on the card.
* ``message`` with a ``value`` — the ``Action.Submit`` fallback of an older Teams
  client: acted on like ``Action.Execute``; since Teams ignores the HTTP reply to a
  message, the answer replaces the clicked card through the outbox.
* ``conversationUpdate`` in a 1:1 Teams chat — remember where to reach its sender (only
  the sender: never the other members it lists; and no click the engine refused counts).
* anything else — 200 and nothing done: the bot does not chat.

``GET /health`` reads the store only (and says whether Microsoft 365 is reachable);
``/health/live`` answers while the process does, ``/health/ready`` adds the queue. The
staff pages, ``GET /status`` (``/status.json``),
need a person signed in with Entra ID (:mod:`m365perf.web.signin`) who is a member of a
group a flow names (``staff_group``); anyone else is sent to sign in (HTML), answered
401 (JSON) or 403 (signed in, not staff). ``/approvals`` is the approvers' web page
(:mod:`m365perf.web.approvals`).

``part`` splits the routes between two listeners: ``"public"`` is what Microsoft and
partners must reach (``/api/messages``, ``/returns/…``, ``/health``); ``"staff"`` is
sign-in, approvals and status (and ``/health``); ``"all"`` (one listener) is both.
``GET /about`` is the public page the Teams app's privacy and terms links name.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from m365perf.engine import ActionError, Caller, Engine
from m365perf.engine.carddata import check_characters
from m365perf.logs import CORRELATION_HEADER, accept_correlation_id, correlated
from m365perf.m365.traffic import Traffic
from m365perf.store import OutboxStatus
from m365perf.web.about import add_about_page
from m365perf.web.approvals import add_approvals
from m365perf.web.bot_auth import (
    BotAuthError,
    BotTokenVerifier,
    KeysUnavailable,
    UnknownCaller,
    VerifiedCaller,
)
from m365perf.web.limits import BoundedInput, refuse_bad_parameters
from m365perf.web.links import LinkSigner
from m365perf.web.metrics import CONTENT_TYPE as METRICS_TYPE
from m365perf.web.metrics import render_metrics
from m365perf.web.return_form import add_return_form
from m365perf.web.return_pages import render_problem
from m365perf.web.signin import SignIn, WebSession, add_signin, read_form
from m365perf.web.status import OutageSource, gather_status
from m365perf.web.status_page import RETRY_PATH, STYLE_HASH, render_status_html

AppPart = Literal["all", "public", "staff"]

log = logging.getLogger(__name__)

MAX_ACTIVITY_BYTES = 256 * 1024
"""Card clicks are a few kilobytes; anything near this is not one of ours."""

CARD_RESPONSE_TYPE = "application/vnd.microsoft.card.adaptive"
ERROR_RESPONSE_TYPE = "application/vnd.microsoft.error"
_CARD_ACTION = "adaptiveCard/action"
_TEAMS = "msteams"
_PERSONAL = "personal"
_FRESH = {"Cache-Control": "no-store"}
_STATUS_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_SORRY = "Something went wrong on our side. Please try again in a few minutes."
_NO_SIGNIN = (
    "Sign-in is not set up",
    "This page needs sign-in with Entra ID, which this service has not been configured "
    "for (M365PERF_SESSION_SECRET with the app registration's client id and credential).",
)


class _BodyTooLarge(Exception):
    pass


def create_app(
    engine: Engine,
    verifier: BotTokenVerifier,
    *,
    clock: Callable[[], datetime],
    links: LinkSigner | None = None,
    contact: str = "",
    signin: SignIn | None = None,
    part: AppPart = "all",
    traffic: Traffic | None = None,
    metrics_token: str | None = None,
    outage: OutageSource = lambda: None,
) -> FastAPI:
    """The web application over one engine; ``clock`` gives "now" for every action.

    ``contact`` (the service mailbox) is who the public ``/about`` page says to ask.

    ``links`` checks the signed links to the owners' web form (``/returns/{token}``);
    without it those links are refused. ``signin`` is web sign-in; without it the staff
    pages and the approvals page refuse everyone. ``/metrics`` (on the staff side) adds
    ``traffic``, the process's Microsoft 365 requests, and lets in a scraper that sends
    ``metrics_token`` as a bearer token. ``outage`` says whether the dispatcher can reach
    Microsoft 365, for ``/health`` and ``/status``.
    """
    app = FastAPI(
        title="m365perf",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BoundedInput)
    refuse_bad_parameters(app)

    def readiness() -> tuple[int, dict[str, Any]]:
        """Whether this instance can do its work: the store, Microsoft 365, the queue."""
        try:
            with engine.store.transaction() as tx:
                counts = tx.outbox_counts()
        except Exception:  # any failure to read the store means "not ready"
            log.exception("health check could not read the store")
            return 503, {"status": "unavailable", "store": "unreachable"}
        outbox = {str(status): counts.get(status, 0) for status in OutboxStatus}
        body: dict[str, Any] = {"status": "ok", "outbox": outbox}
        current = outage()
        if current is not None:
            body["status"] = "degraded"
            body["outage"] = {
                "service": "Microsoft 365",
                "since": current.since.isoformat(),
                "error": current.error,
            }
        return 200, body

    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """One correlation id per request (the caller's, if plain), logged and returned."""
        value = accept_correlation_id(request.headers.get(CORRELATION_HEADER))
        with correlated(value):
            response = await call_next(request)
        response.headers[CORRELATION_HEADER] = value
        return response

    @app.get("/health")
    def health() -> JSONResponse:
        status, body = readiness()
        return JSONResponse(body, status_code=status)

    @app.get("/health/live")
    def live() -> JSONResponse:
        """The process answers; it reads nothing, so an outage elsewhere never restarts it."""
        return JSONResponse({"status": "alive"})

    @app.get("/health/ready")
    def ready() -> JSONResponse:
        """Ready while the store answers; a Microsoft 365 outage is reported, not refused.

        Clicks and form posts are recorded without Microsoft 365 (their messages wait in
        the outbox), so an outage there is "degraded", still HTTP 200.
        """
        status, body = readiness()
        if status == 200:
            outbox = body["outbox"]
            body["store"] = "ok"
            body["queue"] = outbox["pending"] + outbox["in_flight"]
            body["microsoft365"] = "unreachable" if "outage" in body else "reachable"
        return JSONResponse(body, status_code=status)

    if part in ("all", "public"):
        _add_public(app, engine, verifier, clock, links, contact)
    if part in ("all", "staff"):
        _add_staff(app, engine, clock, signin, outage)
        _add_metrics(app, engine, clock, signin, traffic, metrics_token)
    return app


def _add_public(
    app: FastAPI,
    engine: Engine,
    verifier: BotTokenVerifier,
    clock: Callable[[], datetime],
    links: LinkSigner | None,
    contact: str,
) -> None:
    """What Microsoft (the Bot Framework), partners (the web form) and the Teams app's
    privacy and terms links (``/about``) must reach."""
    bot = _Bot(engine, verifier, clock)
    add_return_form(app, engine, links, clock=clock)
    add_about_page(app, contact=contact)

    @app.post("/api/messages")
    async def messages(request: Request) -> Response:
        try:
            body = await _read_limited(request, MAX_ACTIVITY_BYTES)
        except _BodyTooLarge:
            return _problem(413, "request body too large")
        activity = _parse_activity(body)
        if activity is None:
            return _problem(400, "request body is not a JSON object")
        authorization = request.headers.get("authorization")
        return await run_in_threadpool(bot.handle, authorization, activity)


def _add_staff(
    app: FastAPI,
    engine: Engine,
    clock: Callable[[], datetime],
    signin: SignIn | None,
    outage: OutageSource,
) -> None:
    """Sign-in, the approvers' page and the staff pages, all behind Entra sign-in."""
    if signin is not None:
        add_signin(app, signin)
        add_approvals(app, engine, signin, clock=clock)
    else:

        @app.get("/approvals", response_class=HTMLResponse)
        @app.get("/approvals/{cycle_id}", response_class=HTMLResponse)
        def no_signin() -> Response:
            return HTMLResponse(render_problem(*_NO_SIGNIN), status_code=503, headers=_FRESH)

    def refused(request: Request, json: bool) -> Response | None:
        """None for a signed-in member of a staff group; else the refusal to send."""
        if signin is None:
            if json:
                return _problem(403, _NO_SIGNIN[1])
            return HTMLResponse(render_problem(*_NO_SIGNIN), status_code=403, headers=_FRESH)
        session = signin.current(request)
        if session is None:
            if json:
                return _problem(401, "sign in first: open /status in a browser")
            return RedirectResponse(signin.signin_url(request.url.path), status_code=302)
        if not signin.is_staff(session):
            message = (
                f"You are signed in as {session.name}, who is not a member of the "
                "performance team's group, so the staff pages are not open to you."
            )
            if json:
                return _problem(403, message)
            return HTMLResponse(
                render_problem("Not for you", message, "Ask the performance team to add you."),
                status_code=403,
                headers=_FRESH,
            )
        return None

    @app.get("/status", response_class=HTMLResponse)
    async def status_page(request: Request) -> Response:
        refusal = refused(request, json=False)
        if refusal is not None:
            return refusal
        return await run_in_threadpool(
            _status_html, engine, clock, outage, _session(signin, request), ()
        )

    @app.get("/status.json")
    def status_json(request: Request) -> Response:
        refusal = refused(request, json=True)
        if refusal is not None:
            return refusal
        try:
            report = gather_status(engine.store, engine.flows, now=clock(), outage=outage())
        except Exception:  # the report cannot be made without the store
            log.exception("status report could not read the store")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse(report.as_json(), headers=_FRESH)

    @app.post(RETRY_PATH, response_class=HTMLResponse)
    async def retry_parked(message_id: int, request: Request) -> Response:
        form = await read_form(request)
        refusal = refused(request, json=False)
        if refusal is not None:
            if isinstance(refusal, RedirectResponse):  # not signed in: nothing was retried
                return HTMLResponse(
                    render_problem(
                        "Please sign in",
                        "You are not signed in, so no message was retried.",
                        "Sign in, open the status page and retry there.",
                    ),
                    status_code=401,
                    headers=_FRESH,
                )
            return refusal
        session = _session(signin, request)
        if (
            session is None
            or signin is None
            or not signin.csrf_ok(request, session, form.get("csrf"))
        ):
            return HTMLResponse(
                render_problem(
                    "Nothing changed",
                    "This form did not come from your status page, so no message was retried.",
                    "Open the status page again and retry there.",
                ),
                status_code=403,
                headers=_FRESH,
            )
        status = 200
        try:
            await run_in_threadpool(
                partial(engine.retry_parked, message_id, by=session.user_id, now=clock())
            )
            note = f"Message {message_id} is back in the queue: it will be sent again shortly."
        except ActionError as refused_retry:
            note, status = f"Nothing changed: {refused_retry.message}", refused_retry.status
        except Exception:  # a store failure must not show a traceback
            log.exception("retrying outbox message %s failed", message_id)
            return HTMLResponse(_UNAVAILABLE_HTML, status_code=503)
        return await run_in_threadpool(
            _status_html, engine, clock, outage, session, (note,), status
        )


def _session(signin: SignIn | None, request: Request) -> WebSession | None:
    return signin.current(request) if signin is not None else None


def _status_html(
    engine: Engine,
    clock: Callable[[], datetime],
    outage: OutageSource,
    session: WebSession | None,
    notes: tuple[str, ...],
    status: int = 200,
) -> HTMLResponse:
    """The status page read now (503 when the store cannot be read)."""
    try:
        report = gather_status(engine.store, engine.flows, now=clock(), outage=outage())
    except Exception:  # the page cannot be drawn without the store
        log.exception("status page could not read the store")
        return HTMLResponse(_UNAVAILABLE_HTML, status_code=503)
    html = render_status_html(
        report,
        signed_in_as=session.name if session else "",
        csrf=session.csrf if session else "",
        notes=notes,
    )
    return HTMLResponse(html, status_code=status, headers={**_FRESH, **_STATUS_HEADERS})


def _add_metrics(
    app: FastAPI,
    engine: Engine,
    clock: Callable[[], datetime],
    signin: SignIn | None,
    traffic: Traffic | None,
    token: str | None,
) -> None:
    """``/metrics`` for a scraper with the bearer token, or for signed-in staff."""

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        if not _may_read_metrics(request, signin, token):
            return Response(
                "metrics need the bearer token (M365PERF_METRICS_TOKEN) or a staff sign-in\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"', **_FRESH},
            )
        try:
            body = render_metrics(engine.store, engine.flows, traffic, now=clock())
        except Exception:  # no figures without the store: say so, as /health does
            log.exception("metrics could not read the store")
            return Response("store unavailable\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=METRICS_TYPE, headers=_FRESH)


def _may_read_metrics(request: Request, signin: SignIn | None, token: str | None) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and given:
        return hmac.compare_digest(given.strip().encode(), token.encode())
    session = signin.current(request) if signin is not None else None
    return session is not None and signin is not None and signin.is_staff(session)


def serve_app(app: FastAPI, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted (``m365perf serve``).

    Uvicorn's access log records method, path and status only, never headers, so the
    bearer tokens stay out of it.
    """
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_config=None)


def serve_apps(listeners: list[tuple[FastAPI, str, int]]) -> None:
    """Run each (app, host, port) with uvicorn in one event loop until interrupted.

    One listener is :func:`serve_app`; two are the public and the staff listener.
    """
    if len(listeners) == 1:
        serve_app(*listeners[0])
        return
    import asyncio
    import contextlib

    import uvicorn

    servers = [
        uvicorn.Server(uvicorn.Config(a, host=h, port=p, log_config=None)) for a, h, p in listeners
    ]

    async def _all() -> None:
        # A signal reaches one server's handler; when one stops, stop them all.
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_all())


# --------------------------------------------------------------------------- the bot


class _Bot:
    """Turns one proven Bot Framework activity into engine calls and an HTTP answer."""

    def __init__(
        self, engine: Engine, verifier: BotTokenVerifier, clock: Callable[[], datetime]
    ) -> None:
        self._engine = engine
        self._verifier = verifier
        self._clock = clock

    def handle(self, authorization: str | None, activity: Mapping[str, Any]) -> Response:
        kind = activity.get("type")
        try:
            caller = self._verifier.verify(authorization, activity)
        except KeysUnavailable:
            return _problem(503, "cannot check the sender's token just now; try again later")
        except UnknownCaller:
            if kind == "invoke":
                return _problem(401, "unauthorized")
            # The token itself was proven (the sender check comes last); an event
            # without an Entra user has nothing for us to do.
            return Response(status_code=200)
        except BotAuthError:
            return _problem(401, "unauthorized")
        if kind == "invoke":
            if activity.get("name") != _CARD_ACTION:
                return _problem(501, "this bot handles adaptive card actions only")
            response, acted = self._card_action(caller, activity)
            if acted:
                self._remember(caller, activity)
            return response
        if kind == "conversationUpdate":
            if _bot_installed(activity):
                self._remember(caller, activity)
        elif kind == "message" and isinstance(activity.get("value"), Mapping):
            self._submit_click(caller, activity)
        return Response(status_code=200)

    def _submit_click(self, caller: VerifiedCaller, activity: Mapping[str, Any]) -> None:
        """An Action.Submit fallback click: acted on as Action.Execute would be."""
        click_id = activity.get("id")
        try:
            answered = self._engine.answer_submit_click(
                Caller(caller.user_id, caller.name),
                activity["value"],
                click_id=click_id if isinstance(click_id, str) else "",
                now=self._clock(),
            )
        except Exception:  # an engine bug must not turn into a retried 500
            log.exception("an Action.Submit click by %s failed", caller.user_id)
            return
        if answered.acted:
            self._remember(caller, activity)
        if not answered.card_replaced:
            log.info("an Action.Submit click by %s named no card of theirs", caller.user_id)

    def _card_action(
        self, caller: VerifiedCaller, activity: Mapping[str, Any]
    ) -> tuple[Response, bool]:
        """The invoke response, and whether the engine acted (a refusal changes nothing)."""
        value = activity.get("value")
        action = value.get("action") if isinstance(value, Mapping) else None
        if not isinstance(action, Mapping):
            return _invoke_error(400, "this click carries no card action"), False
        verb = action.get("verb")
        if not isinstance(verb, str) or not verb.strip():
            return _invoke_error(400, "this card action has no verb"), False
        data = action.get("data")
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            return _invoke_error(400, "this card action's data is not an object"), False
        who = Caller(caller.user_id, caller.name)
        try:
            card = self._engine.handle_action(who, verb, data, now=self._clock())
        except ActionError as refused:
            log.info(
                "card action %r by %s refused (%d): %s",
                verb,
                caller.user_id,
                refused.status,
                refused.message,
            )
            return _invoke_error(refused.status, refused.message), False
        except Exception:  # an engine bug must not leave the user with a spinning card
            log.exception("card action %r by %s failed", verb, caller.user_id)
            return _invoke_error(500, _SORRY), False
        reply = JSONResponse({"statusCode": 200, "type": CARD_RESPONSE_TYPE, "value": card})
        return reply, True

    def _remember(self, caller: VerifiedCaller, activity: Mapping[str, Any]) -> None:
        """Keep the sender's own 1:1 Teams chat, so later cards can be sent to them there.

        Only the verified sender, and only a personal conversation: remembering a group
        chat or channel, or filing the sender's chat under anyone else (a member listed
        in a ``conversationUpdate``), would send someone's cards to another person.
        Callers pass only activities the engine acted on: a refused click tells us
        nothing we may keep.
        """
        conversation = activity.get("conversation")
        conversation_id = caller.conversation_id or ""
        if (
            caller.channel_id != _TEAMS
            or not conversation_id.strip()
            or not caller.service_url.strip()
            or not isinstance(conversation, Mapping)
            or conversation.get("conversationType") != _PERSONAL
        ):
            return
        try:  # no client sends NUL or a lone surrogate; the store could not keep them
            check_characters({"conversation": conversation_id, "service": caller.service_url})
        except ActionError:
            return
        user_id = caller.user_id
        try:
            self._engine.remember_conversation(
                user_id,
                conversation_id=conversation_id,
                service_url=caller.service_url,
                tenant_id=_tenant_id(activity),
                now=self._clock(),
            )
        except Exception:  # the click itself matters more; the next one will try again
            log.exception("could not remember the Teams conversation of %s", user_id)


def _bot_installed(activity: Mapping[str, Any]) -> bool:
    """A ``conversationUpdate`` that adds members: the user installing the bot for themselves.

    Teams names the bot (and perhaps the user) in ``membersAdded`` and the user in
    ``from``; only ``from``, the verified sender, is ever remembered.
    """
    added = activity.get("membersAdded")
    return isinstance(added, list) and bool(added)


def _tenant_id(activity: Mapping[str, Any]) -> str | None:
    conversation = activity.get("conversation")
    if isinstance(conversation, Mapping) and isinstance(conversation.get("tenantId"), str):
        return str(conversation["tenantId"])
    channel_data = activity.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
    if isinstance(tenant, Mapping) and isinstance(tenant.get("id"), str):
        return str(tenant["id"])
    return None


# --------------------------------------------------------------------------- plumbing


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_activity(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested too deep to be ours
        return None
    return parsed if isinstance(parsed, dict) else None


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _invoke_error(status: int, message: str) -> JSONResponse:
    """A Universal Actions error response; HTTP 200 so the client shows ``message``.

    ``code`` is the status's name in the form Microsoft's SDKs use ("BadRequest",
    "Forbidden", "NotFound", "InternalServerError").
    """
    try:
        code = HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        code = "Error"
    return JSONResponse(
        {
            "statusCode": status,
            "type": ERROR_RESPONSE_TYPE,
            "value": {"code": code, "message": message},
        }
    )


_UNAVAILABLE_HTML = """<!DOCTYPE html>
<html lang="en-GB">
<head><meta charset="utf-8"><title>Performance returns: status unavailable</title></head>
<body><main><h1>Status unavailable</h1>
<p>The service cannot read its database just now. Please try again in a few minutes.</p>
</main></body>
</html>
"""
