"""Start a real sandbox server in a subprocess for a test, and stop it afterwards.

A real process on a real port, because the clients under test must go through
their whole HTTP stack (TLS, retries, connection drops), which an in-process test
client would short-circuit.

    with running_sandbox(tmp_path, page_size=3) as sandbox:
        requests.get(f"{sandbox.base_url}/_sandbox/health")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from m365perf.sandbox.config import SandboxConfig

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox process and how to reach it."""

    base_url: str
    tls_base_url: str | None
    config: SandboxConfig
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def ca_file(self) -> Path | None:
        """Pass as ``verify=`` to requests/httpx/MSAL for the https listener."""
        return self.config.ca_file if self.config.tls else None

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def settings_overrides(self) -> dict[str, str]:
        """Keyword arguments for ``m365perf.settings.load_settings`` to use this sandbox."""
        return self.config.settings_overrides()

    def token(self, scope: str = "https://graph.microsoft.com/.default") -> str:
        """A client-credentials token for the default app, fetched over plain HTTP."""
        app = self.config.apps[0]
        response = requests.post(
            f"{self.base_url}/{self.config.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app.client_id,
                "client_secret": app.client_secret or "",
                "scope": scope,
            },
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def retry_after_violations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests sent to a budget before an earlier 429's Retry-After had passed.

    ``records`` is the ``value`` of ``GET /_sandbox/requests``. A well-behaved client
    yields an empty list; each entry is the offending request.

    The parts of one ``$batch`` reach the sandbox one after another but left the client
    together, so a part is never blamed for a 429 given to another part of its own batch.
    """
    # budget -> who was throttled (a batch id, or the request's own id) -> blocked until
    blocked: dict[str, dict[str, float]] = {}
    offenders = []
    for record in sorted(records, key=lambda r: (r["at"], r["id"])):
        budget = record.get("budget")
        if budget is None:
            continue
        sender = record.get("batch_id") or f"request {record['id']}"
        holds = blocked.setdefault(budget, {})
        if any(record["at"] < until for who, until in holds.items() if who != sender):
            offenders.append(record)
        if record["status"] == 429 and record.get("retry_after") is not None:
            until = record["at"] + record["retry_after"]
            holds[sender] = max(holds.get(sender, 0.0), until)
    return offenders


def _wait_ready(process: subprocess.Popen[bytes], ready: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready.exists():
            loaded: dict[str, Any] = json.loads(ready.read_text())
            return loaded
        if process.poll() is not None:
            raise RuntimeError(
                f"sandbox exited with {process.returncode} before it was ready:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.05)
    raise TimeoutError(f"sandbox not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def running_sandbox(
    tmp_path: Path, *, seed: bool = True, **config: Any
) -> Iterator[RunningSandbox]:
    """A sandbox on free ports with its data under ``tmp_path/sandbox-data``.

    ``config`` takes any :class:`SandboxConfig` field (``page_size=3``, ``throttle=False``,
    ``faults=Faults(share_503=0.2)``...). Using the same ``tmp_path`` again reopens the
    same state, which is how a restart is tested.
    """
    settings = SandboxConfig(
        **{"data_dir": tmp_path / "sandbox-data", "port": 0, "tls_port": 0, **config}
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config_file = settings.data_dir / "config.json"
    config_file.write_text(settings.model_dump_json())
    ready = settings.data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    log_file = settings.data_dir / "sandbox.log"
    command = [sys.executable, "-m", "m365perf.sandbox", "--config", str(config_file)]
    command += ["--ready-file", str(ready)] + (["--seed"] if seed else [])
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        ports = _wait_ready(process, ready, log_file)
        actual = settings.model_copy(
            update={"port": ports["port"], "tls_port": ports["tls_port"] or settings.tls_port}
        )
        handle = RunningSandbox(
            base_url=actual.http_base_url,
            tls_base_url=actual.https_base_url,
            config=actual,
            process=process,
            log_file=log_file,
        )
        health = requests.get(f"{handle.base_url}/_sandbox/health", timeout=START_TIMEOUT_S)
        health.raise_for_status()
        yield handle
    finally:
        _stop(process)
