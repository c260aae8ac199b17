"""Issue 8's out-of-turn clicks, replayed over HTTP against the service on a real sandbox.

Chloe returns a red homelessness figure, so all three steps of the monthly flow apply:
Supervisor check (Marcus Bennett), then Head of service sign-off (Angela Reid, because the
figure is red), then the Performance team (Nadia Clarke or Ben Foster). Every click is
signed by the sandbox as the Bot Framework would sign it, so the service knows who clicks;
what is clicked is a card the person was genuinely sent, its data replayed or tampered
with as a client could.

Each click out of turn must leave every return of the cycle (status, version, steps), the
write-backs queued and the SharePoint KPI Results list as they were, and say why on the
card it answers with. After the out-of-turn clicks the chain is completed in order: the
return is approved once, and SharePoint has one row for it, approved by the last approver.
Finally ``/status`` must name the current step and its approvers at every point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
from integration_support import (
    MONTHLY,
    PERFORMANCE_TEAM,
    SESSION_SECRET,
    Bench,
    Json,
    Posted,
    bench,
    card_text,
    monthly_flow,
    opening_time,
    replied_card,
    results_rows,
    sandbox_health,
    signed_in,
)

from m365perf.domain.kinds import Rag
from m365perf.domain.periods import Period
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import Return, ReturnStatus

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
NADIA, BEN = PERFORMANCE_TEAM
CHLOE, HOMELESSNESS = "chloe.evans@contoso.gov.uk", "COV-027"  # higher is better, >1250
MARCUS, ANGELA = "marcus.bennett@contoso.gov.uk", "angela.reid@contoso.gov.uk"
ZOE, VISITOR_TRIPS = "zoe.turner@contoso.gov.uk", "COV-003"  # no target: no head's step
IMRAN = "imran.hussain@contoso.gov.uk"  # Zoe's supervisor; nothing to do with Chloe's return
OWEN = "owen.walsh@contoso.gov.uk"  # an owner in another service: approves nothing

SUPERVISOR, HEAD, TEAM = "Supervisor check", "Head of service sign-off", "Performance team"
RED_FIGURE, WHY = "900", "Two hostels closed for refurbishment; cases moved to the winter scheme."
SUPERSEDED = ("superseded", "no longer current", "out of date")
"""What a card of an older (or made-up) version may say: any one of these phrases."""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    """A sandbox of its own per test, so each test's KPI Results list starts empty."""
    with running_sandbox(tmp_path) as running:
        yield running


# --------------------------------------------------------------------------- the scene


@dataclass(frozen=True)
class Scene:
    """Chloe's red return waiting for its Supervisor check; Zoe's waiting for the team.

    Zoe's return gives Nadia and Ben genuine cards (for another return, at the team's
    step) to tamper with, and Imran a decided card for it.
    """

    council: Bench
    cycle_id: int
    red: int
    other: int
    marcus_card: Json
    """The data of Marcus's Supervisor check card for Chloe's return, as sent."""
    nadia_other: Json
    """The data of Nadia's Performance team card for Zoe's return, as sent."""
    imran_other: Json
    """The data of Imran's (decided) Supervisor check card for Zoe's return."""


@contextlib.contextmanager
def _scene(sandbox: RunningSandbox, database_url: str) -> Iterator[Scene]:
    health = sandbox_health(sandbox)
    flow = monthly_flow(health).model_copy(
        update={"staff_group": health["performance_team_group_id"]}
    )
    with bench(
        sandbox,
        database_url,
        start=opening_time(flow, PERIOD),
        flow=flow,
        settings={"session_secret": SESSION_SECRET},
    ) as council:
        opened = council.service.open_cycle(
            flow, Period.parse_for(flow.frequency, PERIOD), actor="test"
        )
        assert opened.created
        council.service.settle()
        _submit(council, CHLOE, RED_FIGURE, WHY)
        _submit(council, ZOE, "1840", "Half-term events.")
        red = _return_of(council, opened.cycle_id, HOMELESSNESS)
        other = _return_of(council, opened.cycle_id, VISITOR_TRIPS)
        assert red.rag is Rag.RED
        council.service.settle()
        imran_other = _card(council, IMRAN, other.id or 0, 0).data("approve")
        assert "approved by imran hussain" in _approve(council, IMRAN, other.id or 0, 0)
        council.service.settle()
        yield Scene(
            council=council,
            cycle_id=opened.cycle_id,
            red=red.id or 0,
            other=other.id or 0,
            marcus_card=_card(council, MARCUS, red.id or 0, 0).data("approve"),
            nadia_other=_card(council, NADIA, other.id or 0, 2).data("approve"),
            imran_other=imran_other,
        )


