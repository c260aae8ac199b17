"""The click benchmark's bare endpoint: only checks the Bot Framework token, as serve does.

``python bench/bare_bot.py PORT`` with serve's ``M365PERF_*`` settings in the
environment: the same FastAPI, the same uvicorn call (``web.app.serve_app``), the same
verifier (``web.bot_auth.BotTokenVerifier.from_settings``) run in the thread pool as
``/api/messages`` runs the bot; then an empty invoke answer. What a click costs beyond
this is the engine's and the store's.
"""

from __future__ import annotations

import json
import sys

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from m365perf.settings import load_settings
from m365perf.web.app import serve_app
from m365perf.web.bot_auth import BotAuthError, BotTokenVerifier


def app() -> FastAPI:
    verifier = BotTokenVerifier.from_settings(load_settings())
    bare = FastAPI()

    @bare.post("/api/messages")
    async def messages(request: Request) -> Response:
        activity = json.loads(await request.body())
        try:
            caller = await run_in_threadpool(
                verifier.verify, request.headers.get("authorization"), activity
            )
        except BotAuthError:
            return Response(status_code=401)
        body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message"}
        return Response(
            json.dumps({**body, "value": caller.user_id}), media_type="application/json"
        )

    @bare.get("/health")
    async def health() -> Response:
        return Response("{}", media_type="application/json")

    return bare


if __name__ == "__main__":
    serve_app(app(), "127.0.0.1", int(sys.argv[1]))
