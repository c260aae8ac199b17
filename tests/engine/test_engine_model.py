"""The engine against a model: random clicks by random people, checked after every step.

Hypothesis drives the October cycle of the small council in ``engine_support`` (its three
returns and one owned by Nadia of the performance team) on SQLite, once with one approval
card per return and once with digests (each digest item clicked as such a card would be).
The monthly flow's chain is Supervisor check → Head of service sign-off (only when red) →
Performance team (a group of two). The steps are random owner submissions, approvals,
rejections, resubmissions, corrections, timer firings (the clock moves on and due timers fire) and
stale, tampered or out-of-turn clicks by owners, each step's approvers, group members
and a stranger. A click sends back the data of a card the engine queued for (or answered
to) that person, the way Teams does, or a tampered copy of it. After every step the
model checks what the council relies on:

* a step is decided only after every earlier step of its chain, approved only after
  every earlier step was approved (or skipped, with a reason), and only by one of its
  approvers who is neither the return's owner nor its submitter; a return is approved
  only when every step of its current chain was approved in order or skipped where its
  condition did not apply;
* every status change of a cycle, return or step is a transition of the lifecycle table;
* every approved version of a return is queued for write-back exactly once, naming the
  person who gave the last approval;
* a decided step never changes again;
* a refused click (stale card, wrong step, not an approver, a stranger, an owner on their
  own return, tampered data) changes no return and no step, and a right click is acted on.

CI runs ``M365PERF_MODEL_EXAMPLES`` sequences (default 200) of up to
``M365PERF_MODEL_STEPS`` steps (default 30), about five minutes on two cores. The full size
(2000 sequences, about 45 minutes):

    M365PERF_MODEL_EXAMPLES=2000 .venv/bin/pytest tests/engine/test_engine_model.py

A failure prints each step as what it did, in the council's words, then the call that
made it (``state.jump_the_queue(pick=0, verb='approve')``).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from engine_support import (
    ANN,
    BEN,
    BOB,
    CAT,
    DAN,
    MONTHLY,
    NADIA,
    PEOPLE,
    ROWS,
    START,
    Council,
    make_council,
    per_item,
)
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from m365perf.cards.digest import APPROVE_VERB, REJECT_VERB
from m365perf.domain.lifecycle import CURRENT_STEP, DECIDED_STEP, TRANSITIONS, Machine
from m365perf.domain.lifecycle import INITIAL as LIFECYCLE_INITIAL
from m365perf.engine import ActionError, Caller, Engine
from m365perf.flows import load_flow
from m365perf.messages.ids import DigestCardId
from m365perf.store import AuditEvent, OutboxMessage, Store, create_store

EXAMPLES = int(os.environ.get("M365PERF_MODEL_EXAMPLES", "200"))
STEPS = int(os.environ.get("M365PERF_MODEL_STEPS", "30"))

FLOW = per_item(load_flow(MONTHLY))
DIGEST_FLOW = load_flow(MONTHLY)  # approval.cards: digest (the default)
PERIOD = "2026-10"
#: The council's three indicators and one owned by Nadia, a member of the performance team:
#: her own return's group step is left to Ben, and her clicks on it must be refused.
NADIA_ROW = [
    "CP004",
    "Sickness absence days per FTE",
    "days",
    "lower_is_better",
    "Monthly",
    "8",
    "1",
    "",
    "",
    "nadia.clarke@contoso.gov.uk",
    "bob.ray@contoso.gov.uk",
    "cat.doe@contoso.gov.uk",
    "Corporate",
    "Yes",
]
KEYS = ("CP001", "CP002", "CP003", "CP004")
EVE = Caller("99999999-0000-0000-0000-000000000009", "Eve Stranger")  # in nobody's directory
PEOPLE_BY_NAME = {
    "Ann": ANN,
    "Bob": BOB,
    "Cat": CAT,
    "Dan": DAN,
    "Nadia": NADIA,
    "Ben": BEN,
    "Eve": EVE,
}
NAMES = {person[0]: person[1] for person in PEOPLE}

# --- the lifecycle table ----------------------------------------------------------------


def _value(item: Any) -> str:
    return str(item.value if isinstance(item, Enum) else item)


def allowed_transitions() -> dict[str, frozenset[tuple[str, str]]]:
    """(from, to) pairs per machine, from the one lifecycle table the store enforces."""
    pairs: dict[str, set[tuple[str, str]]] = {m.value: set() for m in Machine}
    for t in TRANSITIONS:
        pairs[t.machine.value] |= {(source.value, t.target.value) for source in t.sources}
    return {machine: frozenset(found) for machine, found in pairs.items()}


INITIAL = {m.value: state.value for m, state in LIFECYCLE_INITIAL.items()}
DECIDED = frozenset(s.value for s in DECIDED_STEP)
CURRENT = frozenset(s.value for s in CURRENT_STEP)


# --- what the model knows of the flow ---------------------------------------------------

Row = dict[str, Any]

#: The steps that run only sometimes, and when (the model's own copy of the flow's `when`).
APPLIES: dict[str, Callable[[Row], bool]] = {
    "Head of service sign-off": lambda ret: ret["rag"] == "red",
}

#: Figures by the RAG they get: CP001 45% higher is better ±5%, CP002 20 days lower is
#: better ±2, CP003 has no target (never red, so never goes to the head of service),
#: CP004 8 days lower is better ±1.
FIGURES = {
    "CP001": {"green": "46", "amber": "44", "red": "30"},
    "CP002": {"green": "19", "amber": "21", "red": "31"},
    "CP003": {"green": "120", "amber": "140", "red": "400"},
    "CP004": {"green": "7", "amber": "8.5", "red": "12"},
}

#: Who clicks, as a role towards the return whose card it is.
ROLES = (
    "current approver",
    "later approver",
    "earlier approver",
    "owner",
    "group member",
    "other owner",
    "stranger",
)

#: What is done to the card's data before it is sent ("step=mine": the caller's own step).
TAMPERS = (
    "none",
    "step=mine",
    "step+1",
    "step-1",
    "step=0",
    "step=last",
    "step=99",
    "step=text",
    "no step",
    "version-1",
    "version+1",
    "version=text",
    "other return",
    "return=9999",
)

WAITS = {
    "10 minutes": timedelta(minutes=10),
    "2 hours": timedelta(hours=2),
    "1 day": timedelta(days=1),
    "3 days": timedelta(days=3),
}


def check_model_matches_flow() -> None:
    """The model's copy of the chain is the flow's; a changed flow fails here, not later."""
    steps = FLOW.approval.steps
    assert [s.name for s in steps] == [
        "Supervisor check",
        "Head of service sign-off",
        "Performance team",
    ]
    conditional = {s.name: s.when for s in steps if s.when is not None}
    assert set(conditional) == set(APPLIES)
    when = conditional["Head of service sign-off"]
    assert when is not None and [_value(r) for r in when.rag or []] == ["red"]
    assert when.direction is None and when.change_over_percent is None


# --- reading the store ------------------------------------------------------------------


def _row(record: Any) -> Row:
    return {k: _value(v) if isinstance(v, Enum) else v for k, v in record.model_dump().items()}


@dataclass
class Snapshot:
    """Everything the invariants look at, read through the store's transaction methods."""

    cycles: dict[int, Row]
    returns: dict[int, Row]
    chains: dict[tuple[int, int], list[Row]]  # (return id, return version) → steps in order
    steps: dict[int, Row]
    status: dict[int, str]  # step id → status
    outbox: list[OutboxMessage]
    audit: list[AuditEvent]

    def latest(self, return_id: int) -> int | None:
        """The version of the return's current chain (its newest), if it has one."""
        versions = [v for rid, v in self.chains if rid == return_id and self.chains[(rid, v)]]
        return max(versions) if versions else None

    def chain(self, return_id: int) -> list[Row]:
        version = self.latest(return_id)
        return [] if version is None else self.chains[(return_id, version)]

    def current_step(self, return_id: int) -> Row | None:
        """The step whose approvers are asked now, if the return is awaiting approval."""
        if self.returns[return_id]["status"] != "returned":
            return None
        return next((s for s in self.chain(return_id) if self.status[s["id"]] in CURRENT), None)

    def key(self, return_id: int) -> str:
        return str(self.returns[return_id]["indicator_key"])

    def return_id(self, key: str) -> int:
        return next(rid for rid, ret in self.returns.items() if ret["indicator_key"] == key)


