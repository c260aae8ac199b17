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
from m365perf.cards.digest import REFRESH_VERB as DIGEST_REFRESH_VERB
from m365perf.cards.formatting import format_date
from m365perf.cards.render import SHOW_REQUEST_VERB
from m365perf.domain.kinds import Unit
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
from m365perf.progress import QUIET, Advance, Progress
from m365perf.rehearsal_faults import FinalState, final_state, injected
from m365perf.settings import load_settings
from m365perf.store import OutboxStatus, Return, ReturnStatus

HISTORY_LIST = "KPI History"
#: Graph's own default page for list items, in both rehearsals: the sandbox's smaller
#: default is for the tests of paging (tests/contract), and made the history import
#: of the whole register wait on the SharePoint budget for most of a minute.
PAGE_SIZE = 200
DEMO_SERIES = "coventry"
"""The council's own series in the sandbox's history list (``history import --series``)."""


def _uncounted(done: int = 1) -> None:
    """Counts nothing: for loops run without a progress line."""


REJECT_REASON = "This does not match the figure in the source system: please check and resend."


class DemoError(M365PerfError, RuntimeError):
    """The rehearsal could not run (the sandbox did not start, a click failed)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_sandbox(
    data_dir: Path,
    bot_endpoint: str,
    *,
    log: Path,
    page_size: int | None = None,
    faults: str = "",
    fault_seed: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Start ``m365perf sandbox --seed`` as its own process; yield its health document.

    ``page_size``: items per Graph page (the sandbox's default is small, to exercise paging).
    ``faults`` and ``fault_seed`` are the sandbox's ``--faults`` and ``--fault-seed``.
    """
    port = free_port()
    tls_port = free_port()
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
        *(["--page-size", str(page_size)] if page_size else []),
    ]
    if faults:
        command += ["--faults", faults]
    if fault_seed is not None:
        command += ["--fault-seed", str(fault_seed)]
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
    cycles: list[CycleRehearsed] = field(default_factory=list)


