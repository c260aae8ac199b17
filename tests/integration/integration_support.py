"""The service against a real sandbox process: a bench to open cycles and click cards.

The sandbox runs as its own server (``m365perf.sandbox.testing.running_sandbox``); the
service runs here, its web app served by uvicorn on a free port, with a simulated clock
(:class:`m365perf.demo.SimulatedClock`) so opening times and deadlines are chosen, not
waited for. People click through the sandbox's ``POST /_sandbox/act``, which signs each
click as the Bot Framework does and posts it to the service's bot endpoint; the sandbox's
own admin endpoints (chats, mailboxes) and Graph are read back to see what people got.

Unlike :class:`m365perf.demo.Rehearsal` (one SQLite store, the sandbox's one bot
endpoint), a bench takes any database URL and passes its own endpoint with each click,
so several services, on SQLite or PostgreSQL, can share one sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from m365perf.demo import Rehearsal, SimulatedClock
from m365perf.domain.periods import Period
from m365perf.engine.context import at_local
from m365perf.flows import Flow, load_flow
from m365perf.plan.timetable import timetable
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import RunningSandbox
from m365perf.service import Service
from m365perf.settings import Settings, load_settings
from m365perf.store import ApprovalStep, Return, Store

ROOT = Path(__file__).resolve().parents[2]
MONTHLY_FILE = ROOT / "flows" / "monthly-corporate-kpis.yaml"
MONTHLY = "monthly-corporate-kpis"
PERFORMANCE_TEAM = ("nadia.clarke@contoso.gov.uk", "ben.foster@contoso.gov.uk")
WAIT_S = 30.0
"""How long a wait polls, unless told otherwise, before it gives up and fails."""

Json = dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], *, timeout_s: float = WAIT_S) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


def sandbox_health(sandbox: RunningSandbox) -> Json:
    answer = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=10)
    answer.raise_for_status()
    health: Json = answer.json()
    return health


def monthly_flow(health: Json, *, cards: str = "per_item") -> Flow:
    """The example monthly flow, its Power BI dataset the sandbox's (as the demo does).

    ``cards`` is its ``approval.cards``: the tests written for one card per return ask
    for ``per_item`` (still a flow option); the digest tests for ``digest`` (the default).
    """
    flow = Rehearsal._point_at_sandbox(load_flow(MONTHLY_FILE), health)
    approval = flow.approval.model_copy(update={"cards": cards})
    return flow.model_copy(update={"approval": approval})


def opening_time(flow: Flow, period: str) -> datetime:
    """When the flow's scheduler opens the cycle collecting ``period`` (UTC)."""
    plan = timetable(flow, Period.parse_for(flow.frequency, period))
    return at_local(plan.opens, flow.schedule.opening_time).astimezone(UTC)


# --------------------------------------------------------------------------- cards


@dataclass(frozen=True)
class Posted:
    """A card as it stands in someone's Teams chat (or mailbox) in the sandbox."""

    where: dict[str, str]
    card: Json

    def action(self, verb: str) -> Json | None:
        found = [a for a in find_actions(self.card) if a.get("verb") == verb]
        return found[0] if found else None

    def data(self, verb: str) -> Json:
        action = self.action(verb)
        assert action is not None, f"the card has no {verb!r} button:\n{card_text(self.card)}"
        data: Json = action.get("data") or {}
        return data

    @property
    def text(self) -> str:
        return card_text(self.card)


def card_text(node: Any) -> str:
    """A card's visible words; the runs of a rich text block joined as they are shown."""
    if isinstance(node, dict):
        if node.get("type") == "RichTextBlock":
            return "".join(str(run.get("text", "")) for run in node.get("inlines", [])) + "\n"
        if "type" not in node and isinstance(node.get("value"), str):  # a fact
            return f"{node.get('title', '')}: {node['value']}\n"
        own = "".join(
            f"{node[key]}\n"
            for key in ("text", "title", "label", "errorMessage")
            if isinstance(node.get(key), str)
        )
        return own + "".join(card_text(value) for value in node.values())
    if isinstance(node, list):
        return "".join(card_text(item) for item in node)
    return ""


# --------------------------------------------------------------------------- people


