"""Failover: two real ``m365perf serve`` processes on one PostgreSQL; the clock's holder is
killed with ``kill -9`` and the other takes the clock over, with nothing done twice.

Full size (more kill-and-takeover rounds)::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability/test_failover.py -q -s
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy
from dependency_support import delivered, free_port, query, sent_twice, wait_for
from reliability_support import report, sized

from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.service import CLOCK_LOCK
from m365perf.store.sql import advisory_lock_id

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "flows" / "annual-statutory-returns.yaml"  # its period opens late: now
TAKEOVER_S = 1.0

pytestmark = pytest.mark.postgres


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path) as running:
        yield running


class Serve:
    """One ``m365perf serve`` process, its JSON log in a file."""

    def __init__(self, name: str, env: dict[str, str], flows: Path, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log_dir / f"serve-{name}.log"
        env = {**env, "M365PERF_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}"}
        command = [sys.executable, "-m", "m365perf", "serve", "--port", str(self.port)]
        command += ["--flows", str(flows), "--tick", "0.5"]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=out)

    def ready(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2).ok
        return False

    def says(self, text: str) -> bool:
        return any(text in line.get("message", "") for line in self.lines())

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def serve_env(sandbox: RunningSandbox, url: str) -> dict[str, str]:
    health = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=10).json()
    env = {k: v for k, v in os.environ.items() if not k.startswith("M365PERF_")}
    env |= {f"M365PERF_{k.upper()}": str(v) for k, v in health["settings"].items()}
    env |= {
        "M365PERF_DATABASE_URL": url,
        "M365PERF_CLOCK_TAKEOVER_S": str(TAKEOVER_S),
        "M365PERF_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    return env


def clock_holders(url: str) -> int:
    (schema,) = query(url, "SELECT current_schema()")[0]
    lock = advisory_lock_id(f"{schema}/{CLOCK_LOCK}")
    rows = query(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        f" AND classid::bigint = {lock >> 32} AND objid::bigint = {lock & 0xFFFF_FFFF}",
    )
    return int(rows[0][0])


def settled(url: str) -> bool:
    """Nothing waiting: every outbox row sent and no timer due now or claimed."""
    busy = query(
        url,
        "SELECT (SELECT count(*) FROM outbox WHERE status IN ('pending', 'in_flight'))"
        " + (SELECT count(*) FROM timer WHERE status = 'claimed'"
        " OR (status = 'pending' AND due_at <= now()))",
    )
    return int(busy[0][0]) == 0


def test_the_survivor_takes_the_clock_and_nothing_is_done_twice(
    sandbox: RunningSandbox, postgres_schema_url: str, tmp_path: Path
) -> None:
    url = postgres_schema_url
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(FLOW, flows / FLOW.name)
    env = serve_env(sandbox, url)
    rounds = sized(1, 4)
    serves = [Serve("a", env, flows, tmp_path)]
    takeovers: list[float] = []
    try:
        wait_for("the first instance answering", serves[0].ready)
        wait_for("the cycle opened and its requests sent", lambda: settled_with_cycle(url))
        for n in range(rounds):
            serves.append(Serve(f"b{n}", env, flows, tmp_path))
            wait_for("the second instance answering", serves[-1].ready)
            holder, survivor = serves[-2], serves[-1]
            assert holder.says("holds the scheduler clock")
            assert not survivor.says("holds the scheduler clock")  # one clock at a time
            before = delivered(sandbox)

            holder.kill()
            takeovers.append(
                wait_for(
                    "the survivor taking the clock",
                    lambda s=survivor: s.says("holds the scheduler clock"),  # type: ignore[misc]
                )
            )
            assert clock_holders(url) == 1
            # Days pass, with only the survivor to act: first the owners' reminders come
            # due, in later rounds whatever timers are left (escalations, digests...).
            which = "kind = 'reminder'" if n == 0 else "true"
            due = query(
                url,
                f"UPDATE timer SET due_at = now() WHERE {which} AND status = 'pending'"
                " RETURNING id",
            )
            assert due or n > 0, "no reminder was waiting to be sent"
            wait_for("the timers fired and their messages sent", lambda: settled(url))
            after = delivered(sandbox)
            assert len(after) > len(before) or not due, "the reminders reached nobody"

        cycles = query(url, "SELECT flow_id, period FROM cycle")
        assert len(cycles) == 1  # opened once, by whichever instance held the clock
        reminders = dict(
            query(url, "SELECT status, count(*) FROM timer WHERE kind = 'reminder' GROUP BY status")
        )
        assert reminders.get("done", 0) >= 1 and "claimed" not in reminders
        duplicates = sent_twice(sandbox)
        assert duplicates == [], f"sent twice: {duplicates[:3]}"
        report(
            "failover",
            rounds=rounds,
            takeover_interval_s=TAKEOVER_S,
            worst_takeover_s=round(max(takeovers), 2),
            cycles_opened=len(cycles),
            duplicate_messages=len(duplicates),
        )
    finally:
        for serve in serves:
            serve.stop()


def settled_with_cycle(url: str) -> bool:
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
        return bool(query(url, "SELECT id FROM cycle")) and settled(url)
    return False
