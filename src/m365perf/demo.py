"""A whole reporting cycle rehearsed against the local sandbox, with simulated people.

The sandbox runs as its own process (``m365perf sandbox --seed``); the service runs here
with its real web endpoint, engine, store and dispatcher, talking to the sandbox over
HTTP exactly as it would talk to a tenant. Simulated officers and approvers click their
cards through the sandbox's "act as a user" endpoint, which signs each click the way the
Bot Framework does. Time is simulated, so reminders, lateness and the refresh debounce
happen in seconds.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from m365perf.cards.digest import APPROVE_ALL_VERB, APPROVE_VERB, REJECT_VERB, reason_input_id
from m365perf.domain.periods import Period
from m365perf.engine.context import at_local
from m365perf.errors import M365PerfError
from m365perf.flows.model import Flow
from m365perf.messages.ids import (
    ROUND_OPEN,
    ApprovalCardId,
    CardId,
    CardIdError,
    DigestCardId,
    RejectionCardId,
    RequestCardId,
)
from m365perf.messages.names import AuditAction, OutboxKind
from m365perf.plan.timetable import timetable
from m365perf.rehearsal_faults import FinalState, final_state, injected
from m365perf.settings import load_settings
from m365perf.store import OutboxStatus, Return, ReturnStatus

HISTORY_LIST = "KPI History"
DEMO_SERIES = "coventry"
"""The council's own series in the sandbox's history list (``history import --series``)."""
REJECT_REASON = "This does not match the figure in the source system: please check and resend."


class DemoError(M365PerfError, RuntimeError):
    """The rehearsal could not run (the sandbox did not start, a click failed)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_sandbox(
    data_dir: Path,
    bot_endpoint: str,
    *,
    log: Path,
    faults: str = "",
    fault_seed: int | None = None,
    page_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Start ``m365perf sandbox --seed`` as its own process; yield its health document.

    ``faults`` and ``fault_seed`` are the sandbox's ``--faults`` and ``--fault-seed``.
    """
    port = _free_port()
    tls_port = _free_port()
    command = [
        sys.executable,
        "-m",
        "m365perf",
        "sandbox",
        "--seed",
        "--reset",
        "--port",
        str(port),
        "--tls-port",
        str(tls_port),
        "--data-dir",
        str(data_dir),
        "--bot-endpoint",
        bot_endpoint,
    ]
    if faults:
        command += ["--faults", faults]
    if fault_seed is not None:
        command += ["--fault-seed", str(fault_seed)]
    if page_size is not None:
        command += ["--page-size", str(page_size)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        health = None
        for _ in range(300):
            if process.poll() is not None:
                raise DemoError(f"the sandbox stopped at start-up; see {log}")
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=2)
                if answer.ok:
                    health = answer.json()
                    break
            time.sleep(0.1)
        if health is None:
            raise DemoError(f"the sandbox did not answer in 30 s; see {log}")
        yield health
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class SimulatedClock:
    """The demo's clock: the service reads it, the demo moves it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Tally:
    acted: set[str] = field(default_factory=set)
    rejected: int = 0
    resubmitted: int = 0
    late_owner: str | None = None
    request_cards: set[str] = field(default_factory=set)


class Rehearsal:
    """Drives one or more cycles through the service against a running sandbox."""

    def __init__(
        self,
        health: dict[str, Any],
        flows: list[Flow],
        workdir: Path,
        port: int,
        *,
        start: datetime,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """``settings``: service settings to override (``M365PERF_*`` names, lower case)."""
        from m365perf.service import Service

        self.sandbox = health["http_base_url"]
        overrides = dict(health["settings"])
        overrides["database_url"] = f"sqlite:///{workdir / 'm365perf.db'}"
        overrides["public_base_url"] = f"http://127.0.0.1:{port}"
        # A fresh key per rehearsal: the e-mails carry working web-form links, and no
        # link from a rehearsal works anywhere else.
        overrides["link_secret"] = secrets.token_urlsafe(32)
        overrides.update(settings or {})
        self.settings = load_settings(**overrides)
        self.flows = [self._point_at_sandbox(f, health) for f in flows]
        self.clock = SimulatedClock(start)
        self.service = Service(self.settings, self.flows, clock=self.clock, worker_id="demo")
        self.port = port
        self.http = requests.Session()
        self.tally = Tally()
        self.random = random.Random(2026)

    @staticmethod
    def _point_at_sandbox(flow: Flow, health: dict[str, Any]) -> Flow:
        if flow.powerbi is None:
            return flow
        powerbi = flow.powerbi.model_copy(
            update={
                "workspace": health["powerbi_workspace_id"],
                "dataset": health["powerbi_dataset_id"],
            }
        )
        return flow.model_copy(update={"powerbi": powerbi})

    # --- the web endpoint the sandbox posts clicks to ---------------------------------

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        import uvicorn

        config = uvicorn.Config(
            self.service.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        try:
            yield
        finally:
            server.should_exit = True
            thread.join(timeout=10)

    # --- time -------------------------------------------------------------------------

    def advance(self, delta: timedelta, *, step: timedelta = timedelta(hours=6)) -> None:
        """Move time forward in steps, letting timers fire and the outbox drain each step."""
        end = self.clock.now + delta
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + step)
            self.service.settle()
        self.http.post(
            f"{self.sandbox}/_sandbox/clock", json={"advance_s": delta.total_seconds()}, timeout=10
        )

    # --- people -----------------------------------------------------------------------

    def _users(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.sandbox}/_sandbox/users", timeout=10)
        return list(answer.json()["value"])

    def _cards(self, user: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(where, card) for every card in the user's Teams chats and mailbox, newest last."""
        upn = user["upn"]
        chats = self.http.get(f"{self.sandbox}/_sandbox/chats/{upn}", timeout=10).json()
        for chat in chats.get("value", []):
            for activity in chat["activities"]:
                if activity.get("card"):
                    yield (
                        {"conversation_id": chat["conversationId"], "activity_id": activity["id"]},
                        activity["card"],
                    )
        mails = self.http.get(f"{self.sandbox}/_sandbox/mailboxes/{upn}", timeout=10).json()
        for message in mails.get("value", []):
            if message.get("card"):
                yield ({"message_id": message["id"]}, message["card"])

    def _act(
        self, user: dict[str, Any], where: dict[str, Any], verb: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        answer = self.http.post(
            f"{self.sandbox}/_sandbox/act",
            json={"user": user["upn"], "verb": verb, "data": data, **where},
            timeout=60,
        )
        if answer.status_code >= 500:
            raise DemoError(f"a click by {user['userPrincipalName']} failed: {answer.text}")
        body = answer.json()
        return dict(body.get("response") or body)

    # --- simulated officers -----------------------------------------------------------

    def _value_for(self, flow: Flow, indicator_id: str, unit_hint: str) -> str:
        with self.service.store.transaction() as tx:
            history = tx.history(indicator_id, flow.frequency)
        rng = random.Random(f"{indicator_id}:{len(history)}")
        if history:
            last = history[-1].value
            value = last * rng.uniform(0.96, 1.05)
        else:
            value = rng.uniform(40, 95) if "%" in unit_hint else rng.uniform(100, 900)
        if "%" in unit_hint:
            value = min(max(value, 0.0), 100.0)
            return f"{value:.1f}"
        if abs(value) >= 100:
            return str(round(value))
        return f"{value:.2f}"

    def officers_return(self, *, skip: frozenset[str] | set[str] = frozenset()) -> int:
        """Every owner with a request card returns all of it (confirming flagged values)."""
        acted = 0
        for user in self._users():
            if user["upn"] in skip:
                continue
            for where, card in list(self._cards(user)):
                action = _action(card, "submitReturns")
                if action is None:
                    continue
                key = json.dumps([where, action.get("data", {}).get("versions")], sort_keys=True)
                if key in self.tally.acted:
                    continue
                self.tally.acted.add(key)
                inputs = self._fill(card, action)
                reply = self._act(user, where, "submitReturns", inputs)
                if _has_confirm(reply):
                    confirmed = {**inputs, **{k: "true" for k in _confirm_ids(reply)}}
                    self._act(user, where, "submitReturns", confirmed)
                if card_is_rejection(card):
                    self.tally.resubmitted += 1
                acted += 1
        return acted

    def _fill(self, card: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        versions = action.get("data", {}).get("versions", {})
        cycle_id = int(action["data"]["cycle_id"])
        with self.service.store.transaction() as tx:
            flow_id = tx.get_cycle(cycle_id).flow_id
        flow = next(f for f in self.flows if f.id == flow_id)
        for indicator_id in versions:
            hint = _placeholder(card, f"value__{indicator_id}")
            inputs[f"value__{indicator_id}"] = self._value_for(flow, indicator_id, hint)
            inputs[f"comment__{indicator_id}"] = (
                "Figure taken from the service's case management system at month end; "
                "checked by the team leader."
            )
        return inputs

    # --- simulated approvers ----------------------------------------------------------

    def approvers_decide(self, *, reject_first: bool) -> int:
        acted = 0
        for user in self._users():
            for where, card in list(self._cards(user)):
                if _action(card, APPROVE_VERB) is not None:
                    acted += self._decide_digest(user, where, card, reject_first=reject_first)
                    continue
                action = _action(card, "approve")
                if action is None:
                    continue
                key = json.dumps([where, action.get("data")], sort_keys=True)
                if key in self.tally.acted:
                    continue
                self.tally.acted.add(key)
                if reject_first and self.tally.rejected == 0:
                    self._act(user, where, "reject", {"reason": REJECT_REASON})
                    self.tally.rejected += 1
                else:
                    self._act(user, where, "approve", {})
                acted += 1
        return acted

    def _decide_digest(
        self,
        user: dict[str, Any],
        where: dict[str, Any],
        card: dict[str, Any],
        *,
        reject_first: bool,
    ) -> int:
        """Work through one digest as an approver would: reject one item (the first
        rejection of the rehearsal), approve all without flags, then each flagged item."""
        acted = 0
        current: dict[str, Any] | None = card
        while current is not None and _action(current, APPROVE_VERB) is not None:
            if reject_first and self.tally.rejected == 0:
                reject = _action(current, REJECT_VERB) or {}
                data = dict(reject.get("data") or {})
                data[reason_input_id(int(data["return_id"]))] = REJECT_REASON
                verb = REJECT_VERB
                self.tally.rejected += 1
            elif (every := _action(current, APPROVE_ALL_VERB)) is not None:
                verb, data = APPROVE_ALL_VERB, dict(every.get("data") or {})
            else:
                one = _action(current, APPROVE_VERB) or {}
                verb, data = APPROVE_VERB, dict(one.get("data") or {})
            report = self._act(user, where, verb, data)
            acted += 1
            reply = (report.get("body") or {}).get("value")
            current = reply if isinstance(reply, dict) and reply != current else None
        return acted

    # --- the cycle --------------------------------------------------------------------

    def import_history(self, flow: Flow) -> int:
        """The council's KPI History list, through ``m365perf history import --from-sharepoint``.

        Run before every cycle: the import never overwrites, so a second run adds nothing.
        """
        from m365perf.engine.history import import_history
        from m365perf.history_files import PRESETS, read_sharepoint

        rows = read_sharepoint(
            self.service.clients.graph,
            flow.source.site,
            HISTORY_LIST,
            PRESETS["sharepoint"],
            series=DEMO_SERIES,
        )
        report = import_history(
            self.service.store,
            rows,
            source=f"sharepoint:{HISTORY_LIST}",
            by="demo",
            now=self.clock.now,
            apply=True,
            place="item",
        )
        return report.new

    def run_cycle(self, flow: Flow, period: Period, *, late_owner: bool, reject: bool) -> None:
        plan = timetable(flow, period)
        opening = at_local(plan.opens, flow.schedule.opening_time).astimezone(UTC)
        if opening > self.clock.now:
            self.clock.now = opening
        self.import_history(flow)
        self.service.open_cycle(flow, period, actor="demo")
        self.service.settle()
        self._count_request_cards()
        late = self._late_owner(flow) if late_owner else None
        self.advance(timedelta(hours=2), step=timedelta(hours=1))
        self.officers_return(skip={late} if late else set())
        for _ in range(12):
            self.advance(timedelta(hours=3), step=timedelta(hours=1))
            decided = self.approvers_decide(reject_first=reject)
            resent = self.officers_return(skip={late} if late else set())
            if not decided and not resent:
                break
        if late:
            due = at_local(plan.due, flow.schedule.opening_time).astimezone(UTC)
            self.advance(due - self.clock.now + timedelta(days=2), step=timedelta(hours=6))
            self.officers_return()
            self.tally.late_owner = late
            for _ in range(12):
                self.advance(timedelta(hours=3), step=timedelta(hours=1))
                if not self.approvers_decide(reject_first=False) and not self.officers_return():
                    break
        debounce = timedelta(minutes=(flow.powerbi.debounce_minutes if flow.powerbi else 0) + 5)
        self.advance(debounce, step=timedelta(minutes=5))
        self.advance(timedelta(minutes=30), step=timedelta(minutes=2))

    def finish(self, *, step: timedelta = timedelta(minutes=1), rounds: int = 60) -> None:
        """Let sends that are waiting to be tried again go, a minute at a time.

        Under faults a send can still be waiting when the cycle's script ends; without
        faults nothing waits, and the clock does not move.
        """
        for _ in range(rounds):
            with self.service.store.transaction() as tx:
                waiting = tx.list_outbox(status=OutboxStatus.PENDING) + tx.list_outbox(
                    status=OutboxStatus.IN_FLIGHT
                )
            if not waiting:
                return
            self.advance(step, step=step)

    def _count_request_cards(self) -> None:
        """The opening requests as the sandbox holds them, before anyone has clicked."""
        for user in self._users():
            for _where, card in self._cards(user):
                for card_id in _card_ids(card):
                    request = _opening_request(card_id)
                    if request is not None:
                        self.tally.request_cards.add(request)

    def _late_owner(self, flow: Flow) -> str | None:
        with self.service.store.transaction() as tx:
            cycles = tx.list_cycles(flow_id=flow.id)
            returns = tx.list_returns(cycle_id=cycles[-1].id) if cycles else []
            owners = sorted({r.owner_email for r in returns if r.owner_email})
        return owners[-1] if owners else None

    # --- the summary ------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        store = self.service.store
        with store.transaction() as tx:
            returns = [r for c in tx.list_cycles() for r in tx.list_returns(cycle_id=c.id)]
            events = [e for c in tx.list_cycles() for e in tx.list_audit(cycle_id=c.id)]
            all_events = tx.list_audit()
            sent = tx.list_outbox(kind=OutboxKind.SEND_CARD)
            parked = len(tx.list_outbox(status=OutboxStatus.PARKED))
        requests_sent = len(
            {r for r in (_opening_request(str(m.payload.get("card_id"))) for m in sent) if r}
        )
        first_reminder: dict[tuple[int | None, str], datetime] = {}
        for e in events:
            if e.action == AuditAction.OWNER_REMINDED:
                first_reminder.setdefault((e.cycle_id, str(e.subject_id)), e.at)
        returned = [r for r in returns if r.submitted_at is not None]

        def before_any_chase(r: Return) -> bool:
            first = first_reminder.get((r.cycle_id, str(r.owner_id)))
            return first is None or (r.submitted_at is not None and r.submitted_at < first)

        self_returned = [r for r in returned if before_any_chase(r)]
        sandbox = self._sandbox_counts()
        written = sum(1 for e in all_events if e.action == AuditAction.RETURN_WRITTEN_BACK)
        return {
            "indicators": len(returns),
            "requests_sent": requests_sent,
            "returns": len(returned),
            "approved": sum(1 for r in returns if r.status is ReturnStatus.APPROVED),
            "rejected": sum(1 for e in events if e.action == AuditAction.RETURN_REJECTED),
            "resubmitted": self.tally.resubmitted,
            "late": sum(1 for r in returns if r.late),
            "written_back": written,
            "powerbi_refreshes": sum(
                1 for e in all_events if e.action == AuditAction.POWERBI_REFRESH_REQUESTED
            ),
            "self_return_rate": round(len(self_returned) / len(returned), 3) if returned else 0.0,
            "audit_events": len(all_events),
            "parked": parked,
            "sandbox": sandbox,
        }

    def _sandbox_counts(self) -> dict[str, Any]:
        graph = self.service.clients.graph
        flow = self.flows[0]
        host, _, path = flow.writeback.site.partition(":")
        site = graph.get_site_id(host, path)
        results = graph.get_list_id(site, flow.writeback.list_title)
        rows = list(graph.list_items(site, results))
        keys = {(r.fields.get("IndicatorId"), r.fields.get("Period")) for r in rows}
        refreshes = 0
        for f in self.flows:
            if f.powerbi is not None:
                history = self.service.clients.powerbi.refresh_history(
                    f.powerbi.workspace, f.powerbi.dataset
                )
                refreshes = max(refreshes, len(history))
        return {
            "most_approval_messages_per_approver_cycle_step": self._most_approval_messages(),
            "results_rows": len(rows),
            "distinct_keys": len(keys),
            "powerbi_refresh_history": refreshes,
            "request_cards": len(self.tally.request_cards),
        }

    def _most_approval_messages(self) -> int:
        """The most approval cards and e-mails one approver holds for one cycle and step.

        Read from the sandbox's chats and mailboxes; each part of a split digest counts on
        its own (a digest covers every step of the approver's in the cycle).
        """
        with self.service.store.transaction() as tx:
            cycle_of = {
                r.id: r.cycle_id for c in tx.list_cycles() for r in tx.list_returns(cycle_id=c.id)
            }
        counts: Counter[tuple[Any, ...]] = Counter()
        for user in self._users():
            for _where, card in self._cards(user):
                keys: set[tuple[Any, ...]] = set()
                for text in _card_ids(card):
                    card_id = _card_id(text)
                    if isinstance(card_id, DigestCardId):
                        keys.add((user["upn"], card_id.cycle_id, "digest", card_id.part))
                    elif isinstance(card_id, ApprovalCardId):
                        cycle = cycle_of.get(card_id.return_id)
                        keys.add((user["upn"], cycle, "step", card_id.step_index))
                counts.update(keys)
        return max(counts.values(), default=0)


def _nodes(card: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a card, however deeply nested."""
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _action(card: dict[str, Any], verb: str) -> dict[str, Any] | None:
    return next(
        (n for n in _nodes(card) if n.get("type") == "Action.Execute" and n.get("verb") == verb),
        None,
    )


def _card_ids(card: dict[str, Any]) -> set[str]:
    """The card ids named in a card's actions (a receipt keeps its request's id)."""
    return {
        str(n["data"]["card_id"])
        for n in _nodes(card)
        if n.get("type") == "Action.Execute"
        and isinstance(n.get("data"), dict)
        and n["data"].get("card_id")
    }


def _placeholder(card: dict[str, Any], input_id: str) -> str:
    node = next((n for n in _nodes(card) if n.get("id") == input_id), {})
    return str(node.get("placeholder", "")) + str(node.get("label", ""))


def _confirm_ids(reply: dict[str, Any]) -> list[str]:
    return [str(n["id"]) for n in _nodes(reply) if str(n.get("id", "")).startswith("confirm__")]


def _has_confirm(reply: dict[str, Any]) -> bool:
    return bool(_confirm_ids(reply))


def card_is_rejection(card: dict[str, Any]) -> bool:
    action = _action(card, "submitReturns")
    card_id = _card_id(str(action.get("data", {}).get("card_id", ""))) if action else None
    return isinstance(card_id, RejectionCardId)


def _card_id(text: str) -> CardId | None:
    try:
        return CardId.parse(text)
    except CardIdError:
        return None


def _opening_request(text: str) -> str | None:
    """The whole request a card id is (a part of), if it is an owner's opening request.

    Its e-mail copy is not counted: it is the same request sent again another way.
    """
    card_id = _card_id(text)
    if isinstance(card_id, RequestCardId) and card_id.round == ROUND_OPEN and not card_id.by_email:
        return str(card_id.whole())
    return None


def run_demo(flows: list[Flow], workdir: Path, *, periods: dict[str, str]) -> dict[str, Any]:
    """Rehearse a cycle of each flow against a fresh seeded sandbox; return the summary."""
    return rehearse(flows, workdir, periods=periods)[0]


def _under_faults(read_timeout_s: float | None) -> dict[str, str]:
    """Client settings for a rehearsal under faults: a slow answer is given up on (a
    timeout shorter than the sandbox's slow answers), and one request may meet up to ten
    faults in a row before the rehearsal's own reads (register, history) give up."""
    settings = {"http_max_attempts": "10"}
    if read_timeout_s is not None:
        settings["read_timeout_s"] = str(read_timeout_s)
    return settings


def rehearse(
    flows: list[Flow],
    workdir: Path,
    *,
    periods: dict[str, str],
    faults: str = "",
    fault_seed: int | None = None,
    read_timeout_s: float | None = None,
    page_size: int | None = None,
) -> tuple[dict[str, Any], FinalState]:
    """The rehearsal behind ``demo``: its summary and the state it left behind.

    ``faults`` (the sandbox's ``--faults``) breaks that share of requests, replayably
    with ``fault_seed``; the summary then says what was broken (``injected``). Give a
    ``read_timeout_s`` shorter than the sandbox's slow responses to have clients give up;
    ``page_size`` is the sandbox's items per Graph page (5 by default).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    bot_endpoint = f"http://127.0.0.1:{port}/api/messages"
    sandbox = running_sandbox(
        workdir / "sandbox",
        bot_endpoint,
        log=workdir / "sandbox.log",
        faults=faults,
        fault_seed=fault_seed,
        page_size=page_size,
    )
    with sandbox as health:
        ordered = sorted(flows, key=lambda f: Period.parse_for(f.frequency, periods[f.id]).end)
        first = Period.parse_for(ordered[0].frequency, periods[ordered[0].id])
        start = at_local(timetable(ordered[0], first).opens, ordered[0].schedule.opening_time)
        rehearsal = Rehearsal(
            health,
            ordered,
            workdir,
            port,
            start=start.astimezone(UTC),
            settings=_under_faults(read_timeout_s) if faults else None,
        )
        with rehearsal.serving():
            for index, flow in enumerate(rehearsal.flows):
                period = Period.parse_for(flow.frequency, periods[flow.id])
                rehearsal.run_cycle(
                    flow, period, late_owner=index == len(flows) - 1, reject=index == len(flows) - 1
                )
            rehearsal.finish()
            summary = rehearsal.summary()
            state = final_state(rehearsal.service.store, rehearsal.service.clients, rehearsal.flows)
        if faults:
            summary["injected"] = injected(rehearsal.sandbox).counts
        rehearsal.service.store.close()
    return summary, state