class People:
    """The sandbox's users: what they were sent, and clicking it as them.

    Clicks go to ``endpoint`` (a service's bot endpoint), whatever the sandbox was
    started with, so one sandbox can serve several services.
    """

    def __init__(self, sandbox: RunningSandbox, endpoint: str) -> None:
        self.sandbox = sandbox
        self.endpoint = endpoint
        self.http = requests.Session()
        self._users: dict[str, Json] = {}

    def user(self, ref: str) -> Json:
        """A sandbox user by UPN or Entra object id."""
        if not self._users:
            answer = self.http.get(f"{self.sandbox.base_url}/_sandbox/users", timeout=10)
            answer.raise_for_status()
            for user in answer.json()["value"]:
                self._users[user["upn"]] = self._users[user["id"]] = user
        return self._users[ref]

    def everyone(self) -> list[str]:
        self.user("performance@contoso.gov.uk")
        return sorted({u["upn"] for u in self._users.values()})

    def chat_cards(self, upn: str) -> list[Posted]:
        """The cards in the user's Teams chats, oldest first."""
        answer = self.http.get(f"{self.sandbox.base_url}/_sandbox/chats/{upn}", timeout=10)
        answer.raise_for_status()
        return [
            Posted({"conversation_id": chat["conversationId"], "activity_id": a["id"]}, a["card"])
            for chat in answer.json()["value"]
            for a in chat["activities"]
            if a.get("card")
        ]

    def mails(self, address: str) -> list[Json]:
        answer = self.http.get(f"{self.sandbox.base_url}/_sandbox/mailboxes/{address}", timeout=10)
        answer.raise_for_status()
        return list(answer.json()["value"])

    def request_card(self, upn: str, *, period: str | None = None) -> Posted:
        """The owner's newest card that still asks for figures (for ``period``, if given:
        an owner with a figure still out for last period gets its reminders too)."""
        asking = [
            p
            for p in self.chat_cards(upn)
            if p.action("submitReturns") and (period is None or f": {period}\n" in p.text)
        ]
        assert asking, f"{upn} has no request card in Teams" + (f" for {period}" if period else "")
        return asking[-1]

    def approval_cards(self, upn: str) -> list[Posted]:
        """The user's cards that still offer Approve."""
        return [p for p in self.chat_cards(upn) if p.action("approve")]

    def approval_card(self, upn: str, return_id: int, step_index: int) -> Posted:
        for posted in self.approval_cards(upn):
            data = posted.data("approve")
            if int(data["return_id"]) == return_id and int(data["step_index"]) == step_index:
                return posted
        raise AssertionError(f"{upn} has no approval card for return {return_id} step {step_index}")

    def act(
        self,
        upn: str,
        posted: Posted,
        verb: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        http: requests.Session | None = None,
        **signing: Any,
    ) -> Json:
        """Click ``verb`` on the card as ``upn``; the sandbox's report of what happened.

        ``signing`` passes the sandbox's forgery switches (``sign_with``, ``expired``,
        ``audience``, ``service_url_claim``).
        """
        answer = (http or self.http).post(
            f"{self.sandbox.base_url}/_sandbox/act",
            json={
                "user": upn,
                "verb": verb,
                "data": dict(inputs or {}),
                "endpoint": self.endpoint,
                **posted.where,
                **signing,
            },
            timeout=60,
        )
        assert answer.status_code == 200, f"the sandbox could not click: {answer.text}"
        report: Json = answer.json()
        return report


# --------------------------------------------------------------------------- the bench


class Bench(People):
    """One service (store, engine, dispatcher, web) in this process, wired to a sandbox."""

    def __init__(
        self,
        sandbox: RunningSandbox,
        health: Json,
        service: Service,
        clock: SimulatedClock,
        port: int,
        *,
        own_cards_only: bool = False,
    ) -> None:
        super().__init__(sandbox, f"http://127.0.0.1:{port}/api/messages")
        self.health = health
        self.service = service
        self.clock = clock
        self.own_cards_only = own_cards_only

    def chat_cards(self, upn: str) -> list[Posted]:
        """The user's cards; with ``own_cards_only``, just those this service delivered.

        Several benches on one sandbox all post to the same 1:1 chats, and their return
        ids overlap (each store counts from 1): the store's own delivery records tell
        this service's cards apart. A card sent again under the same id (an approver's
        timeout reminder) is recorded where it last landed, so only that copy counts.
        """
        cards = super().chat_cards(upn)
        if not self.own_cards_only:
            return cards
        with self.store.transaction() as tx:
            delivered = tx.list_deliveries(user_id=self.user(upn)["id"])
        ours = {(d.conversation_id, d.activity_id) for d in delivered}
        return [p for p in cards if (p.where["conversation_id"], p.where["activity_id"]) in ours]

    @property
    def store(self) -> Store:
        return self.service.store

    def returns(self, cycle_id: int) -> list[Return]:
        with self.store.transaction() as tx:
            return tx.list_returns(cycle_id=cycle_id)

    def steps(self, return_id: int) -> list[ApprovalStep]:
        with self.store.transaction() as tx:
            return tx.list_steps(return_id)


def replied_card(report: Json) -> Json:
    """The card the service answered a click with (it replaces the clicked one)."""
    body = report["body"]
    assert report["status"] == 200 and body.get("statusCode") == 200, f"not a card: {report}"
    card: Json = body["value"]
    return card


SESSION_SECRET = "an-integration-test-key-for-sign-in-cookies"


def sandbox_settings(
    health: Json, database_url: str, port: int, extra: Mapping[str, str] | None = None
) -> Settings:
    """The sandbox's ``M365PERF_*`` settings, with this store and this web address."""
    overrides = dict(health["settings"])
    overrides["database_url"] = database_url
    overrides["public_base_url"] = f"http://127.0.0.1:{port}"
    overrides.update(extra or {})
    return load_settings(**overrides)


