"""What happens to every emulated call before and after its handler: the wire.

In order: bearer-token check (401), fault dice (503 / 429 / slow / drop), budget (429
with Retry-After), the handler, then one row in the request log. The token endpoint
meets the same dice (it has no bearer token and no budget). Doing this outside the
routes keeps every service's handlers free of cross-cutting code and makes the log
complete, including the requests that never reached a handler.

A dropped connection is dropped after the handler ran: the write happened but the
caller never hears so - the case an idempotent client must survive. A slow response
is held back after the handler ran too, so a client that timed out and tries again
finds its first write already made, never racing it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365perf.sandbox.auth import (
    BOT_AUDIENCES,
    GRAPH_AUDIENCES,
    POWERBI_AUDIENCES,
    TokenProblem,
    verify_bearer,
)
from m365perf.sandbox.core import Sandbox
from m365perf.sandbox.replies import (
    Reply,
    aad_error,
    throttled,
    unauthorized,
    unavailable,
)
from m365perf.sandbox.store import RequestRecord

DROPPED = "m365perf-sandbox-dropped-connection"
"""What the app returns to uvicorn instead of None for a drop: uvicorn then closes the
socket without writing a response (and logs a line the server's log filter hides)."""

_AUDIENCES = {"graph": GRAPH_AUDIENCES, "powerbi": POWERBI_AUDIENCES, "bot": BOT_AUDIENCES}

BudgetRule = Callable[[Sandbox, str, str], tuple[str | None, float]]


_TOKEN_PATH = re.compile(r"^/[^/]+/oauth2/v2\.0/token$")


def api_kind(path: str) -> str | None:
    if path.startswith("/v1.0/"):
        return "graph"
    if path.startswith("/powerbi/"):
        return "powerbi"
    if path.startswith("/botframework/v3/"):
        return "bot"
    return None


async def _send_reply(send: Send, reply: Reply) -> None:
    response = reply.response()
    body = response.body
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": body})


class Wire:
    """ASGI middleware around the whole sandbox app."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox, budget_rules: dict[str, BudgetRule]):
        self.app = app
        self.sandbox = sandbox
        self.budget_rules = budget_rules

    def _record(self, scope: Scope, status: int, **extra: Any) -> None:
        state = scope.get("state", {})
        self.sandbox.store.record(
            RequestRecord(
                at=extra.pop("at", time.time()),
                method=scope["method"],
                path=scope["path"],
                status=status,
                batch_id=state.get("batch_id"),
                **extra,
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        kind = api_kind(scope["path"])
        token_faults = self.sandbox.config.faults.token_endpoint
        if kind is None and token_faults and _TOKEN_PATH.match(scope["path"]):
            await self._token_endpoint(scope, receive, send)
            return
        if kind is None:
            status = await self._forward(scope, receive, send, {})
            self._record(scope, status)
            return
        await self._emulated(kind, scope, receive, send)

    async def _token_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Entra's token endpoint, faulted like the APIs (busy, throttled, slow, dropped)."""
        sandbox, at = self.sandbox, time.time()
        fault = sandbox.dice.draw()
        retry = sandbox.config.faults.retry_after_s
        if fault in ("503", "429"):
            status = int(fault)
            reply = aad_error(
                status,
                "temporarily_unavailable",
                50196 if status == 429 else 90033,
                "The server is temporarily unavailable. Please retry later.",
            )
            reply.headers["Retry-After"] = str(retry)
            await _send_reply(send, reply)
            self._record(scope, status, at=at, retry_after=retry, fault=fault)
            return
        status = await self._forward(scope, receive, send, {}, fault=fault)
        self._record(scope, status, at=at, fault=fault)
        if fault == "drop":
            scope["state"]["drop"] = True

    async def _emulated(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox, at = self.sandbox, time.time()
        try:
            claims = verify_bearer(
                sandbox, Headers(scope=scope).get("authorization"), _AUDIENCES[kind]
            )
        except TokenProblem as problem:
            await _send_reply(send, unauthorized(kind, problem.kind))
            self._record(scope, 401, at=at)
            return
        scope["state"]["claims"] = claims
        budget, cost = self.budget_rules[kind](sandbox, scope["method"], scope["path"])
        fault = sandbox.dice.draw()
        retry = sandbox.config.faults.retry_after_s
        if fault == "503":
            await _send_reply(send, unavailable(kind, retry))
            self._record(scope, 503, at=at, budget=budget, retry_after=retry, fault=fault)
            return
        if fault == "429":
            await _send_reply(send, throttled(kind, budget or kind, retry))
            self._record(scope, 429, at=at, budget=budget, retry_after=retry, fault=fault)
            return
        extra_headers: dict[str, str] = {}
        entered = False
        if budget is not None:
            verdict = sandbox.throttle.take(budget, cost)
            extra_headers = verdict.headers
            concurrency = False
            if verdict.retry_after is None:
                verdict = sandbox.throttle.enter(budget)
                entered = verdict.retry_after is None
                concurrency = not entered
            if verdict.retry_after is not None:
                reply = throttled(kind, budget, verdict.retry_after, concurrency=concurrency)
                reply.headers.update(extra_headers)
                await _send_reply(send, reply)
                self._record(scope, 429, at=at, budget=budget, retry_after=verdict.retry_after)
                return
        try:
            status = await self._forward(scope, receive, send, extra_headers, fault=fault)
        finally:
            if entered and budget is not None:
                sandbox.throttle.leave(budget)
        self._record(scope, status, at=at, budget=budget, fault=fault)
        if fault == "drop":
            scope["state"]["drop"] = True

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra_headers: dict[str, str],
        *,
        fault: str | None = None,
    ) -> int:
        """Run the handler; ``drop`` swallows its response, ``slow`` delays it."""
        status = 500
        drop = fault == "drop"

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if extra_headers:
                    message = dict(message)
                    message["headers"] = list(message.get("headers", [])) + [
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in extra_headers.items()
                    ]
            if message["type"] == "http.response.start" and fault == "slow":
                await asyncio.sleep(self.sandbox.config.faults.slow_s)
            if not drop:
                await send(message)

        await self.app(scope, receive, _send)
        return status