def _submit(council: Bench, owner: str, value: str, comment: str) -> None:
    """The owner fills in their newest request card for their indicator and submits it."""
    card = council.request_card(owner)
    key = HOMELESSNESS if owner == CHLOE else VISITOR_TRIPS
    report = council.act(
        owner, card, "submitReturns", {f"value__{key}": value, f"comment__{key}": comment}
    )
    assert "awaiting approval" in card_text(replied_card(report)).casefold()


def _return_of(council: Bench, cycle_id: int, indicator: str) -> Return:
    (found,) = [r for r in council.returns(cycle_id) if r.indicator_key == indicator]
    return found


def _current(council: Bench, return_id: int) -> Return:
    with council.store.transaction() as tx:
        return tx.get_return(return_id)


def _card(council: Bench, upn: str, return_id: int, step_index: int) -> Posted:
    """The newest card in ``upn``'s chat offering Approve on that step of that return."""
    found = [
        p
        for p in council.approval_cards(upn)
        if int(p.data("approve")["return_id"]) == return_id
        and int(p.data("approve")["step_index"]) == step_index
    ]
    assert found, f"{upn} has no approval card for return {return_id} step {step_index}"
    return found[-1]


def _approve(council: Bench, upn: str, return_id: int, step_index: int) -> str:
    """``upn`` approves on their newest card for the step; the reply's words, lower case."""
    card = _card(council, upn, return_id, step_index)
    return card_text(replied_card(council.act(upn, card, "approve"))).casefold()


# --------------------------------------------------------------------------- refusals


def _state(scene: Scene) -> dict[str, Any]:
    """Everything an out-of-turn click must not change, after the service has settled."""
    council = scene.council
    council.service.settle()
    with council.store.transaction() as tx:
        returns = tx.list_returns(cycle_id=scene.cycle_id)
        state: dict[str, Any] = {
            "returns": [r.model_dump() for r in returns],
            "steps": [s.model_dump() for r in returns for s in tx.list_steps(r.id or 0)],
            "write_backs": len(tx.list_outbox(kind="write_back")),
        }
    state["sharepoint"] = results_rows(council.sandbox, council.health)
    return state


def _summary(scene: Scene, state: Mapping[str, Any]) -> str:
    """Chloe's return in a line: status, version, each step's status; and the write-backs."""
    ret = next(r for r in state["returns"] if r["id"] == scene.red)
    steps = [f"{s['name']}={s['status']}" for s in state["steps"] if s["return_id"] == scene.red]
    return (
        f"return {ret['status']} v{ret['version']} [{', '.join(steps)}]; "
        f"{state['write_backs']} write-backs; {len(state['sharepoint'])} SharePoint rows"
    )


def _refused(
    scene: Scene,
    what: str,
    upn: str,
    posted: Posted,
    verb: str,
    data: Mapping[str, Any],
    says: tuple[str, ...],
) -> str:
    """``upn`` clicks ``verb`` with ``data`` on ``posted``; nothing changes, the card says why.

    ``says``: phrases (matched in lower case) of which the answering card shows at least one.
    """
    before = _state(scene)
    report = scene.council.act(upn, posted, verb, dict(data), any_verb=True)
    after = _state(scene)
    assert after == before, (
        f"{what} changed things:\n  before: {_summary(scene, before)}"
        f"\n  after:  {_summary(scene, after)}"
    )
    said = card_text(replied_card(report)).casefold()
    assert any(phrase in said for phrase in says), (
        f"{what}: the answering card says none of {says}:\n{said}"
    )
    return said


def _finish_in_order(scene: Scene, approvers: list[tuple[str, int]]) -> None:
    """The remaining steps approve in turn; approved once, one row, by the last approver."""
    council = scene.council
    for upn, index in approvers:
        council.service.settle()
        name = council.user(upn)["display_name"].casefold()
        assert f"approved by {name}" in _approve(council, upn, scene.red, index)
    council.service.settle()
    assert _current(council, scene.red).status is ReturnStatus.APPROVED
    with council.store.transaction() as tx:
        approvals = [
            e
            for e in tx.list_audit()
            if e.action == "return.approved" and e.subject_id == str(scene.red)
        ]
        write_backs = [
            m for m in tx.list_outbox(kind="write_back") if m.payload["return_id"] == scene.red
        ]
    assert len(approvals) == 1, f"the return was approved {len(approvals)} times"
    assert len(write_backs) == 1, f"the return was written back {len(write_backs)} times"
    rows = [
        row
        for row in results_rows(council.sandbox, council.health)
        if (row.get("IndicatorId"), row.get("Period")) == (HOMELESSNESS, PERIOD)
    ]
    assert len(rows) == 1
    assert rows[0]["Value"] == int(RED_FIGURE)
    assert rows[0]["ApprovedBy"] == council.user(approvers[-1][0])["display_name"]