def read_snapshot(store: Store, versions: dict[int, set[int]]) -> Snapshot:
    """The state now; ``versions`` (the chains seen so far) grows with every new chain."""
    with store.transaction() as tx:
        cycles = {c.id or 0: _row(c) for c in tx.list_cycles()}
        returns = {r.id or 0: _row(r) for r in tx.list_returns()}
        chains: dict[tuple[int, int], list[Row]] = {}
        for rid in returns:
            latest = tx.list_steps(rid)
            known = versions.setdefault(rid, set())
            if latest:
                known.add(latest[0].return_version)
            for version in sorted(known):
                chain = (
                    latest
                    if latest and latest[0].return_version == version
                    else tx.list_steps(rid, version)
                )
                chains[(rid, version)] = [_row(s) for s in chain]
        outbox = tx.list_outbox()
        audit = tx.list_audit()
    steps = {s["id"]: s for chain in chains.values() for s in chain}
    status = {sid: str(s["status"]) for sid, s in steps.items()}
    return Snapshot(cycles, returns, chains, steps, status, outbox, audit)


def _whole(value: Any) -> int | None:
    """A whole number the way the engine reads card data, or None."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _action(card: Row, verb: str) -> Row | None:
    actions = card.get("actions")
    if not isinstance(actions, list):
        return None
    return next((a for a in actions if isinstance(a, dict) and a.get("verb") == verb), None)


def _digest_items(card: Row) -> list[Row]:
    """The data of each item's Approve button on a digest card, in the card's order."""
    found: list[Row] = []
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") == APPROVE_VERB:
                found.append(dict(node["data"]))
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


@dataclass(frozen=True)
class Seen:
    """A card as one person has it: queued for them, or the engine's answer to their click."""

    user_id: str
    card: Row
    subject: tuple[str, int] | None = None  # the queued card's subject (an approval: a step)

    def data(self, verb: str) -> Row | None:
        action = _action(self.card, verb)
        data = action.get("data") if action else None
        return dict(data) if isinstance(data, dict) else None

    def return_id(self) -> int | None:
        data = self.data("approve")
        return _whole(data.get("return_id")) if data else None


