"""``create_app``: the sandbox as one ASGI application, state opened from the data dir."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from m365perf.sandbox import admin, auth, graph, inbox, powerbi, renderer, signin, teams
from m365perf.sandbox.config import SandboxConfig
from m365perf.sandbox.core import Sandbox
from m365perf.sandbox.seed import ensure_skeleton, seed_sandbox
from m365perf.sandbox.wire import DROPPED, BudgetRule, Wire


def _fixed_budget(family: str) -> BudgetRule:
    def rule(sandbox: Sandbox, method: str, path: str) -> tuple[str | None, float]:
        return family, 1.0

    return rule


class _SandboxApp(FastAPI):
    """FastAPI that can tell uvicorn to drop the connection (see ``wire.DROPPED``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        await super().__call__(scope, receive, send)
        if scope["type"] == "http" and scope.get("state", {}).get("drop"):
            return DROPPED
        return None


def create_app(config: SandboxConfig, *, seed: bool = False) -> FastAPI:
    """The emulator, its state in ``config.data_dir``; ``seed`` loads the demo council once."""
    sandbox = Sandbox.open(config)
    ensure_skeleton(sandbox)
    if seed:
        seed_sandbox(sandbox)
    app = _SandboxApp(title="m365perf sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox
    for module in (auth, signin, graph, teams, powerbi, admin, inbox, renderer):
        app.include_router(module.router)
    app.add_middleware(
        Wire,
        sandbox=sandbox,
        budget_rules={
            "graph": graph.graph_budget,
            "powerbi": _fixed_budget("powerbi"),
            "bot": _fixed_budget("bot"),
        },
    )
    return app