# --------------------------------------------------------------------------- a


def test_the_performance_team_cannot_decide_while_the_supervisor_check_waits(
    sandbox: RunningSandbox, database_url: str
) -> None:
    """Nadia points her card for Zoe's return at Chloe's, whose supervisor has not looked yet."""
    with _scene(sandbox, database_url) as scene:
        council = scene.council
        her_card = _card(council, NADIA, scene.other, 2)
        at_chloes = {
            **scene.nadia_other,
            "return_id": scene.red,
            "version": scene.marcus_card["version"],
        }
        waiting = (f"waiting for {SUPERVISOR.casefold()}",)
        _refused(
            scene,
            "the head's step, clicked by the team while the supervisor check waits",
            NADIA,
            her_card,
            "approve",
            {**at_chloes, "step_index": 1},
            (*waiting, "not one of"),
        )
        _refused(
            scene,
            "the team approving while the supervisor check waits",
            NADIA,
            her_card,
            "approve",
            {**at_chloes, "step_index": 2},
            waiting,
        )
        _refused(
            scene,
            "the team rejecting while the supervisor check waits",
            NADIA,
            her_card,
            "reject",
            {**at_chloes, "step_index": 2, "reason": "Looks low."},
            waiting,
        )
        _finish_in_order(scene, [(MARCUS, 0), (ANGELA, 1), (NADIA, 2)])


# --------------------------------------------------------------------------- b, c


def test_a_decided_steps_card_clicked_again_says_who_decided_and_when(
    sandbox: RunningSandbox, database_url: str
) -> None:
    with _scene(sandbox, database_url) as scene:
        council = scene.council
        marcus_card = _card(council, MARCUS, scene.red, 0)
        assert "approved by marcus bennett" in _approve(council, MARCUS, scene.red, 0)
        council.service.settle()
        angela_card = _card(council, ANGELA, scene.red, 1)  # the head of service is asked
        angela_data = angela_card.data("approve")

        # b: Marcus's Supervisor check card (step 1), clicked a second time.
        _refused(
            scene,
            "the supervisor's second click",
            MARCUS,
            marcus_card,
            "approve",
            scene.marcus_card,
            ("approved by marcus bennett at",),
        )
        _refused(
            scene,
            "the supervisor rejecting what he approved",
            MARCUS,
            marcus_card,
            "reject",
            {**scene.marcus_card, "reason": "Changed my mind."},
            ("approved by marcus bennett at",),
        )

        # c: once the team's step (3) is current, the earlier steps' cards again.
        assert "approved by angela reid" in _approve(council, ANGELA, scene.red, 1)
        council.service.settle()
        ben_sent = _card(council, BEN, scene.red, 2)  # the team is asked: Ben and Nadia
        _card(council, NADIA, scene.red, 2)
        _refused(
            scene,
            "the head's card after the team was asked",
            ANGELA,
            angela_card,
            "approve",
            angela_data,
            ("approved by angela reid at",),
        )
        _refused(
            scene,
            "the supervisor's card after the team was asked",
            MARCUS,
            marcus_card,
            "approve",
            scene.marcus_card,
            ("approved by marcus bennett at",),
        )
        _finish_in_order(scene, [(NADIA, 2)])

        # and once the team has decided, Ben's card says Nadia did
        assert "approved by nadia clarke at" in _now_showing(council, BEN, ben_sent).text.casefold()
        _refused(
            scene,
            "Ben's team card after Nadia approved",
            BEN,
            ben_sent,
            "approve",
            ben_sent.data("approve"),
            ("approved by nadia clarke at",),
        )


def _now_showing(council: Bench, upn: str, sent: Posted) -> Posted:
    """The card in ``upn``'s chat where ``sent`` was posted, as it shows now."""
    (posted,) = [p for p in council.chat_cards(upn) if p.where == sent.where]
    return posted


# --------------------------------------------------------------------------- d