@dataclass(frozen=True)
class CycleRehearsed:
    """One cycle the rehearsal opened: what it asked for and what it could not route."""

    cycle_id: int
    flow_id: str
    flow_name: str
    period: str
    indicators: int
    unroutable: int


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
        settings: Mapping[str, Any] | None = None,
        progress: Progress = QUIET,
    ) -> None:
        """``settings``: more overrides on top of the sandbox's (the live demo's sign-in, the
        clients' timeouts under faults)."""
        from m365perf.service import Service

        self.progress = progress
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

    def _value_for(self, flow: Flow, indicator_id: str) -> str:
        """A plausible figure in the indicator's unit, near its last one where it has history."""
        with self.service.store.transaction() as tx:
            history = tx.history(indicator_id, flow.frequency)
            indicator = tx.find_indicator(flow.id, indicator_id)
        unit = indicator.unit if indicator is not None else None
        rng = random.Random(f"{indicator_id}:{len(history)}")
        if history:
            value = history[-1].value * rng.uniform(0.96, 1.05)
        else:
            value = rng.uniform(40, 95) if unit is Unit.PERCENTAGE else rng.uniform(100, 900)
        if unit is Unit.PERCENTAGE:
            return f"{min(max(value, 0.0), 100.0):.1f}"
        if unit is Unit.COUNT or abs(value) >= 100:
            return str(round(value))
        return f"{value:.2f}"

    def officers_return(
        self, *, skip: frozenset[str] | set[str] = frozenset(), counted: Advance = _uncounted
    ) -> int:
        """Every owner with a request card returns all of it (confirming flagged values);
        a receipt that lists indicators still to return is followed, as an officer would."""
        acted = 0
        for user in self._users():
            counted()
            if user["upn"] in skip:
                continue
            for where, card in list(self._cards(user)):
                action = _action(card, "submitReturns")
                if action is None:
                    card = self._remaining(user, where, card)
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

    def _remaining(
        self, user: dict[str, Any], where: dict[str, Any], card: dict[str, Any]
    ) -> dict[str, Any]:
        """The request a receipt's "Return the remaining indicators" opens, else the card."""
        action = _action(card, SHOW_REQUEST_VERB)
        if action is None:
            return card
        key = json.dumps([where, SHOW_REQUEST_VERB, action.get("data")], sort_keys=True)
        if key in self.tally.acted:
            return card
        self.tally.acted.add(key)
        return _reply_card(self._act(user, where, SHOW_REQUEST_VERB, dict(action["data"]))) or card

    def _opened(
        self, user: dict[str, Any], where: dict[str, Any], card: dict[str, Any]
    ) -> dict[str, Any]:
        """A digest as its approver sees it on opening: Outlook and Teams run the card's
        refresh action, so items added since it was sent are on it."""
        action = (card.get("refresh") or {}).get("action") or {}
        if action.get("verb") != DIGEST_REFRESH_VERB:
            return card
        return (
            _reply_card(self._act(user, where, DIGEST_REFRESH_VERB, dict(action["data"]))) or card
        )

    def _fill(self, card: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        versions = action.get("data", {}).get("versions", {})
        cycle_id = int(action["data"]["cycle_id"])
        with self.service.store.transaction() as tx:
            flow_id = tx.get_cycle(cycle_id).flow_id
        flow = next(f for f in self.flows if f.id == flow_id)
        for indicator_id in versions:
            inputs[f"value__{indicator_id}"] = self._value_for(flow, indicator_id)
            inputs[f"comment__{indicator_id}"] = (
                "Figure taken from the service's case management system at month end; "
                "checked by the team leader."
            )
        return inputs

    # --- simulated approvers ----------------------------------------------------------

    def approvers_decide(self, *, reject_first: bool, counted: Advance = _uncounted) -> int:
        acted = 0
        for user in self._users():
            counted()
            for where, sent in list(self._cards(user)):
                card = self._opened(user, where, sent)
                if _action(card, APPROVE_VERB) is not None:
                    acted += self._decide_digest(
                        user, where, card, reject_first=reject_first, counted=counted
                    )
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
        counted: Advance = _uncounted,
    ) -> int:
        """Work through one digest as an approver would: reject one item (the first
        rejection of the rehearsal), approve all without flags, then each flagged item.
        ``counted(0)`` after each click lets a long digest say how far the round has got."""
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
            reply = _reply_card(self._act(user, where, verb, data))
            acted += 1
            counted(0)
            current = reply if reply is not None and reply != current else None
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
        """One cycle of ``flow``, opened on its planned day and worked until all is done."""
        say = self.progress.say
        plan = timetable(flow, period)
        opening = at_local(plan.opens, flow.schedule.opening_time).astimezone(UTC)
        if opening > self.clock.now:
            self.clock.now = opening
        say(
            f"{flow.name} {period.label}: opens {format_date(plan.opens)}, "
            f"due {format_date(plan.due)}"
        )
        points = self.import_history(flow)
        if points:
            say(f"  imported {points} past values from SharePoint '{HISTORY_LIST}'")
        opened = self.service.open_cycle(flow, period, actor="demo")
        self.tally.cycles.append(
            CycleRehearsed(
                opened.cycle_id,
                flow.id,
                flow.name,
                period.label,
                opened.returns,
                len(opened.unroutable),
            )
        )
        say(
            f"  opened: {opened.returns} indicators asked of {opened.owners} owners"
            f" ({len(opened.unroutable)} cannot be routed); sending their requests"
        )
        self.service.settle()
        self._count_request_cards()
        late = self._late_owner(flow) if late_owner else None
        skip = {late} if late else set()
        self.advance(timedelta(hours=2), step=timedelta(hours=1))
        returned = self._officers(skip=skip)
        say(f"  owners returned {returned} requests" + (f"; {late} is late" if late else ""))
        self._approval_rounds(reject=reject, skip=skip)
        if late:
            due = at_local(plan.due, flow.schedule.opening_time).astimezone(UTC)
            say("  two working days pass after the due date: reminders and a chaser go out")
            self.advance(due - self.clock.now + timedelta(days=2), step=timedelta(hours=6))
            say(f"  the late owner returns {self._officers()} request(s)")
            self.tally.late_owner = late
            self._approval_rounds(reject=False, skip=set())
        say("  approved figures are written back to SharePoint; Power BI refreshes")
        debounce = timedelta(minutes=(flow.powerbi.debounce_minutes if flow.powerbi else 0) + 5)
        self.advance(debounce, step=timedelta(minutes=5))
        self.advance(timedelta(minutes=30), step=timedelta(minutes=2))
        say(f"  {flow.name} {period.label}: {self._approved(flow)} approved")

    def _officers(self, *, skip: frozenset[str] | set[str] = frozenset()) -> int:
        """Every owner acts on what is in their inbox, counted on the terminal."""
        with self.progress.counting(
            "  owners returning their figures", len(self._users())
        ) as counted:
            return self.officers_return(skip=skip, counted=counted)

    def _approval_rounds(self, *, reject: bool, skip: set[str]) -> None:
        """A few hours pass between rounds; approvers decide, owners resend what came back."""
        for round_ in range(1, 13):
            self.advance(timedelta(hours=3), step=timedelta(hours=1))
            with self.progress.counting(
                f"  approval round {round_}", len(self._users())
            ) as counted:
                decided = self.approvers_decide(reject_first=reject, counted=counted)
            resent = self.officers_return(skip=skip)
            if decided or resent:
                self.progress.say(
                    f"  round {round_}: {decided} decisions by approvers, {resent} resubmitted"
                )
            if not decided and not resent:
                break

    def _approved(self, flow: Flow) -> int:
        with self.service.store.transaction() as tx:
            cycles = tx.list_cycles(flow_id=flow.id)
            returns = tx.list_returns(cycle_id=cycles[-1].id) if cycles else []
        return sum(1 for r in returns if r.status is ReturnStatus.APPROVED)

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
            "flows": [self._cycle_summary(c, returns) for c in self.tally.cycles],
            "sandbox": sandbox,
        }

    @staticmethod
    def _cycle_summary(cycle: CycleRehearsed, returns: list[Return]) -> dict[str, Any]:
        """One flow's cycle: what it asked for, what came back, what was approved."""
        mine = [r for r in returns if r.cycle_id == cycle.cycle_id]
        return {
            "flow": cycle.flow_id,
            "name": cycle.flow_name,
            "period": cycle.period,
            "indicators": cycle.indicators,
            "unroutable": cycle.unroutable,
            "returns": sum(1 for r in mine if r.submitted_at is not None),
            "approved": sum(1 for r in mine if r.status is ReturnStatus.APPROVED),
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


def _reply_card(report: dict[str, Any]) -> dict[str, Any] | None:
    """The card an invoke answered with, if it answered with one."""
    reply = (report.get("body") or {}).get("value")
    return reply if isinstance(reply, dict) and reply.get("type") == "AdaptiveCard" else None


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


def run_demo(
    flows: list[Flow],
    workdir: Path,
    *,
    periods: dict[str, str],
    progress: Progress = QUIET,
) -> dict[str, Any]:
    """Rehearse a cycle of each flow against a fresh seeded sandbox; return the summary."""
    return rehearse(flows, workdir, periods=periods, progress=progress)[0]


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
    progress: Progress = QUIET,
) -> tuple[dict[str, Any], FinalState]:
    """The rehearsal behind ``demo``: its summary and the state it left behind.

    ``faults`` (the sandbox's ``--faults``) breaks that share of requests, replayably
    with ``fault_seed``; the summary then says what was broken (``injected``). Give a
    ``read_timeout_s`` shorter than the sandbox's slow responses to have clients give up.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    bot_endpoint = f"http://127.0.0.1:{port}/api/messages"
    progress.say("Starting the Microsoft 365 sandbox (Coventry's register, people and history)")
    sandbox = running_sandbox(
        workdir / "sandbox",
        bot_endpoint,
        log=workdir / "sandbox.log",
        page_size=PAGE_SIZE,
        faults=faults,
        fault_seed=fault_seed,
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
            progress=progress,
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
