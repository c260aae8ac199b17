"""``m365perf demo`` without ``--auto``: a rehearsal you click through yourself.

The same machinery as the automatic demo (``demo.py``): the sandbox in its own process,
the service here with its real bot endpoint, engine and store. The cycles are opened and
then nobody is simulated: you play the officers and approvers in the sandbox's inbox
pages (``/_sandbox/inbox/{user}``), where Microsoft's renderer draws each card and a
click goes to the service signed as the Bot Framework would sign it. A ticker sends what
the service queues (approval cards after a return, the rejection card after a reject)
every second. The service's clock starts at the latest opening and runs ten times as
fast as the wall clock: an approver's digest waits a minute for more returns before it is
drawn, six seconds here, while the due date is still days of play away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from m365perf.demo import PAGE_SIZE, DemoError, Rehearsal, free_port, running_sandbox
from m365perf.domain.approvers import Unroutable
from m365perf.domain.periods import Period
from m365perf.engine.context import at_local
from m365perf.engine.people import StoreDirectory
from m365perf.flows.model import Flow
from m365perf.plan.routing import route
from m365perf.plan.timetable import timetable
from m365perf.store import CycleStatus

log = logging.getLogger(__name__)

TICK_S = 1.0
#: How much faster than the wall clock the service's clock runs.
SPEED = 10


@dataclass(frozen=True)
class InboxLink:
    """One person to play, and where their Teams chat and mailbox are."""

    role: str
    """``officer`` (returns figures) or ``approver``."""
    name: str
    address: str
    url: str
    does: str
    """What they have to do, e.g. "4 indicator(s) of Monthly corporate KPIs 2026-10"."""
    first_approvers: tuple[str, ...] = ()
    """An officer's: the addresses of whoever is asked first about their returns."""


@dataclass(frozen=True)
class LiveRehearsal:
    sandbox_url: str
    status_url: str
    """The performance team's status page (sign in at the sandbox as one of ``staff``)."""
    staff: list[str]
    cycles: list[str]
    links: list[InboxLink]

    def as_json(self) -> dict[str, Any]:
        return {
            "sandbox": self.sandbox_url,
            "status": self.status_url,
            "staff": self.staff,
            "cycles": self.cycles,
            "officers": [dataclasses.asdict(link) for link in self.officers],
            "approvers": [dataclasses.asdict(link) for link in self.approvers],
        }

    @property
    def officers(self) -> list[InboxLink]:
        return [link for link in self.links if link.role == "officer"]

    @property
    def approvers(self) -> list[InboxLink]:
        return [link for link in self.links if link.role == "approver"]


def _opening(flow: Flow, period: Period) -> datetime:
    return at_local(timetable(flow, period).opens, flow.schedule.opening_time).astimezone(UTC)


def _links(rehearsal: Rehearsal) -> list[InboxLink]:
    """The officers of every open cycle, then each approver their returns route to."""
    base = f"{rehearsal.sandbox}/_sandbox/inbox/"
    owners: dict[str, tuple[str, list[str]]] = {}
    first: dict[str, dict[str, str]] = {}
    approvers: dict[str, tuple[str, list[str]]] = {}
    flows = {flow.id: flow for flow in rehearsal.flows}
    with rehearsal.service.store.transaction() as tx:
        for cycle in tx.list_cycles():
            if cycle.status is CycleStatus.CLOSED or cycle.flow_id not in flows:
                continue
            flow = flows[cycle.flow_id]
            directory = StoreDirectory(tx, flow)
            counts: dict[str, int] = {}
            for ret in tx.list_returns(cycle_id=cycle.id):
                indicator = tx.find_indicator(flow.id, ret.indicator_key)
                routed = route(
                    flow,
                    directory,
                    ret.owner_id or ret.owner_email or "",
                    indicator.raw if indicator else {},
                )
                if isinstance(routed, Unroutable):
                    continue
                owner = routed.owner
                counts[owner.email] = counts.get(owner.email, 0) + 1
                owners.setdefault(owner.email, (owner.name, []))
                if routed.chain:
                    asked = first.setdefault(owner.email, {})
                    asked.update({p.email: p.name for p in routed.chain[0].approvers})
                for step in routed.chain:
                    for person in step.approvers:
                        what = f"{step.rule.name}, {flow.name} {cycle.period}"
                        _, jobs = approvers.setdefault(person.email, (person.name, []))
                        if what not in jobs:
                            jobs.append(what)
            for email, count in counts.items():
                owners[email][1].append(f"{count} indicator(s) of {flow.name} {cycle.period}")
    for email, asked in first.items():
        owners[email][1].append("asked first: " + ", ".join(sorted(asked.values())))
    return [
        InboxLink(
            role,
            name,
            email,
            base + quote(email),
            "; ".join(jobs),
            tuple(sorted(first.get(email, {}))) if role == "officer" else (),
        )
        for role, people in (("officer", owners), ("approver", approvers))
        for email, (name, jobs) in sorted(people.items(), key=lambda p: p[1][0])
    ]