def test_tampered_card_data_changes_nothing(sandbox: RunningSandbox, database_url: str) -> None:
    """While the head of service's step is current, card data is edited before the click."""
    with _scene(sandbox, database_url) as scene:
        council = scene.council
        assert "approved by marcus bennett" in _approve(council, MARCUS, scene.red, 0)
        council.service.settle()
        angela_card = _card(council, ANGELA, scene.red, 1)
        angela = angela_card.data("approve")
        version = int(angela["version"])
        waiting = f"waiting for {HEAD.casefold()}"

        # step_index: to a later step (not current), and to the decided step before it
        _refused(
            scene,
            "the head's card with step_index moved to the team's step",
            ANGELA,
            angela_card,
            "approve",
            {**angela, "step_index": 2},
            (waiting, "not one of"),
        )
        _refused(
            scene,
            "the head's card with step_index moved back to the supervisor's step",
            ANGELA,
            angela_card,
            "approve",
            {**angela, "step_index": 0},
            ("approved by marcus bennett at",),
        )
        # version: older and newer than the card's
        for moved in (version - 1, version + 1):
            _refused(
                scene,
                f"the head's card with version {version} changed to {moved}",
                ANGELA,
                angela_card,
                "approve",
                {**angela, "version": moved},
                SUPERSEDED,
            )
        # return_id: to Zoe's return, in the same cycle (whose head's step was skipped)
        _refused(
            scene,
            "the head's card with return_id changed to another return",
            ANGELA,
            angela_card,
            "approve",
            {**angela, "return_id": scene.other},
            (*SUPERSEDED, "not one of", "waiting for", "skipped", "not needed"),
        )
        # return_id: Nadia's card for Zoe's return pointed at Chloe's (with its version)
        _refused(
            scene,
            "the team's card for another return pointed at this one",
            NADIA,
            _card(council, NADIA, scene.other, 2),
            "approve",
            {**scene.nadia_other, "return_id": scene.red, "version": version},
            (waiting,),
        )
        # Her own card now shows the answers to the tampered clicks; its true data still works.
        report = council.act(ANGELA, angela_card, "approve", angela, any_verb=True)
        assert "approved by angela reid" in card_text(replied_card(report)).casefold()
        _finish_in_order(scene, [(NADIA, 2)])


# --------------------------------------------------------------------------- e


def test_a_card_from_before_a_rejection_changes_nothing_after_the_resubmission(
    sandbox: RunningSandbox, database_url: str
) -> None:
    """Nadia sends it back at the team's step; Ben's card of that version is clicked later."""
    with _scene(sandbox, database_url) as scene:
        council = scene.council
        marcus_v1 = _card(council, MARCUS, scene.red, 0)
        assert "approved by marcus bennett" in _approve(council, MARCUS, scene.red, 0)
        council.service.settle()
        angela_v1 = _card(council, ANGELA, scene.red, 1)
        angela_v1_data = angela_v1.data("approve")
        assert "approved by angela reid" in _approve(council, ANGELA, scene.red, 1)
        council.service.settle()
        ben_v1 = _card(council, BEN, scene.red, 2)
        ben_v1_data = ben_v1.data("approve")
        reason = "This is the quarter to date; report October on its own."
        nadia_v1 = _card(council, NADIA, scene.red, 2)
        said = card_text(replied_card(council.act(NADIA, nadia_v1, "reject", {"reason": reason})))
        assert "rejected by nadia clarke" in said.casefold()
        council.service.settle()
        assert _current(council, scene.red).status is ReturnStatus.REJECTED
        _submit(council, CHLOE, RED_FIGURE, "October alone: two hostels closed for works.")
        council.service.settle()
        resubmitted = _current(council, scene.red)
        assert resubmitted.status is ReturnStatus.RETURNED
        v2 = int(_card(council, MARCUS, scene.red, 0).data("approve")["version"])
        assert v2 > int(ben_v1_data["version"])

        for what, upn, posted, data in (
            ("Ben's team card of the rejected version", BEN, ben_v1, ben_v1_data),
            ("Angela's card of the rejected version", ANGELA, angela_v1, angela_v1_data),
            ("Marcus's card of the rejected version", MARCUS, marcus_v1, scene.marcus_card),
        ):
            _refused(scene, what, upn, posted, "approve", data, SUPERSEDED)
        # the stale team card, its version moved up to the resubmitted one
        _refused(
            scene,
            "Ben's stale card with the new version written in",
            BEN,
            ben_v1,
            "approve",
            {**ben_v1_data, "version": v2},
            (f"waiting for {SUPERVISOR.casefold()}",),
        )
        _finish_in_order(scene, [(MARCUS, 0), (ANGELA, 1), (NADIA, 2)])