# --- what a step should do ---------------------------------------------------------------


@dataclass(frozen=True)
class Unchanged:
    why: str


@dataclass(frozen=True)
class Decided:
    step_id: int
    status: str
    by: str


@dataclass(frozen=True)
class BecomesStatus:
    return_id: int
    status: str
    why: str


Expectation = Unchanged | Decided | BecomesStatus | None


def _changes(before: dict[int, Row], after: dict[int, Row], what: str) -> list[str]:
    lines = []
    for ident in sorted(set(before) | set(after)):
        old, new = before.get(ident), after.get(ident)
        if old is None or new is None:
            lines.append(f"{what} {ident} {'appeared' if old is None else 'vanished'}")
            continue
        diff = [f"{k} {old[k]!r} → {new.get(k)!r}" for k in old if old[k] != new.get(k)]
        if diff:
            lines.append(f"{what} {ident}: " + ", ".join(diff))
    return lines


@dataclass
class Ledger:
    """What the model remembers across steps."""

    versions: dict[int, set[int]] = field(default_factory=dict)
    cards: list[Seen] = field(default_factory=list)
    holder: dict[str, str] = field(default_factory=dict)  # card id → user id
    subject: dict[str, tuple[str, int] | None] = field(default_factory=dict)  # card id →
    outbox_read: int = 0
    approved: dict[tuple[int, int], str | None] = field(default_factory=dict)  # → ApprovedBy