def _staff(rehearsal: Rehearsal, group: str) -> list[str]:
    """The names of the sandbox's performance team: who may open the status page."""
    http, sandbox = rehearsal.http, rehearsal.sandbox
    groups = http.get(f"{sandbox}/_sandbox/groups", timeout=10).json()["value"]
    users = http.get(f"{sandbox}/_sandbox/users", timeout=10).json()["value"]
    names = {u["id"]: u["display_name"] for u in users}
    return sorted(names.get(m, m) for m in groups.get(group, {}).get("members", []))


def _tick_until(rehearsal: Rehearsal, stop: threading.Event, tick_s: float) -> None:
    """Move the service's clock (``SPEED`` times the wall clock) and send what is due."""
    started, at = rehearsal.clock.now, time.monotonic()
    while not stop.wait(tick_s):
        rehearsal.clock.now = started + timedelta(seconds=SPEED * (time.monotonic() - at))
        try:
            rehearsal.service.tick()
        except Exception:  # the next tick tries again; nothing is lost in the store
            log.exception("tick failed")


@contextlib.contextmanager
def live_rehearsal(
    flows: Sequence[Flow],
    workdir: Path,
    *,
    periods: dict[str, str],
    tick_s: float = TICK_S,
) -> Iterator[LiveRehearsal]:
    """Start the sandbox and the service, open each flow's cycle, and yield the inbox links.

    Every cycle opens at the latest of their planned openings (an earlier one counts its
    dates from then, as a late opening does in production), so all are open together.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    bot_endpoint = f"http://127.0.0.1:{port}/api/messages"
    with running_sandbox(
        workdir / "sandbox", bot_endpoint, log=workdir / "sandbox.log", page_size=PAGE_SIZE
    ) as health:
        problem = (health.get("renderer") or {}).get("problem")
        if problem:
            raise DemoError(problem)
        chosen = {f.id: Period.parse_for(f.frequency, periods[f.id]) for f in flows}
        start = max(_opening(f, chosen[f.id]) for f in flows)
        # Staff sign in at the sandbox (its seeded performance team is the staff group), so
        # the status page and the approvers' web page work in the rehearsal too.
        staff = str(health["performance_team_group_id"])
        rehearsal = Rehearsal(
            health,
            [f.model_copy(update={"staff_group": staff}) for f in flows],
            workdir,
            port,
            start=start,
            settings={"session_secret": secrets.token_urlsafe(32)},
        )
        stop = threading.Event()
        ticker = threading.Thread(
            target=_tick_until, args=(rehearsal, stop, tick_s), name="demo-ticker", daemon=True
        )
        try:
            with rehearsal.serving():
                for flow in rehearsal.flows:
                    rehearsal.import_history(flow)
                    rehearsal.service.open_cycle(flow, chosen[flow.id], actor="demo")
                rehearsal.service.settle()
                ticker.start()
                try:
                    yield LiveRehearsal(
                        sandbox_url=str(health["http_base_url"]),
                        status_url=f"{rehearsal.settings.staff_url}/status",
                        staff=_staff(rehearsal, staff),
                        cycles=[f"{f.name} {chosen[f.id].label}" for f in rehearsal.flows],
                        links=_links(rehearsal),
                    )
                finally:
                    stop.set()
                    if ticker.is_alive():
                        ticker.join(timeout=30)
        finally:
            rehearsal.service.store.close()
