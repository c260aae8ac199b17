"""Bounded input: every request body is measured, and JSON's nesting counted, before any work.

The endpoints are reached by anyone on the internet before a token or a link is
proven, so nothing may be parsed, logged or handed to the engine until it is known to
be small: :class:`BoundedInput` wraps the whole application (every endpoint, public and
staff) and answers

* **413** to a body over the limit (by its ``Content-Length``, or once that many bytes
  have arrived when it sends none), without reading the rest;
* **400** to a JSON body nested deeper than any activity or form of ours, counted by a
  scan that never recurses, so a 100 KB ``[[[[…`` cannot reach a recursive parser.

The answer is JSON for the bot endpoint and a page a person can read everywhere else.
A body that passes is handed on unchanged. Path and query parameters that do not parse
as the types the routes declare (a cycle id that is not a whole number, or one too big
for the store) are answered 400 with what was wrong, not FastAPI's bare 422.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import accumulate
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from m365perf.web.return_pages import render_problem

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "BoundedInput",
    "json_depth",
    "refuse_bad_parameters",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 256 * 1024
"""A card click is a few kilobytes and a full returns form of 100 indicators with long
commentaries is well under this."""

MAX_JSON_DEPTH = 32
"""A Bot Framework activity nests about six deep; our card data two or three more."""

_API_PREFIX = "/api/"
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deep ``body``'s arrays and objects nest (0 for a bare value), without parsing.

    Brackets inside strings are not counted; malformed JSON gets a number too (the
    parser refuses it later), so this never fails.
    """
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, *accumulate(_STEP[b] for b in brackets))


class BoundedInput:
    """ASGI middleware: refuse an oversized or over-nested body before the app sees it."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self._app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self._max_bytes:
            await self._refuse(scope, receive, send, 413, path)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self._max_bytes:
                await self._refuse(scope, receive, send, 413, path)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        is_json = "json" in headers.get("content-type", "") or path.startswith(_API_PREFIX)
        if is_json and json_depth(body) > self._max_depth:
            await self._refuse(scope, receive, send, 400, path)
            return
        await self._app(scope, _replay(body, receive), send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, path: str
    ) -> None:
        if status == 413:
            message = (
                f"The request is larger than this service accepts ({self._max_bytes:,} "
                "bytes), so nothing was saved."
            )
            title, hint = "Too much text", "Shorten the commentaries and submit again."
        else:
            message = (
                f"The request's JSON is nested more than {self._max_depth} deep, which "
                "nothing of ours sends, so nothing was saved."
            )
            title, hint = "Not a request of ours", None
        response: Response
        if path.startswith(_API_PREFIX):
            response = JSONResponse({"error": message}, status_code=status)
        else:
            response = HTMLResponse(
                render_problem(title, message, hint),
                status_code=status,
                headers={"Cache-Control": "no-store", "Connection": "close"},
            )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body already read, then waits as the server's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def refuse_bad_parameters(app: FastAPI) -> None:
    """Answer a path or query parameter that is not the type its route takes with 400."""

    async def bad_parameters(request: Request, error: Exception) -> Response:
        problems = []
        if isinstance(error, RequestValidationError):
            for item in error.errors():
                where = ".".join(str(part) for part in item.get("loc", ()) if part != "path")
                problems.append(f"{where}: {item.get('msg', 'not valid')}")
        message = "This address is not one of ours: " + ("; ".join(problems) or "bad input") + "."
        if request.url.path.startswith(_API_PREFIX):
            return JSONResponse({"error": message}, status_code=400)
        return HTMLResponse(
            render_problem("Not found", message),
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )

    app.add_exception_handler(RequestValidationError, bad_parameters)
