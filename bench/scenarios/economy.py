"""API economy: the requests one whole cycle makes to Microsoft 365 (the sandbox).

A register of N indicators and N/10 owners is loaded into a sandbox; the service (its
real engine, store, dispatcher and web endpoint) opens the cycle, the owners return
every figure, the approvers work through their digests, the approved figures are
written back and Power BI refreshes. Every request the service sends is read back from
the sandbox's request log (``GET /_sandbox/requests``) and set beside

* the minimum the work needs, worked out from first principles in :func:`minimum`, and
* a naive one-call-per-item flow, counted (not run) in :func:`naive`.

A second part writes results into a results list whose period already holds a small
and a large number of other rows, and counts the list reads per row written, for new
rows and for the same rows written again: the cost of finding where a row goes must not
grow with the list.

Sizes: 1,000 indicators (``--small``: 200). ``ECONOMY_INDICATORS=10000 bench/run
--scenario economy`` runs the 10,000 size (about 25 minutes on the 2-core machine).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import requests
from harness import ROOT, Figure

DESCRIPTION = "API economy: requests per cycle vs the minimum and a naive one-call-per-item flow"

PAGE_SIZE = 200
"""The sandbox's page cap for list reads: Graph's own default page (the demo's too)."""
NAIVE_PAGE = 200
"""A naive reader takes Graph's default page for list items."""
BATCH = 20
PERIOD = "2026-10"
MONTHLY_FILE = ROOT / "flows" / "monthly-corporate-kpis.yaml"


@dataclass
class Counted:
    """One run's requests by what they were for, and what the work was."""

    by_kind: Counter[str]
    work: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def run(small: bool) -> list[Figure]:
    sys.path.insert(0, str(ROOT / "src"))
    size = int(os.environ.get("ECONOMY_INDICATORS", "60" if small else "1000"))
    owners = max(1, size // 10)
    counted = cycle(size, owners)
    least = minimum(counted.work)
    plain = naive(counted.work)
    total = counted.total
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(counted.by_kind.items()))
    figures = [
        Figure(f"requests per cycle, {size} indicators", total, "requests", note=kinds),
        Figure(f"minimum the work needs, {size} indicators", sum(least.values()), "requests"),
        Figure(
            f"requests / minimum, {size} indicators",
            total / sum(least.values()),
            "x",
            goal=1.10,
        ),
        Figure(
            f"naive / requests, {size} indicators",
            sum(plain.values()) / total,
            "x fewer",
            goal=10.0,
            better="higher",
            note=f"naive {sum(plain.values())}",
        ),
    ]
    extra = {
        k: counted.by_kind.get(k, 0) - least.get(k, 0)
        for k in sorted(set(counted.by_kind) | set(least))
        if counted.by_kind.get(k, 0) != least.get(k, 0)
    }
    if extra:
        figures.append(
            Figure(
                "requests over the minimum, by kind",
                sum(extra.values()),
                "requests",
                note=", ".join(f"{k} {v:+d}" for k, v in extra.items()),
            )
        )
    sizes = (100, 1000) if small else (1000, 10000)
    rows = 40 if small else 200
    for existing, (new, again) in zip(sizes, key_reads(sizes, rows), strict=True):
        figures.append(
            Figure(
                f"write-back list reads per row, list of {existing:,}",
                (new + again) / (2 * rows),
                "reads/row",
                goal=1 / (2 * BATCH),
                note=f"{new} reads for {rows} new rows, {again} to write them again",
            )
        )
    return figures


# --------------------------------------------------------------------------- the cycle


def cycle(indicators: int, owners: int) -> Counted:
    """Run one whole cycle against a fresh sandbox; its requests and its work."""
    from m365perf.domain.periods import Period
    from m365perf.engine.context import at_local
    from m365perf.flows import load_flow
    from m365perf.plan.timetable import timetable
    from m365perf.sandbox.testing import running_sandbox

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}/api/messages"
        _Approvers = _approvers_as_sent()
        with running_sandbox(
            workdir, tls=False, page_size=PAGE_SIZE, throttle=False, bot_endpoint=endpoint
        ) as box:
            health = requests.get(f"{box.base_url}/_sandbox/health", timeout=30).json()
            _load_register(box.data_dir / "sandbox.sqlite3", box.config, indicators, owners)
            flow = load_flow(MONTHLY_FILE)
            period = Period.parse_for(flow.frequency, PERIOD)
            plan = timetable(flow, period)
            opening = at_local(plan.opens, flow.schedule.opening_time).astimezone(UTC)
            rehearsal = _Approvers(health, [flow], workdir, port, start=opening)
            _unthrottled(rehearsal)
            before = _last_request(box.base_url)
            with rehearsal.serving():
                flow = rehearsal.flows[0]
                rehearsal.service.open_cycle(flow, period, actor="bench")
                rehearsal.service.settle()
                rehearsal.advance(timedelta(hours=2), step=timedelta(hours=1))
                rehearsal.officers_return()
                rehearsal._approval_rounds(reject=False, skip=set())
                debounce = (flow.powerbi.debounce_minutes if flow.powerbi else 0) + 5
                rehearsal.advance(timedelta(minutes=debounce), step=timedelta(minutes=5))
                rehearsal.advance(timedelta(minutes=30), step=timedelta(minutes=2))
                rehearsal.finish()
            records = _requests(box.base_url, before)
            work = _work(rehearsal, flow, records)
            rehearsal.service.store.close()
    return Counted(_kinds(records), work)


