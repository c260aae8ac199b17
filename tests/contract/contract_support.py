"""What every contract test needs: a real sandbox process and the real clients pointed at it.

Imported by the contract tests (as ``contract_support``). The clients are built the way
the service builds them, ``clients_from_settings(load_settings(...))``, so the MSAL
token flow, the session, the budgets and the retries are all the production ones; only
the base URLs come from the sandbox.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from m365perf.m365.factory import M365, clients_from_settings
from m365perf.m365.http import Limits
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.settings import Settings, load_settings

SHAREPOINT_HOST = "contoso.sharepoint.com"
SITE_PATH = "/sites/performance"
REGISTER = "KPI Register"
RESULTS = "KPI Results"
RESULT_KEY = ("IndicatorId", "Period")


@dataclass
class Bench:
    """One sandbox, the clients talking to it, and the sandbox-only views to check on them."""

    sandbox: RunningSandbox
    settings: Settings
    m365: M365
    health: dict[str, Any]

    @property
    def site_id(self) -> str:
        return str(self.health["site_id"])

    def list_id(self, title: str) -> str:
        return str(self.health["lists"][title])

    @property
    def workspace_id(self) -> str:
        return str(self.health["powerbi_workspace_id"])

    @property
    def dataset_id(self) -> str:
        return str(self.health["powerbi_dataset_id"])

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call a ``/_sandbox`` endpoint (no token, not throttled) and decode its JSON."""
        response = requests.request(
            method, f"{self.sandbox.base_url}/_sandbox{path}", timeout=30, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def requests_log(self, after: int = 0) -> list[dict[str, Any]]:
        """The sandbox's log of emulated requests with an id above ``after``."""
        rows: list[dict[str, Any]] = self.admin("GET", "/requests", params={"after": after})[
            "value"
        ]
        return rows

    def last_request_id(self) -> int:
        """Where the log ends now: pass as ``after`` to see only what a test sends next."""
        rows = self.requests_log()
        return max((int(r["id"]) for r in rows), default=0)

    def directory(self) -> dict[str, dict[str, Any]]:
        """The sandbox's people by UPN, as the test bench sees them (ids, managers)."""
        return {u["upn"]: u for u in self.admin("GET", "/users")["value"]}

    def inbox(self, address: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.admin("GET", f"/mailboxes/{address}")["value"]
        return rows

    def chats(self, upn: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.admin("GET", f"/chats/{upn}")["value"]
        return rows


@contextmanager
def open_bench(data_dir: Path, *, limits: Limits | None = None, **config: Any) -> Iterator[Bench]:
    """Start a sandbox (any ``SandboxConfig`` field in ``config``) and the clients for it."""
    with running_sandbox(data_dir, **config) as sandbox:
        settings = load_settings(**sandbox.settings_overrides())
        m365 = clients_from_settings(settings, limits=limits)
        health = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=30).json()
        try:
            yield Bench(sandbox, settings, m365, health)
        finally:
            m365.close()


class SandboxClock:
    """The clients' :class:`~m365perf.m365.http.Clock`, where sleeping moves the sandbox clock.

    Power BI refresh progress in the sandbox is computed from its clock, so a poll loop
    that "sleeps" this way sees a refresh finish without anyone really waiting.
    """

    def __init__(self, bench: Bench) -> None:
        self._bench = bench
        self._now = 0.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return 1_767_225_600.0 + self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self.slept.append(seconds)
        self._bench.admin("POST", "/clock", json={"advance_s": seconds})
