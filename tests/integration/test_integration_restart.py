"""``kill -9`` of a real ``m365perf serve`` with write-backs waiting; the restart finishes them.

The service runs as its own process on the wall clock, against a sandbox process whose
bot endpoint is that service's port. The cycle is opened with ``m365perf cycle open`` (it
reads the register from the sandbox over Graph). Owners return, approvers approve through
``/_sandbox/act``; the final approvals are made while the service is not dispatching, so
every write-back they cause is still in the outbox when the process is killed.

The three runs of ``serve``:

1. ``--tick 0.5``: cards out, returns in, every approval before the performance team's.
2. ``--tick 3600`` (its first tick would come after an hour): the performance team's
   approvals are taken and queued, nothing is sent; then ``kill -9``.
3. ``--tick 0.5``: runs until the outbox is empty.

(A kill in the middle of a send would leave that row to its five-minute lease before a
new process may take it: right, but too slow for a test.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from integration_support import (
    MONTHLY_FILE,
    PERFORMANCE_TEAM,
    People,
    card_text,
    free_port,
    replied_card,
    results_rows,
    sandbox_health,
    wait_for,
)

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.engine.context import LONDON
from m365perf.flows import load_flow
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import (
    OutboxMessage,
    OutboxStatus,
    Return,
    ReturnStatus,
    Store,
    create_store,
)

pytestmark = pytest.mark.slow

NADIA, BEN = PERFORMANCE_TEAM
START_S = 60.0
QUIET_S = 60.0


def _flow_file(directory: Path, health: dict[str, Any]) -> Path:
    """The example monthly flow with three changes for a run on the wall clock.

    Its Power BI dataset is the sandbox's; it opens on the 40th working day after the
    month, so the scheduler in ``serve`` never finds a cycle due (whatever today is) and
    the only cycle is the one the test opens by hand; and it sends one approval card per
    return (the test clicks those), not a digest.
    """
    text = MONTHLY_FILE.read_text()
    changes = {
        r"opens_on_working_day: \d+": "opens_on_working_day: 40",
        r"workspace: [0-9a-f-]+": f"workspace: {health['powerbi_workspace_id']}",
        r"dataset: [0-9a-f-]+": f"dataset: {health['powerbi_dataset_id']}",
        r"cards: digest ": "cards: per_item ",
    }
    for pattern, replacement in changes.items():
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"the example flow no longer has {pattern!r}"
    directory.mkdir()
    path = directory / MONTHLY_FILE.name
    path.write_text(text)
    load_flow(path)  # still a valid flow
    return path


def _environment(health: dict[str, Any], database: Path, port: int) -> dict[str, str]:
    """The service's settings as ``M365PERF_*`` variables, none inherited from this shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("M365PERF_")}
    env.update({f"M365PERF_{k.upper()}": str(v) for k, v in health["settings"].items()})
    env["M365PERF_DATABASE_URL"] = f"sqlite:///{database}"
    env["M365PERF_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Serve:
    """``m365perf serve`` as a child process, and its ``/health``."""

    def __init__(self, workdir: Path, env: dict[str, str], port: int, flows: Path) -> None:
        self.workdir, self.env, self.port, self.flows = workdir, env, port, flows
        self.log = workdir / "serve.log"

    def health(self) -> dict[str, Any] | None:
        with contextlib.suppress(requests.RequestException, ValueError):
            answer = requests.get(f"http://127.0.0.1:{self.port}/health", timeout=2)
            if answer.status_code == 200:
                body: dict[str, Any] = answer.json()
                return body
        return None

    def outbox(self) -> dict[str, int]:
        health = self.health()
        assert health is not None, f"serve stopped answering:\n{self._tail()}"
        return {k: int(v) for k, v in health["outbox"].items()}

    @contextlib.contextmanager
    def running(self, *, tick_s: float) -> Iterator[subprocess.Popen[bytes]]:
        command = [sys.executable, "-m", "m365perf", "serve", "--port", str(self.port)]
        command += ["--flows", str(self.flows), "--tick", str(tick_s)]
        with self.log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_for(
                "serve to answer /health",
                lambda: process.poll() is not None or self.health() is not None,
                timeout_s=START_S,
            )
            assert process.poll() is None, f"serve exited at start-up:\n{self._tail()}"
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)

    def wait_until_sent(self) -> dict[str, int]:
        """Poll ``/health`` until nothing waits in the outbox; nothing may be parked."""
        counts: dict[str, int] = {}

        def quiet() -> bool:
            counts.update(self.outbox())
            return counts["pending"] == 0 and counts["in_flight"] == 0

        wait_for("the outbox to empty", quiet, timeout_s=QUIET_S)
        assert counts["parked"] == 0, f"rows were parked:\n{self._tail()}"
        return counts

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _cycle_open(flow: Path, period: Period, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "m365perf", "cycle", "open", str(flow)]
    done = subprocess.run(
        [*command, "--period", period.label, "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    opened: dict[str, Any] = json.loads(done.stdout)
    return opened


def _approve_everything_before_the_team(people: People, serve: Serve) -> None:
    """Each approver before the performance team approves what reaches them, step by step."""
    others = [upn for upn in people.everyone() if upn not in PERFORMANCE_TEAM]
    for _ in range(5):
        acted = 0
        for upn in others:
            for card in people.approval_cards(upn):
                reply = replied_card(people.act(upn, card, "approve"))
                assert "Approved by" in card_text(reply), card_text(reply)
                acted += 1
        serve.wait_until_sent()
        if not acted:
            return
    raise AssertionError("approvals kept coming after five rounds")


def test_kill_9_with_write_backs_queued_loses_nothing_and_writes_each_row_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    with running_sandbox(tmp_path, bot_endpoint=f"http://127.0.0.1:{port}/api/messages") as sb:
        _run(sb, tmp_path, port)


def _run(sandbox: RunningSandbox, tmp_path: Path, port: int) -> None:
    health = sandbox_health(sandbox)
    flow = _flow_file(tmp_path / "flows", health)
    database = tmp_path / "m365perf.db"
    env = _environment(health, database, port)
    serve = Serve(tmp_path, env, port, flow.parent)
    people = People(sandbox, f"http://127.0.0.1:{port}/api/messages")
    # this month, whose cycle would open weeks from now: no reminder or deadline is due
    period = Period.containing(Frequency.MONTHLY, datetime.now(LONDON).date())

    # --- run 1: cards out, returns in, approvals up to the performance team -------------
    with serve.running(tick_s=0.5):
        opened = _cycle_open(flow, period, env, tmp_path)
        assert opened["created"] and opened["owners"] > 5
        serve.wait_until_sent()
        returns = _returns(database, opened["cycle_id"])
        owners = sorted({r.owner_email or "" for r in returns})
        assert len(owners) == opened["owners"]
        late = owners[-1]  # one owner does not return this time
        for owner in owners:
            if owner == late:
                continue
            card = people.request_card(owner)
            keys = card.data("submitReturns")["versions"]
            inputs = {f"value__{k}": "42" for k in keys} | {
                f"comment__{k}": "Taken from the case system at month end." for k in keys
            }
            reply = replied_card(people.act(owner, card, "submitReturns", inputs))
            verbs = {a.get("verb") for a in find_actions(reply)}
            assert "submitReturns" not in verbs, card_text(reply)
        serve.wait_until_sent()
        _approve_everything_before_the_team(people, serve)
        waiting = people.approval_cards(NADIA)
        assert len(waiting) == sum(1 for r in returns if r.owner_email != late)

    # --- run 2: the final approvals are queued, then the process is killed --------------
    with serve.running(tick_s=3600) as process:
        before = serve.outbox()
        for card in waiting:
            said = card_text(replied_card(people.act(NADIA, card, "approve")))
            assert "Approved by Nadia Clarke" in said and "approved and published" in said
        queued = serve.outbox()
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=15) == -signal.SIGKILL
    # every approval left its write-back waiting in the outbox; nothing was sent
    assert queued["done"] == before["done"] and queued["pending"] > before["pending"]
    assert sorted(m.status for m in _outbox(database, "write_back")) == [
        OutboxStatus.PENDING
    ] * len(waiting)
    assert not [r for r in results_rows(sandbox, health) if r.get("Period") == period.label]

    # --- run 3: the restarted service finishes the job ----------------------------------
    with serve.running(tick_s=0.5):
        counts = serve.wait_until_sent()
    returns = _returns(database, opened["cycle_id"])
    outbox = _outbox(database)

    assert {m.status for m in outbox} == {OutboxStatus.DONE}
    assert counts["done"] == len(outbox)
    approved = sorted(r.indicator_key for r in returns if r.status is ReturnStatus.APPROVED)
    assert approved == sorted(r.indicator_key for r in returns if r.owner_email != late)
    write_backs = Counter(
        m.payload["fields"]["IndicatorId"] for m in outbox if m.kind == "write_back"
    )
    assert write_backs == Counter(approved)

    # SharePoint holds exactly one row per approved return, and nothing for the rest.
    rows = [r for r in results_rows(sandbox, health) if r.get("Period") == period.label]
    assert Counter(r["IndicatorId"] for r in rows) == Counter(approved)

    # Every owner got their one card; Ben's cards now say Nadia decided.
    for owner in owners:
        cards = people.chat_cards(owner)
        assert len(cards) == 1, f"{owner} has {len(cards)} cards"
        assert bool(cards[0].action("submitReturns")) == (owner == late)
    for card in people.chat_cards(BEN):
        assert "Approved by Nadia Clarke" in card.text


@contextlib.contextmanager
def _store(database: Path) -> Iterator[Store]:
    """The service's SQLite file, read from this process (alongside ``serve`` or not)."""
    store = create_store(f"sqlite:///{database}", migrate=False)
    try:
        yield store
    finally:
        store.close()


def _returns(database: Path, cycle_id: int) -> list[Return]:
    with _store(database) as store, store.transaction() as tx:
        return tx.list_returns(cycle_id=cycle_id)


def _outbox(database: Path, kind: str | None = None) -> list[OutboxMessage]:
    with _store(database) as store, store.transaction() as tx:
        return tx.list_outbox(kind=kind)