def signed_in(base_url: str, path: str, upn: str) -> requests.Session:
    """A browser-like session signed in as ``upn`` at the sandbox's identity provider."""
    import html
    import re
    from urllib.parse import urljoin

    http = requests.Session()
    picker = http.get(base_url + path, timeout=WAIT_S)
    assert "Pick an account" in picker.text, picker.text[:300]
    fields = {
        k: html.unescape(v)
        for k, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", picker.text)
    }
    users = {
        html.unescape(mail): value
        for value, mail in re.findall(
            r"name='user' value='([^']+)'>[^<]*<small>([^<]+)</small>", picker.text
        )
    }
    (action,) = re.findall(r'<form method="post" action="([^"]+)">', picker.text)
    fields["user"] = users[upn]
    back = http.post(urljoin(picker.url, html.unescape(action)), data=fields, timeout=WAIT_S)
    assert back.status_code == 200, back.text[:300]
    return http


@contextlib.contextmanager
def bench(
    sandbox: RunningSandbox,
    database_url: str,
    *,
    start: datetime,
    worker_id: str = "bench",
    serve: bool = True,
    flow: Flow | None = None,
    own_cards_only: bool = False,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Bench]:
    """A service on ``database_url`` at simulated time ``start``, its web app listening.

    ``flow`` replaces the example monthly flow (a copy with one setting changed);
    ``own_cards_only`` is for benches sharing a sandbox (see :meth:`Bench.chat_cards`);
    ``settings`` adds ``M365PERF_*`` values (lower-case names), e.g. ``session_secret``.
    """
    health = sandbox_health(sandbox)
    port = free_port()
    clock = SimulatedClock(start)
    service = Service(
        sandbox_settings(health, database_url, port, settings),
        [flow or monthly_flow(health)],
        clock=clock,
        worker_id=worker_id,
    )
    council = Bench(sandbox, health, service, clock, port, own_cards_only=own_cards_only)
    try:
        with _serving(service, port) if serve else contextlib.nullcontext():
            yield council
    finally:
        council.http.close()
        service.store.close()


@contextlib.contextmanager
def _serving(service: Service, port: int) -> Iterator[None]:
    import uvicorn

    config = uvicorn.Config(
        service.app, host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for("the service's web endpoint to start", lambda: server.started)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --------------------------------------------------------------------------- SharePoint


def results_rows(sandbox: RunningSandbox, health: Json) -> list[Json]:
    """Every row of the sandbox's KPI Results list, read over Graph with a plain token."""
    token = sandbox.token()
    url: str | None = (
        f"{sandbox.base_url}/v1.0/sites/{health['site_id']}/lists/"
        f"{health['lists']['KPI Results']}/items?expand=fields"
    )
    rows: list[Json] = []
    for _ in range(10_000):
        if url is None:
            return rows
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        rows.extend(item["fields"] for item in body["value"])
        url = body.get("@odata.nextLink")
    raise AssertionError("the KPI Results list never ended")


# --------------------------------------------------------------------------- Power BI


def refresh_history(sandbox: RunningSandbox, health: Json) -> list[Json]:
    """The sandbox dataset's refresh history (newest first), read as a Power BI client would."""
    token = sandbox.token("https://analysis.windows.net/powerbi/api/.default")
    answer = requests.get(
        f"{sandbox.base_url}/powerbi/v1.0/myorg/groups/{health['powerbi_workspace_id']}"
        f"/datasets/{health['powerbi_dataset_id']}/refreshes",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return list(answer.json()["value"])


def move_sandbox_clock(sandbox: RunningSandbox, seconds: float) -> None:
    """Move the sandbox's own clock on (Power BI start times and its 24-hour window)."""
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/clock", json={"advance_s": seconds}, timeout=10
    )
    answer.raise_for_status()


# --------------------------------------------------------------------------- serve

START_S = 60.0
QUIET_S = 60.0


def serve_flow_file(directory: Path, health: dict[str, Any]) -> Path:
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


def serve_environment(health: dict[str, Any], database: Path, port: int) -> dict[str, str]:
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
    def running(
        self, *, tick_s: float, outbox_idle_s: float | None = None
    ) -> Iterator[subprocess.Popen[bytes]]:
        """``outbox_idle_s``: how long the outbox loop rests once nothing is due (60 holds
        what a test's clicks queue for a minute, as a long tick once did)."""
        command = [sys.executable, "-m", "m365perf", "serve", "--port", str(self.port)]
        command += ["--flows", str(self.flows), "--tick", str(tick_s)]
        env = dict(self.env)
        if outbox_idle_s is not None:
            env["M365PERF_OUTBOX_IDLE_S"] = str(outbox_idle_s)
        with self.log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT
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


def cycle_open(flow: Path, period: Period, env: dict[str, str], workdir: Path) -> dict[str, Any]:
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