def _approvers_as_sent() -> type:
    """The demo's people, except that an approver acts on a digest as it stands in their
    chat rather than refreshing it on opening: a refresh is a click on the service (no
    request to Microsoft 365), and redrawing a 1,000-item digest part by part is the click
    path's cost (the ``click`` and ``cpu_memory`` scenarios), not this one's."""
    from m365perf.demo import Rehearsal

    class Approvers(Rehearsal):
        def _opened(
            self, user: dict[str, Any], where: dict[str, Any], card: dict[str, Any]
        ) -> dict[str, Any]:
            return card

    return Approvers


def _unthrottled(rehearsal: Any) -> None:
    """The service with client budgets out of the way: this counts requests, not time."""
    from m365perf.m365.factory import clients_from_settings
    from m365perf.m365.http import Limits
    from m365perf.service import Service

    rehearsal.service.store.close()
    limits = Limits(sharepoint_ru_per_minute=1e9, sharepoint_ru_burst=1e9, bot_sends_per_second=1e6)
    clients = clients_from_settings(rehearsal.settings, limits=limits)
    rehearsal.service = Service(
        rehearsal.settings,
        rehearsal.flows,
        clock=rehearsal.clock,
        worker_id="bench",
        clients=clients,
    )


def _load_register(path: Path, config: Any, indicators: int, owners: int) -> None:
    """Replace the seeded register with ``indicators`` rows shared by ``owners`` new people."""
    from m365perf.sandbox import seed
    from m365perf.sandbox.store import Store, UserRow
    from m365perf.sandbox.teams import teams_user_id

    store = Store(path)
    domain = config.mail_domain
    services = seed.SERVICES
    people = []
    with store.transaction():
        for n in range(owners):
            service = services[n % len(services)]
            manager = store.user(seed._upn(*service.manager, domain))
            assert manager is not None
            upn = f"officer{n:04d}@{domain}"
            oid = seed.stable_guid(seed.DEFAULT_SEED, upn)
            store.put_user(
                UserRow(
                    oid,
                    upn,
                    upn,
                    f"Officer {n}",
                    "Officer",
                    f"{n}",
                    "Performance Officer",
                    service.name,
                    "Council House",
                    manager.id,
                    teams_user_id(config.bot_app_id, oid),
                )
            )
            people.append((upn, service))
        register = seed.stable_guid(seed.DEFAULT_SEED, f"list/{seed.REGISTER_LIST}")
        for item in store.items(register):
            store.delete_item(register, item.id)
        for i in range(indicators):
            upn, service = people[i % owners]
            fields = {
                "IndicatorId": f"ECO-{i:05d}",
                "Title": f"Indicator {i}",
                "Unit": "number",
                "Polarity": "higher_is_better",
                "Frequency": "Monthly",
                "Target": "100",
                "Tolerance": 5.0,
                "Owner": upn,
                "Supervisor": seed._upn(*service.manager, domain),
                "HeadOfService": seed._upn(*service.head, domain),
                "Service": service.name,
                "Active": True,
            }
            store.new_item(register, fields, str(uuid.uuid4()).upper(), seed.SEEDED_AT)
    store.close()