class EngineModel(RuleBasedStateMachine):
    """One council, one cycle; rules are what people (and the clock) do to it."""

    def __init__(self, template: Path, workdir: Path, number: int, cards: str) -> None:
        super().__init__()
        self.path = workdir / f"council-{number}.db"
        shutil.copyfile(template, self.path)
        store = create_store(f"sqlite:///{self.path}")
        self.digest = cards == "digest"
        flow = DIGEST_FLOW if self.digest else FLOW
        self.council = Council(Engine(store, [flow]), store, START)
        self.table = allowed_transitions()
        self.ledger = Ledger()
        self.expect: Expectation = None
        self.last = read_snapshot(store, self.ledger.versions)
        self._take_in(self.last)

    def teardown(self) -> None:
        self.council.store.close()
        self.path.unlink(missing_ok=True)

    # --- people ---------------------------------------------------------------------

    def _caller(self, user_id: str) -> Caller:
        return Caller(user_id, NAMES.get(user_id, user_id))

    def _name(self, user_id: str | None) -> str:
        return NAMES.get(user_id or "", user_id or "nobody")

    def _cards(self, verb: str, *, user_id: str | None = None) -> list[Seen]:
        """Cards with this action, newest first (only this person's, if given)."""
        found = [c for c in self.ledger.cards if c.data(verb) is not None]
        if user_id is not None:
            found = [c for c in found if c.user_id == user_id]
        return found[::-1]

    def _take_in(self, snap: Snapshot) -> None:
        """Hand each newly queued card to its person, as Teams would show it."""
        for message in snap.outbox:
            if (message.id or 0) <= self.ledger.outbox_read:
                continue
            payload = message.payload
            if message.kind == "send_card":
                user_id = str(payload["user"]["id"])
                self.ledger.holder[str(payload["card_id"])] = user_id
                subject_type, subject_id = payload.get("subject_type"), payload.get("subject_id")
                subject_number = _whole(subject_id)
                subject = (
                    (str(subject_type), subject_number)
                    if subject_type and subject_number is not None
                    else None
                )
                self.ledger.subject[str(payload["card_id"])] = subject
                self._hand(user_id, payload["card"], subject)
            elif message.kind == "update_card":
                holder = self.ledger.holder.get(str(payload["card_id"]))
                if holder is not None:
                    # a digest is updated in place: what it shows now is as good as a send
                    subject = self.ledger.subject.get(str(payload["card_id"]))
                    self._hand(holder, payload["card"], subject if self.digest else None)
            self.ledger.outbox_read = max(self.ledger.outbox_read, message.id or 0)

    def _hand(self, user_id: str, card: Row, subject: tuple[str, int] | None) -> None:
        """Give a card to its person; a digest as one approval card per item it lists.

        Each item of a digest carries the data of one return, version and step, as a
        one-return card does; so the rules below click digest items and single cards alike.
        """
        if not self.digest or not _digest_items(card):
            self.ledger.cards.append(Seen(user_id, card, subject))
            return
        for data in _digest_items(card):
            item = {
                "actions": [
                    {"type": "Action.Execute", "verb": "approve", "data": data},
                    {"type": "Action.Execute", "verb": "reject", "data": data},
                ]
            }
            self.ledger.cards.append(Seen(user_id, item, subject))

    def _act(self, caller: Caller, verb: str, data: Row) -> str:
        self.council.tick(minutes=1)
        if self.digest and verb in ("approve", "reject") and "cycle_id" in data:
            # The click on the caller's own digest showing this item (the card id is the
            # client's to send: the engine decides from the store, not from the card).
            data = dict(data)
            data["card_id"] = str(DigestCardId(int(data["cycle_id"]), caller.user_id))
            if "reason" in data:
                data[f"reason__{data.get('return_id')}"] = data.pop("reason")
            verb = APPROVE_VERB if verb == "approve" else REJECT_VERB
        try:
            reply = self.council.act(caller, verb, data)
        except ActionError as exc:
            return f"refused with {type(exc).__name__}: {exc.message}"
        # the answer to a click on a digest is the digest as it stands: live data too
        self._hand(caller.user_id, reply, ("cycle", 1) if self.digest else None)
        return "answered with a card"

    # --- rules ----------------------------------------------------------------------

    @rule(
        who=st.sampled_from(["owner", "owner", "owner", "owner", "Ann", "Dan", "Bob", "Eve"]),
        key=st.sampled_from(KEYS),
        figure=st.sampled_from(["green", "amber", "red", "no data", "not a number"]),
        age=st.integers(0, 3),
    )
    def submit(self, who: str, key: str, figure: str, age: int) -> None:
        """Someone clicks "Submit returns" on an owner's card with one figure filled in."""
        snap = self.last
        rid = snap.return_id(key)
        ret = snap.returns[rid]
        caller = self._caller(ret["owner_id"]) if who == "owner" else PEOPLE_BY_NAME[who]

        def shows(card: Seen) -> bool:
            versions = (card.data("submitReturns") or {}).get("versions")
            return isinstance(versions, dict) and key in versions

        cards = [c for c in self._cards("submitReturns", user_id=caller.user_id) if shows(c)]
        cards = cards or [c for c in self._cards("submitReturns") if shows(c)]
        if not cards:
            note(f"{caller.name} has no card to return {key} on")
            return
        seen = cards[age % len(cards)]
        data = seen.data("submitReturns") or {}
        if figure == "no data":
            data |= {f"nodata__{key}": "true", f"nodatareason__{key}": "Contractor not reported"}
        else:
            value = FIGURES[key].get(figure, "forty")
            data |= {
                f"value__{key}": value,
                f"comment__{key}": "Checked against the contractor's report",
                f"confirm__{key}": "true",
            }
        card_version = data["versions"][key]
        closed = any(c["status"] == "closed" for c in snap.cycles.values())
        if figure == "not a number":
            self.expect = Unchanged("the figure is not a number")
        elif caller.user_id != ret["owner_id"]:
            self.expect = Unchanged(f"{caller.name} does not own {key}")
        elif card_version != ret["version"]:
            self.expect = Unchanged(f"the card shows version {card_version}, not {ret['version']}")
        elif ret["status"] in ("returned", "approved"):
            self.expect = Unchanged(f"{key} is {ret['status']}")
        elif ret["status"] in ("awaiting", "rejected") and not closed:
            self.expect = BecomesStatus(rid, "returned", f"{caller.name} returned {key}")
        outcome = self._act(caller, "submitReturns", data)
        note(
            f"{caller.name} submits {key} = {figure} on a card of {self._name(seen.user_id)} "
            f"showing version {card_version} ({key} is {ret['status']} v{ret['version']}): "
            f"{outcome}"
        )

    @precondition(lambda self: any(self.last.current_step(rid) for rid in self.last.returns))
    @rule(
        verb=st.sampled_from(["approve", "approve", "approve", "reject"]),
        pick=st.integers(0, 5),
    )
    def decide_in_turn(self, verb: str, pick: int) -> None:
        """An approver of a current step clicks their newest card for it, as asked."""
        snap = self.last
        current = [s for rid in snap.returns if (s := snap.current_step(rid)) is not None]
        step = current[pick % len(current)]
        approvers = list(step["approvers"])
        caller = self._caller(approvers[(pick // len(current)) % len(approvers)])
        mine = [c for c in self._queued_for(step, verb) if c.user_id == caller.user_id]
        if not mine:
            note(f"{caller.name} has no card for {step['name']!r} of {snap.key(step['return_id'])}")
            return
        data = mine[0].data(verb) or {}
        if verb == "reject":
            data["reason"] = "That is September's figure"
        self._click(snap, caller, verb, data, f"their newest card for {step['name']!r}")

    @precondition(
        lambda self: any(
            (s := self.last.current_step(rid)) is not None
            and s["step_index"] + 1 < len(self.last.chain(rid))
            for rid in self.last.returns
        )
    )
    @rule(verb=st.sampled_from(["approve", "reject"]), pick=st.integers(0, 5))
    def jump_the_queue(self, verb: str, pick: int) -> None:
        """An approver of a later step sends the current step's card with their own step."""
        snap = self.last
        waiting = [
            (current, later)
            for rid in snap.returns
            if (current := snap.current_step(rid)) is not None
            for later in snap.chain(rid)[current["step_index"] + 1 :]
        ]
        current, later = waiting[pick % len(waiting)]
        approvers = list(later["approvers"])
        caller = self._caller(approvers[(pick // len(waiting)) % len(approvers)])
        cards = self._queued_for(current, verb)
        if not cards:
            note(f"no card was queued for {current['name']!r}")
            return
        data = (cards[0].data(verb) or {}) | {"step_index": later["step_index"]}
        if verb == "reject":
            data["reason"] = "That is September's figure"
        self._click(snap, caller, verb, data, f"{current['name']!r}'s card as {later['name']!r}")

    @precondition(lambda self: any(s["decided_by"] in s["approvers"] for s in self._decided()))
    @rule(verb=st.sampled_from(["approve", "reject"]), pick=st.integers(0, 5))
    def click_again(self, verb: str, pick: int) -> None:
        """An approver of a decided step clicks its card again.

        A second click, the other member of a group after the first decided, or an earlier
        step's card clicked after a later step was decided.
        """
        snap = self.last
        decided = [s for s in self._decided() if s["decided_by"] in s["approvers"]]
        step = decided[pick % len(decided)]
        approvers = list(step["approvers"])
        caller = self._caller(approvers[(pick // len(decided)) % len(approvers)])
        cards = [c for c in self._queued_for(step, verb) if c.user_id == caller.user_id]
        if not cards:
            note(f"{caller.name} had no card for {step['name']!r}")
            return
        data = cards[0].data(verb) or {}
        if verb == "reject":
            data["reason"] = "That is September's figure"
        which = (
            f"their card for {step['name']!r}, {step['status']} by {self._name(step['decided_by'])}"
        )
        self._click(snap, caller, verb, data, which)

    def _decided(self) -> list[Row]:
        """Steps approved or rejected by someone, in the order they were created."""
        return [
            self.last.steps[sid]
            for sid in sorted(self.last.steps)
            if self.last.status[sid] in ("approved", "rejected")
        ]

    @precondition(lambda self: bool(self._cards("approve")))
    @rule(
        who=st.sampled_from(ROLES),
        verb=st.sampled_from(["approve", "approve", "reject"]),
        pick=st.integers(0, 5),
        age=st.integers(0, 3),
        tamper=st.sampled_from(TAMPERS),
        reason=st.booleans(),
    )
    def click(self, who: str, verb: str, pick: int, age: int, tamper: str, reason: bool) -> None:
        """Someone clicks Approve or Reject on a return's approval card, maybe old or tampered.

        ``who`` is a role towards the return: an approver of its current, a later or an
        earlier step, its owner, a performance team member, another owner, a stranger.
        """
        snap = self.last
        rids = sorted({rid for c in self._cards("approve") if (rid := c.return_id()) is not None})
        rid = rids[pick % len(rids)]
        ret, chain = snap.returns[rid], snap.chain(rid)
        current = snap.current_step(rid)
        at = current["step_index"] if current else len(chain)
        people = {
            "current approver": list(current["approvers"]) if current else [],
            "later approver": [a for s in chain[at + 1 :] for a in s["approvers"]],
            "earlier approver": [a for s in chain[:at] for a in s["approvers"]],
            "owner": [ret["owner_id"]],
            "group member": [NADIA.user_id, BEN.user_id],
            "other owner": [
                r["owner_id"] for r in snap.returns.values() if r["owner_id"] != ret["owner_id"]
            ],
            "stranger": [EVE.user_id],
        }[who] or [EVE.user_id]
        caller = self._caller(people[(pick // len(rids)) % len(people)])
        cards = [c for c in self._cards("approve", user_id=caller.user_id) if c.return_id() == rid]
        cards = cards or [c for c in self._cards("approve") if c.return_id() == rid]
        seen = cards[age % len(cards)]
        data = self._tamper(seen.data(verb) or {}, tamper, snap, caller)
        if verb == "reject" and reason:
            data["reason"] = "That is September's figure"
        self._click(snap, caller, verb, data, f"a card of {self._name(seen.user_id)}, {tamper!r}")

    def _click(self, snap: Snapshot, caller: Caller, verb: str, data: Row, which: str) -> None:
        step = self._should_decide(snap, caller, verb, data)
        if step is None:
            self.expect = Unchanged("not a click the current step can take")
        else:
            status = "approved" if verb == "approve" else "rejected"
            self.expect = Decided(step["id"], status, caller.user_id)
        outcome = self._act(caller, verb, data)
        shown = {k: data.get(k, "(none)") for k in ("return_id", "version", "step_index")}
        note(
            f"{caller.name} clicks {verb} on {which}: {shown}"
            + (f" reason {data['reason']!r}" if "reason" in data else "")
            + f" → {outcome}"
            + ("" if step is None else f" (the model expects {step['name']!r} {status})")
        )

    @precondition(lambda self: any(r["status"] == "approved" for r in self.last.returns.values()))
    @rule(key=st.sampled_from(KEYS))
    def correct(self, key: str) -> None:
        """The performance team (Ben) asks for an approved figure to be corrected."""
        snap = self.last
        rid = snap.return_id(key)
        ret = snap.returns[rid]
        closed = any(c["status"] == "closed" for c in snap.cycles.values())
        if ret["status"] != "approved":
            self.expect = Unchanged(f"{key} is {ret['status']}, not approved")
        elif not closed:
            self.expect = BecomesStatus(rid, "rejected", f"{key} reopened for a correction")
        self.council.tick(minutes=1)
        try:
            self.council.engine.request_correction(
                FLOW.id,
                PERIOD,
                key,
                by=BEN.user_id,
                reason="Contractor revised the tonnage",
                now=self.council.now,
            )
            outcome = "reopened"
        except ActionError as exc:
            outcome = f"refused with {type(exc).__name__}: {exc.message}"
        note(f"Ben asks for a correction of {key} ({ret['status']}): {outcome}")

    @rule(wait=st.sampled_from(list(WAITS)))
    def wait(self, wait: str) -> None:
        """Time passes and the scheduler fires every timer that fell due."""
        now = self.council.tick(seconds=WAITS[wait].total_seconds())
        fired = 0
        for _ in range(20):
            batch = self.council.engine.fire_due_timers(worker="model", now=now)
            fired += batch
            if not batch:
                break
        note(f"{wait} pass (now {now:%a %d %b %H:%M} UTC): {fired} timers fired")

    def _tamper(self, data: Row, how: str, snap: Snapshot, caller: Caller) -> Row:
        data = dict(data)
        last = len(FLOW.approval.steps) - 1
        index, version = _whole(data.get("step_index")), _whole(data.get("version"))
        if how == "step+1" and index is not None:
            data["step_index"] = index + 1
        elif how == "step-1" and index is not None:
            data["step_index"] = index - 1
        elif how.startswith("step="):
            value = how.removeprefix("step=")
            data["step_index"] = {"last": last, "text": "two"}.get(value, value)
            if value.isdigit():
                data["step_index"] = int(value)
        elif how == "step=mine":
            rid = _whole(data.get("return_id"))
            chain = snap.chain(rid) if rid in snap.returns else []
            mine = [s["step_index"] for s in chain if caller.user_id in s["approvers"]]
            data["step_index"] = mine[0] if mine else data.get("step_index")
        elif how == "no step":
            data.pop("step_index", None)
        elif how == "version-1" and version is not None:
            data["version"] = version - 1
        elif how == "version+1" and version is not None:
            data["version"] = version + 1
        elif how == "version=text":
            data["version"] = "latest"
        elif how == "other return":
            ids = sorted(snap.returns)
            rid = _whole(data.get("return_id"))
            others = [i for i in ids if i != rid]
            data["return_id"] = str(others[0] if others else 9999)
        elif how == "return=9999":
            data["return_id"] = "9999"
        return data

    def _should_decide(self, snap: Snapshot, caller: Caller, verb: str, data: Row) -> Row | None:
        """The step this click must decide, or None when it must change nothing."""
        rid, version, index = (_whole(data.get(k)) for k in ("return_id", "version", "step_index"))
        if rid is None or version is None or index is None or rid not in snap.returns:
            return None
        ret = snap.returns[rid]
        step = snap.current_step(rid)
        if step is None or step["step_index"] != index:
            return None
        if self._live_data(step) != (rid, version, index):
            return None
        if caller.user_id not in step["approvers"]:
            return None
        if caller.user_id in (ret["owner_id"], ret["submitted_by"]):
            return None
        if verb == "reject" and not str(data.get("reason") or "").strip():
            return None
        return step

    def _queued_for(self, step: Row, verb: str = "approve") -> list[Seen]:
        """The cards the engine queued for a step's approvers, newest first."""
        queued = [c for c in self._cards(verb) if c.subject is not None]
        if any(c.subject is not None and c.subject[0] == "step" for c in queued):
            return [c for c in queued if c.subject == ("step", step["id"])]
        # queued cards name no step: take those for this return and step index
        return [
            c
            for c in queued
            if c.return_id() == step["return_id"]
            and _whole((c.data(verb) or {}).get("step_index")) == step["step_index"]
        ]

    def _live_data(self, step: Row) -> tuple[int | None, ...] | None:
        """(return id, version, step index) on the newest card the engine queued for a step."""
        queued = self._queued_for(step)
        if self.digest:
            # a digest is redrawn after its debounce window: until then the newest one may
            # still show the return's older version, which no click can decide
            version = self.last.returns[step["return_id"]]["version"]
            queued = [
                c for c in queued if _whole((c.data("approve") or {}).get("version")) == version
            ]
        if not queued:
            return None
        data = queued[0].data("approve") or {}
        return tuple(_whole(data.get(k)) for k in ("return_id", "version", "step_index"))

    # --- invariants -----------------------------------------------------------------

    @invariant()
    def holds(self) -> None:
        before = self.last
        snap = read_snapshot(self.council.store, self.ledger.versions)
        self._take_in(snap)
        self._steps_in_order(before, snap)
        self._transitions_in_table(before, snap)
        self._decided_steps_stay(before, snap)
        self._approved_returns(snap)
        self._written_back_once(snap)
        self._as_expected(before, snap)
        self.last, self.expect = snap, None

    def _steps_in_order(self, before: Snapshot, snap: Snapshot) -> None:
        old_audit = {a.id for a in before.audit}
        new_audit = [e for e in snap.audit if e.id not in old_audit]
        for (rid, version), chain in snap.chains.items():
            ret, key, current = snap.returns[rid], snap.key(rid), version == snap.latest(rid)
            where = f"{key} (return {rid}) chain v{version}"
            statuses = [snap.status[s["id"]] for s in chain]
            assert sum(s in CURRENT for s in statuses) <= 1, f"{where}: two current steps"
            for i, step in enumerate(chain):
                status, earlier = statuses[i], statuses[:i]
                label = f"{where}: step {i + 1} {step['name']!r} is {status}"
                if status in CURRENT or status == "approved":
                    assert all(e in ("approved", "skipped") for e in earlier), (
                        f"{label} while earlier steps are {earlier}"
                    )
                if status in DECIDED:
                    assert all(e in DECIDED for e in earlier), (
                        f"{label} while earlier steps are {earlier}"
                    )
                if "rejected" in earlier:
                    assert status in ("skipped", "pending"), f"{label} after a rejection"
                if status == "skipped":
                    assert str(step["reason"] or "").strip(), f"{label} without a reason"
                if status == "skipped" and "rejected" not in earlier and current:
                    applies = APPLIES.get(step["name"])
                    assert applies is not None and not applies(ret), (
                        f"{label} though it applies to a {ret['rag']} return"
                    )
                if status in DECIDED:
                    assert step["decided_at"] is not None, f"{label} with no decided_at"
                    prior = [s for s in chain[:i] if s["decided_at"] is not None]
                    assert all(s["decided_at"] <= step["decided_at"] for s in prior), (
                        f"{label} at {step['decided_at']}, before an earlier step was decided"
                    )
                old = before.steps.get(step["id"])
                newly = old is None or before.status[step["id"]] != status
                if newly and status in ("approved", "rejected"):
                    by = step["decided_by"]
                    approvers = (old or step)["approvers"]
                    assert by in approvers, (
                        f"{label} by {self._name(by)}, not one of its approvers {approvers}"
                    )
                    assert by not in (ret["owner_id"], ret["submitted_by"]), (
                        f"{label} by {self._name(by)}, who owns or submitted it"
                    )
                    assert any(e.actor == by and e.at == step["decided_at"] for e in new_audit), (
                        f"{label} by {self._name(by)} with no audit event of it"
                    )

    def _transitions_in_table(self, before: Snapshot, snap: Snapshot) -> None:
        def check(machine: str, now: dict[int, str], then: dict[int, str], name: Any) -> None:
            for ident, status in now.items():
                old = then.get(ident)
                if old is None:
                    initial = INITIAL[machine]
                    assert status == initial or (initial, status) in self.table[machine], (
                        f"new {machine} {name(ident)} starts {status}, not {initial}"
                    )
                elif old != status:
                    assert (old, status) in self.table[machine], (
                        f"{machine} {name(ident)} went {old} → {status}: not in the lifecycle"
                    )
            vanished = set(then) - set(now)
            assert not vanished, f"{machine}s {sorted(vanished)} vanished"

        def cycle_name(ident: int) -> str:
            return f"{ident} ({snap.cycles[ident]['period']})"

        def return_name(ident: int) -> str:
            return f"{snap.key(ident)} (return {ident})"

        def step_name(ident: int) -> str:
            s = snap.steps[ident]
            return f"{s['name']!r} of {snap.key(s['return_id'])} v{s['return_version']}"

        def statuses(rows: dict[int, Row]) -> dict[int, str]:
            return {i: str(r["status"]) for i, r in rows.items()}

        check("cycle", statuses(snap.cycles), statuses(before.cycles), cycle_name)
        check("return", statuses(snap.returns), statuses(before.returns), return_name)
        check("step", snap.status, before.status, step_name)

    def _decided_steps_stay(self, before: Snapshot, snap: Snapshot) -> None:
        for ident, old in before.steps.items():
            if before.status[ident] not in DECIDED:
                continue
            new = snap.steps[ident]
            fields = ("status", "decided_by", "decided_at")
            assert [new[f] for f in fields] == [old[f] for f in fields], (
                f"decided step {old['name']!r} of {snap.key(old['return_id'])} changed: "
                f"{[old[f] for f in fields]} → {[new[f] for f in fields]}"
            )

    def _approved_returns(self, snap: Snapshot) -> None:
        for rid, ret in snap.returns.items():
            if ret["status"] != "approved":
                continue
            key, chain = snap.key(rid), snap.chain(rid)
            assert chain, f"{key} approved with no approval chain"
            for step in chain:
                status = snap.status[step["id"]]
                label = f"{key} approved v{ret['version']} with {step['name']!r} {status}"
                assert status in ("approved", "skipped"), label
                if status == "skipped":
                    applies = APPLIES.get(step["name"])
                    assert applies is not None and not applies(ret), f"{label} though it applies"
            approvals = [s for s in chain if snap.status[s["id"]] == "approved"]
            assert approvals, f"{key} approved with every step skipped"
            if (rid, ret["version"]) not in self.ledger.approved:
                self.ledger.approved[(rid, ret["version"])] = self._name(
                    approvals[-1]["decided_by"]
                )

    def _written_back_once(self, snap: Snapshot) -> None:
        writes = [m for m in snap.outbox if m.kind == "write_back"]
        keys = Counter(
            (int(m.payload["return_id"]), int(m.payload["fields"]["Version"])) for m in writes
        )
        twice = sorted(k for k, n in keys.items() if n > 1)
        assert not twice, f"(return id, version) written back more than once: {twice}"
        assert set(keys) == set(self.ledger.approved), (
            f"written back {sorted(keys)}, approved {sorted(self.ledger.approved)}"
        )
        for message in writes:
            fields = message.payload["fields"]
            key = (int(message.payload["return_id"]), int(fields["Version"]))
            wanted = self.ledger.approved[key]
            assert fields["ApprovedBy"] == wanted, (
                f"{fields['IndicatorId']} v{fields['Version']} written back as approved by "
                f"{fields['ApprovedBy']!r}, not {wanted!r}"
            )

    def _as_expected(self, before: Snapshot, snap: Snapshot) -> None:
        expect = self.expect
        if isinstance(expect, Unchanged):
            changed = _changes(before.returns, snap.returns, "return") + _changes(
                before.steps, snap.steps, "step"
            )
            assert not changed, f"a refused click ({expect.why}) changed: " + "; ".join(changed)
        elif isinstance(expect, Decided):
            step = snap.steps[expect.step_id]
            got = (step["status"], step["decided_by"])
            assert got == (expect.status, expect.by), (
                f"{self._name(expect.by)}'s click on the current step {step['name']!r} of "
                f"{snap.key(step['return_id'])} left it {got[0]} (by {self._name(got[1])})"
            )
        elif isinstance(expect, BecomesStatus):
            status = snap.returns[expect.return_id]["status"]
            assert status == expect.status, f"{expect.why}, but it is {status}"


#: Room for generating every example plus Hypothesis's own five-minute cap on shrinking a
#: failure (it then prints the steps); the full-size run needs far more than the default.
TIMEOUT = 600 + EXAMPLES * STEPS // 5


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("cards", ["per_item", "digest"])
def test_random_clicks_keep_the_approval_rules(
    tmp_path_factory: pytest.TempPathFactory, cards: str
) -> None:
    check_model_matches_flow()
    workdir = tmp_path_factory.mktemp("model")
    template = workdir / "template.db"
    template_store = create_store(f"sqlite:///{template}", migrate=True)
    make_council(template_store, rows=[*ROWS, NADIA_ROW]).store.close()
    made = iter(range(10**9))

    def machine() -> EngineModel:
        return EngineModel(template, workdir, next(made), cards)

    run_state_machine_as_test(
        machine,  # type: ignore[arg-type]
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            print_blob=True,
            # no "explain" phase: it traces every line the engine runs and slows shrinking
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        ),
    )
