"""``kill -9`` of a real ``m365perf serve`` at random points of a cycle, restarted each time.

One cycle is run twice against fresh sandboxes, each time by the same script: the cycle
opened with ``m365perf cycle open``, every owner but one returns, every approver approves
what reaches them (round by round, the performance team's group step last). The first
run is left alone; in the second, ``serve`` is killed with SIGKILL a short random time
after randomly chosen clicks (while it is sending what the click queued) and started
again. Both runs end with the same SharePoint results, returns, audit trail and timers, every
outbox row sent, at most one extra message per crash, and no card still offering buttons
for a decision already made. The lease is two seconds (``M365PERF_WORKER_LEASE_S``), so a
dead worker's rows come back quickly.

Full size (10 crashes)::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability/test_crashes.py -s
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from integration_support import (
    PERFORMANCE_TEAM,
    People,
    Serve,
    cycle_open,
    free_port,
    results_rows,
    sandbox_health,
    serve_environment,
    serve_flow_file,
)
from reliability_support import report, sized

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.engine.context import LONDON
from m365perf.rehearsal_faults import WALL_CLOCK_FIELDS, comparable_result
from m365perf.sandbox.testing import running_sandbox
from m365perf.store import OutboxStatus, TimerStatus, create_store

pytestmark = pytest.mark.slow

CRASHES = sized(3, 10)
LEASE_S = 2
SEED = 20261202


@dataclass
class Final:
    """What one run of the cycle left behind."""

    results: Counter[tuple[tuple[str, str], ...]]
    returns: dict[str, str]
    audit: Counter[tuple[Any, ...]]
    outbox: Counter[str]
    timers: Counter[tuple[str, str]]
    messages: int
    live_buttons: list[str]
    clicks: int
    crashes: int


class Crashable:
    """``serve`` that can be killed with SIGKILL and started again on the same database."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self._stack = contextlib.ExitStack()
        self._process: subprocess.Popen[bytes] | None = None
        self.crashes = 0

    def start(self) -> None:
        self._process = self._stack.enter_context(self.serve.running(tick_s=0.2))

    def crash(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        assert self._process.wait(timeout=15) == -signal.SIGKILL
        self._stack.close()
        self.crashes += 1
        self.start()

    def close(self) -> None:
        self._stack.close()


def _run_cycle(tmp_path: Path, crash_after: set[int], rng: random.Random) -> Final:
    """The cycle's script; ``serve`` is killed just after each click numbered in ``crash_after``
    (0: just after the cycle opened)."""
    port = free_port()
    with running_sandbox(tmp_path, bot_endpoint=f"http://127.0.0.1:{port}/api/messages") as sb:
        health = sandbox_health(sb)
        flow = serve_flow_file(tmp_path / "flows", health)
        database = tmp_path / "m365perf.db"
        env = serve_environment(health, database, port)
        env["M365PERF_WORKER_LEASE_S"] = str(LEASE_S)
        env["M365PERF_OUTBOX_GIVE_UP_S"] = "120"
        serve = Serve(tmp_path, env, port, flow.parent)
        people = People(sb, f"http://127.0.0.1:{port}/api/messages")
        period = Period.containing(Frequency.MONTHLY, datetime.now(LONDON).date())
        service = Crashable(serve)
        clicks = 0

        def settle() -> None:
            """Maybe crash (the click's sends still going out), then wait for the outbox."""
            if clicks in crash_after:
                time.sleep(rng.uniform(0.0, 0.4))
                service.crash()
            serve.wait_until_sent()

        service.start()
        try:
            opened = cycle_open(flow, period, env, tmp_path)
            settle()
            owners = _owners(database, opened["cycle_id"])
            for owner in owners[:-1]:  # the last owner does not return this time
                card = people.request_card(owner)
                keys = card.data("submitReturns")["versions"]
                inputs = {f"value__{k}": "42" for k in keys} | {
                    f"comment__{k}": "Taken from the case system at month end." for k in keys
                }
                people.act(owner, card, "submitReturns", inputs)
                clicks += 1
                settle()
            approvers = [u for u in people.everyone() if u not in PERFORMANCE_TEAM]
            for _ in range(8):
                acted = 0
                for upn in [*approvers, *PERFORMANCE_TEAM]:
                    for card in people.approval_cards(upn):
                        if not card.action("approve"):
                            continue
                        people.act(upn, card, "approve")
                        clicks += 1
                        acted += 1
                        settle()
                if not acted:
                    break
            # Every crash after the last click lets its lease lapse before the check.
            time.sleep(LEASE_S + 0.5)
            serve.wait_until_sent()
            live = [
                f"{upn}: {card.text[:80]}"
                for upn in people.everyone()
                for card in people.approval_cards(upn)
            ]
            messages = sum(
                len(people.chat_cards(u)) + len(people.mails(u)) for u in people.everyone()
            )
            rows = [r for r in results_rows(sb, health) if r.get("Period") == period.label]
        finally:
            service.close()
    with _store(database) as store, store.transaction() as tx:
        returns = {
            r.indicator_key: str(r.status) for r in tx.list_returns(cycle_id=opened["cycle_id"])
        }
        audit = Counter(
            (e.cycle_id, e.action, e.subject_type, e.subject_id, e.actor) for e in tx.list_audit()
        )
        outbox = Counter(str(m.status) for m in tx.list_outbox())
        timers = tx.list_timers()
    return Final(
        results=Counter(comparable_result(r, WALL_CLOCK_FIELDS) for r in rows),
        returns=returns,
        audit=audit,
        outbox=outbox,
        timers=Counter((str(t.kind), str(t.status)) for t in timers),
        messages=messages,
        live_buttons=live,
        clicks=clicks,
        crashes=service.crashes,
    )


def _owners(database: Path, cycle_id: int) -> list[str]:
    with _store(database) as store, store.transaction() as tx:
        return sorted({r.owner_email or "" for r in tx.list_returns(cycle_id=cycle_id)})


@contextlib.contextmanager
def _store(database: Path) -> Iterator[Any]:
    store = create_store(f"sqlite:///{database}", migrate=False)
    try:
        yield store
    finally:
        store.close()


def test_kill_9_at_random_points_ends_as_a_run_without_crashes(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    calm = _run_cycle(tmp_path / "calm", set(), rng)
    assert calm.results and calm.crashes == 0
    points = set(rng.sample(range(calm.clicks + 1), min(CRASHES, calm.clicks + 1)))
    crashed = _run_cycle(tmp_path / "crashed", points, rng)

    assert crashed.crashes == len(points)
    assert crashed.results == calm.results  # each approved return written exactly once
    assert crashed.returns == calm.returns
    assert crashed.audit == calm.audit  # each decision and delivery recorded once
    assert set(crashed.outbox) == {str(OutboxStatus.DONE)}, crashed.outbox  # nothing stuck
    assert crashed.timers == calm.timers
    assert not [k for k, status in crashed.timers if status == str(TimerStatus.CLAIMED)]
    assert calm.messages <= crashed.messages <= calm.messages + crashed.crashes
    assert crashed.live_buttons == [] and calm.live_buttons == []
    report(
        "crashes",
        crashes=crashed.crashes,
        crash_after_clicks=sorted(points),
        clicks_calm=calm.clicks,
        clicks_crashed=crashed.clicks,
        results_rows=sum(crashed.results.values()),
        audit_events=sum(crashed.audit.values()),
        outbox_rows=sum(crashed.outbox.values()),
        messages_calm=calm.messages,
        messages_crashed=crashed.messages,
        duplicates=crashed.messages - calm.messages,
        stale_live_buttons=len(crashed.live_buttons),
        wall_s=round(time.monotonic() - started, 1),
    )