# --------------------------------------------------------------------------- counting


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _last_request(base: str) -> int:
    rows = requests.get(f"{base}/_sandbox/requests", timeout=60).json()["value"]
    return max((int(r["id"]) for r in rows), default=0)


def _requests(base: str, after: int) -> list[dict[str, Any]]:
    answer = requests.get(f"{base}/_sandbox/requests", params={"after": after}, timeout=120)
    answer.raise_for_status()
    return list(answer.json()["value"])


def _on_the_wire(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests that crossed the network: a ``$batch`` envelope counts once, its parts not."""
    return [r for r in records if not r.get("batch_id") or r["path"].endswith("/$batch")]


def _kind(record: dict[str, Any], parts: dict[str, list[dict[str, Any]]]) -> str:
    path, method = record["path"], record["method"]
    lower = path.lower()
    if lower.endswith("/oauth2/v2.0/token"):
        return "token"
    if "well-known" in lower or "/discovery/" in lower or "keys" in lower:
        return "login discovery and keys"
    if lower.endswith("/$batch"):
        inner = parts.get(record.get("batch_id") or "", [])
        if inner and all("/users/" in p["path"].lower() for p in inner):
            return "directory $batch"
        return "write-back $batch"
    if lower.startswith("/botframework/v3/conversations"):
        if method == "POST" and lower.rstrip("/").endswith("/conversations"):
            return "teams conversation create"
        return "teams card send" if method == "POST" else "teams card update"
    if "/sendmail" in lower:
        return "mail send"
    if lower.startswith("/powerbi/"):
        return "power bi"
    if "/users/" in lower:
        return "directory read"
    if "/items" in lower and method == "GET":
        return "list item reads"
    if lower.startswith("/v1.0/sites"):
        return "site, list and column ids"
    return "other " + method + " " + path.split("/")[1]


def _kinds(records: Sequence[dict[str, Any]]) -> Counter[str]:
    parts: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("batch_id") and not r["path"].endswith("/$batch"):
            parts.setdefault(r["batch_id"], []).append(r)
    return Counter(_kind(r, parts) for r in _on_the_wire(records))


def _work(rehearsal: Any, flow: Any, records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """What the cycle had to do, from the store and the log, for the minimum and the naive."""
    from m365perf.messages import OutboxKind, parse_message
    from m365perf.messages.ids import CardId, DigestCardId, RequestCardId
    from m365perf.store import OutboxStatus, StepStatus

    store = rehearsal.service.store
    with store.transaction() as tx:
        cycle = tx.list_cycles(flow_id=flow.id)[-1]
        returns = tx.list_returns(cycle_id=cycle.id)
        steps = [s for r in returns for s in tx.list_steps(r.id)]
        people = tx.list_people()
        done = tx.list_outbox(status=OutboxStatus.DONE)
    cards: list[Any] = []
    recipients: set[str] = set()
    written = 0
    mails = 0
    refresh_calls = 0
    for row in done:
        message = parse_message(row.kind, row.payload)
        if row.kind == OutboxKind.SEND_CARD:
            cards.append(message)
            if message.channel == "teams":
                recipients.add(message.user.id)
            else:
                mails += 1
        elif row.kind == OutboxKind.WRITE_BACK:
            written += 1
        elif row.kind == OutboxKind.SEND_MAIL:
            mails += 1
        elif row.kind in (OutboxKind.REFRESH, OutboxKind.CHECK_REFRESH):
            refresh_calls += 1
    teams_cards = [c for c in cards if c.channel == "teams"]
    owners_cards = sum(isinstance(CardId.parse(str(c.card_id)), RequestCardId) for c in teams_cards)
    digests = sum(isinstance(CardId.parse(str(c.card_id)), DigestCardId) for c in teams_cards)
    kinds = _kinds(records)
    groups = {name: len(members) for name, members in flow.groups.items()}
    decided = [s for s in steps if s.status is StepStatus.APPROVED]
    approver_cards = 0
    for step in decided:
        spec = flow.approval.steps[step.step_index]
        group = groups.get(spec.approver.group or "", 0)
        approver_cards += group or max(1, len(step.approvers))
    return {
        "indicators": len(returns),
        "owners": len({r.owner_id for r in returns}),
        "people": len(people),
        "teams recipients": len(recipients),
        "teams cards": len(teams_cards),
        "owner cards": owners_cards,
        "digests": digests,
        "card updates sent": kinds.get("teams card update", 0),
        "approver cards per item": approver_cards,
        "group updates per item": sum(
            groups.get(flow.approval.steps[s.step_index].approver.group or "", 1) - 1
            for s in decided
        ),
        "steps": len(decided),
        "written rows": written,
        "mails": mails,
        "power bi calls": refresh_calls,
        "login": kinds.get("login discovery and keys", 0),
        "resources": sum(
            1
            for prefix in ("/v1.0/", "/botframework/v3/", "/powerbi/")
            if any(r["path"].startswith(prefix) for r in records)
        ),
        "site ids": kinds.get("site, list and column ids", 0),
    }


def minimum(work: dict[str, int]) -> dict[str, int]:
    """The fewest requests the cycle's work can be done in, from first principles.

    * one token per resource used (Graph, Bot Connector, Power BI), and the login
      service's discovery and signing keys as read (inbound clicks are verified with them);
    * the register: its site, list and columns once, then ``ceil(N / page)`` pages at the
      largest page the service may ask for (999, capped by the sandbox's 200);
    * the results list's site and list once, and each approved row's key looked up once
      (a row never written before might be there already: a crash after a create),
      20 keys to a read;
    * the directory: every person the register names (and their managers), 20 to a
      ``$batch`` envelope;
    * Teams: one conversation per person who gets a card, each card sent once (one card
      per owner, one digest per approver per round, split only where a card would pass
      Teams' size limit), and only the updates that change what a card shows;
    * e-mail: each message the engine decided on, once;
    * write-back: every approved row in full envelopes of 20, ``ceil(rows / 20)``;
    * Power BI: the refresh and its polls as made (one refresh per debounce window).
    """
    pages = math.ceil(work["indicators"] / min(999, PAGE_SIZE))
    return {
        "token": work["resources"],
        "login discovery and keys": min(work["login"], 3),
        "site, list and column ids": 3 + 2,
        "list item reads": pages + math.ceil(work["written rows"] / BATCH),
        "directory $batch": math.ceil(work["people"] / BATCH),
        "teams conversation create": work["teams recipients"],
        "teams card send": work["teams cards"],
        "teams card update": work["card updates sent"],
        "mail send": work["mails"],
        "write-back $batch": math.ceil(work["written rows"] / BATCH),
        "power bi": work["power bi calls"],
    }


def naive(work: dict[str, int]) -> dict[str, int]:
    """One call per item: what a flow without batching, reuse or digests would send.

    A card to each owner for each indicator and to each approver (every member of a
    group) for each return and step, an update of the other members' cards when one
    decides, a conversation opened per person, a directory read for each person and
    another for their manager, the register at Graph's default page, and each approved
    row looked up and then written on its own (GET + POST).
    """
    return {
        "token": work["resources"],
        "login discovery and keys": work["login"],
        "site, list and column ids": 3 + 2,
        "list item reads": math.ceil(work["indicators"] / NAIVE_PAGE),
        "directory": 2 * work["people"],
        "teams conversation create": work["teams recipients"],
        "teams card send": work["indicators"] + work["approver cards per item"],
        "teams card update": work["group updates per item"],
        "mail send": work["mails"],
        "write-back": 2 * work["written rows"],
        "power bi": work["power bi calls"],
    }


# --------------------------------------------------------------------------- key reads


def key_reads(sizes: Sequence[int], rows: int) -> list[tuple[int, int]]:
    """List reads to write ``rows`` new results into the results list once it holds each
    of ``sizes`` other rows, then the same rows again (a correction): (new, again) per
    size. The goal: one read per 20 new rows and none for rows written before."""
    from datetime import datetime

    from m365perf.demo import SimulatedClock
    from m365perf.dispatch import Dispatcher
    from m365perf.engine import Engine
    from m365perf.flows import load_flow
    from m365perf.m365.factory import clients_from_settings
    from m365perf.m365.http import Limits
    from m365perf.sandbox import seed
    from m365perf.sandbox.testing import running_sandbox
    from m365perf.service import engine_config
    from m365perf.settings import load_settings
    from m365perf.store.testing import memory_store

    found: list[tuple[int, int]] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        running_sandbox(Path(folder), tls=False, page_size=PAGE_SIZE, throttle=False) as box,
    ):
        settings = load_settings(**box.settings_overrides())
        limits = Limits(sharepoint_ru_per_minute=1e9, sharepoint_ru_burst=1e9)
        clients = clients_from_settings(settings, limits=limits)
        store = memory_store()
        engine = Engine(store, [load_flow(MONTHLY_FILE)], engine_config(settings))
        clock = SimulatedClock(datetime(2026, 11, 5, 9, tzinfo=UTC))
        dispatcher = Dispatcher(
            store,
            clients,
            settings,
            on_sent=engine.on_sent,
            find_delivery=lambda _: None,
            worker_id="bench",
            clock=clock,
        )
        site = f"{box.config.sharepoint_host}:{box.config.site_path}"
        results = seed.stable_guid(seed.DEFAULT_SEED, f"list/{seed.RESULTS_LIST}")
        held = 0
        for size in sizes:
            _fill_results(box.data_dir / "sandbox.sqlite3", results, held, size)
            held = size
            reads = []
            for version in (1, 2):
                with store.transaction() as tx:
                    for n in range(rows):
                        tx.enqueue(
                            "write_back",
                            budget="sharepoint",
                            payload={
                                "site": site,
                                "list": seed.RESULTS_LIST,
                                "key_fields": ["IndicatorId", "Period"],
                                "fields": {
                                    "IndicatorId": f"NEW-{size}-{n:05d}",
                                    "Period": PERIOD,
                                    "Value": n + version,
                                    "Version": version,
                                },
                            },
                            dedup_key=f"{size}-{n}-{version}",
                            now=clock.now,
                        )
                before = _last_request(box.base_url)
                while dispatcher.drain().claimed:
                    pass
                counted = _kinds(_requests(box.base_url, before))
                reads.append(counted.get("list item reads", 0))
            found.append((reads[0], reads[1]))
            held += rows
        store.close()
    return found


def _fill_results(path: Path, results: str, held: int, size: int) -> None:
    """Rows of the same period, straight into the sandbox's list, until it holds ``size``
    (other indicators' figures: a period grows as a cycle's rows are written)."""
    from m365perf.sandbox.store import Store

    store = Store(path)
    with store.transaction():
        for n in range(held, size):
            fields = {"IndicatorId": f"OLD-{n:05d}", "Period": PERIOD, "Value": 1}
            store.new_item(results, fields, str(uuid.uuid4()).upper(), "2025-04-01T08:00:00Z")
    store.close()