# --------------------------------------------------------------------------- f


def test_someone_who_is_not_an_approver_cannot_approve(
    sandbox: RunningSandbox, database_url: str
) -> None:
    with _scene(sandbox, database_url) as scene:
        council = scene.council
        at_step_0 = {**scene.marcus_card}
        owens_card = council.request_card(OWEN)  # the only card Owen was sent
        _refused(
            scene,
            "Owen (an owner elsewhere) approving the supervisor check",
            OWEN,
            owens_card,
            "approve",
            at_step_0,
            ("not one of",),
        )
        imrans_card = next(
            p for p in council.chat_cards(IMRAN) if not p.action("submitReturns")
        )  # his decided card for Zoe's return
        _refused(
            scene,
            "Imran (Zoe's supervisor) approving Chloe's supervisor check",
            IMRAN,
            imrans_card,
            "approve",
            {**scene.imran_other, **at_step_0},
            ("not one of",),
        )
        _refused(
            scene,
            "Imran rejecting Chloe's supervisor check",
            IMRAN,
            imrans_card,
            "reject",
            {**scene.imran_other, **at_step_0, "reason": "Looks wrong."},
            ("not one of",),
        )
        _finish_in_order(scene, [(MARCUS, 0), (ANGELA, 1), (NADIA, 2)])


# --------------------------------------------------------------------------- /status


def test_status_names_the_current_step_and_its_approvers_all_along_the_chain(
    sandbox: RunningSandbox, database_url: str
) -> None:
    with _scene(sandbox, database_url) as scene:
        council = scene.council
        _assert_status(scene, SUPERVISOR, {"Marcus Bennett"})
        assert "approved by marcus bennett" in _approve(council, MARCUS, scene.red, 0)
        council.service.settle()
        _assert_status(scene, HEAD, {"Angela Reid"})
        assert "approved by angela reid" in _approve(council, ANGELA, scene.red, 1)
        council.service.settle()
        _assert_status(scene, TEAM, {"Nadia Clarke", "Ben Foster"})
        assert "approved by nadia clarke" in _approve(council, NADIA, scene.red, 2)
        council.service.settle()
        _assert_status(scene, None, set())


def _assert_status(scene: Scene, step: str | None, approvers: set[str]) -> None:
    """``/status.json`` and ``/status`` show Chloe's return at ``step`` waiting for ``approvers``.

    ``step=None``: approved, so waiting for nobody.
    """
    council = scene.council
    base = council.endpoint.removesuffix("/api/messages")
    assert requests.get(f"{base}/status.json", timeout=10).status_code == 401  # anonymous
    staff = signed_in(base, "/status", NADIA)  # in the performance team's group
    answer = staff.get(f"{base}/status.json", timeout=10)
    assert answer.status_code == 200
    cycles = [
        c for c in answer.json()["cycles"] if (c["flow_id"], c["period"]) == (MONTHLY, PERIOD)
    ]
    assert len(cycles) == 1, f"/status.json shows no cycle for {PERIOD}: {answer.json()}"
    (cycle,) = cycles
    waiting = [
        i
        for i in cycle["items"]
        if i["indicator_key"] == HOMELESSNESS and i["state"] == "awaiting_approval"
    ]
    page = staff.get(f"{base}/status", timeout=10)
    assert page.status_code == 200
    rows = [unescape(row) for row in page.text.split("<tr>") if f"{HOMELESSNESS}:" in row]
    if step is None:
        assert waiting == [], f"/status.json still shows the approved return waiting: {waiting}"
        assert cycle["counts"]["approved"] == 1
        assert not [r for r in rows if SUPERVISOR in r or HEAD in r or TEAM in r], rows
        return
    assert len(waiting) == 1, f"/status.json does not show {HOMELESSNESS} waiting: {cycle}"
    shown = (waiting[0]["step"], set(waiting[0]["waiting_on"]))
    assert shown == (step, approvers), f"/status.json shows {shown}, not {(step, approvers)}"
    named = [r for r in rows if step in r]
    assert len(named) == 1, f"/status has no row for {HOMELESSNESS} at {step}: {rows}"
    (row,) = named
    for name in approvers:
        assert name in row, f"/status does not name {name} for {step}: {row}"
