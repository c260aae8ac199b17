"""Issue 4's workflow, end to end against a real sandbox server: what people see.

One sandbox process for the module; each test runs its own service (its own store, on
SQLite or PostgreSQL) with a simulated clock, opens its own cycle, and reads only the
cards its own service delivered (``own_cards_only``), so the tests cannot see each
other's cards. Each store collects a different month, so their KPI Results rows never
meet; only the Power BI tests let the clock reach a refresh, and they count the
refreshes they caused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from integration_support import (
    MONTHLY,
    PERFORMANCE_TEAM,
    Bench,
    Json,
    bench,
    card_text,
    monthly_flow,
    move_sandbox_clock,
    opening_time,
    refresh_history,
    replied_card,
    results_rows,
    sandbox_health,
)

from m365perf.domain.kinds import Rag
from m365perf.domain.lifecycle import CURRENT_STEP
from m365perf.domain.periods import Period
from m365perf.engine.context import LONDON
from m365perf.flows import Flow
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import Return, ReturnStatus, StepStatus

pytestmark = pytest.mark.slow

NADIA, BEN = PERFORMANCE_TEAM
DAY = timedelta(days=1)

# Owners, the indicators they return and the people around them, from the sandbox seed.
ZOE, VISITOR_TRIPS = "zoe.turner@contoso.gov.uk", "COV-003"  # no target: no head's step
IMRAN = "imran.hussain@contoso.gov.uk"  # supervises Zoe and Kieran
CHLOE, HOMELESSNESS = "chloe.evans@contoso.gov.uk", "COV-027"  # higher is better, >1250
MARCUS, ANGELA = "marcus.bennett@contoso.gov.uk", "angela.reid@contoso.gov.uk"
EMMA, LONG_TERM_CARE = "emma.doyle@contoso.gov.uk", "COV-030"  # lower is better, <1380
FIONA, STEPHEN = "fiona.campbell@contoso.gov.uk", "stephen.marsh@contoso.gov.uk"
KIERAN, JOB_SHOP = "kieran.murphy@contoso.gov.uk", "COV-009"
HANNAH, TAX_BASE = "hannah.price@contoso.gov.uk", "COV-012"
GRACE = "grace.mensah@contoso.gov.uk"  # her line manager is Sian Roberts
YUSUF, DOMESTIC_ABUSE = "yusuf.ali@contoso.gov.uk", "COV-015"  # his is Marcus Bennett
SIAN = "sian.roberts@contoso.gov.uk"  # supervises Owen and Grace
OWEN = "owen.walsh@contoso.gov.uk"
AISHA, NEET = "aisha.begum@contoso.gov.uk", "COV-006"
DANIEL = "daniel.hughes@contoso.gov.uk"  # supervises Aisha


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox for the module; Power BI refreshes finish at once, so none is in the way."""
    with running_sandbox(tmp_path_factory.mktemp("workflow"), powerbi_refresh_s=0) as running:
        yield running


@dataclass(frozen=True)
class Where:
    """A service's store, and the month it collects (its own rows in KPI Results)."""

    database_url: str
    period: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    if request.param == "sqlite":
        return Where(f"sqlite:///{tmp_path / 'm365perf.db'}", "2026-10")
    url: str = request.getfixturevalue("postgres_schema_url")
    return Where(url, "2026-11")


@contextlib.contextmanager
def _council(
    sandbox: RunningSandbox, database_url: str, period: str, flow: Flow | None = None
) -> Iterator[tuple[Bench, int]]:
    """A service at the opening of ``period``'s cycle, opened and every first card sent."""
    flow = flow or monthly_flow(sandbox_health(sandbox))
    start = opening_time(flow, period)
    with bench(sandbox, database_url, start=start, flow=flow, own_cards_only=True) as council:
        opened = council.service.open_cycle(
            flow, Period.parse_for(flow.frequency, period), actor="test"
        )
        assert opened.created
        council.service.settle()
        yield council, opened.cycle_id


# --------------------------------------------------------------------------- clicking


def _submit(council: Bench, owner: str, figures: Mapping[str, tuple[str, str]]) -> str:
    """The owner fills in figures and commentary on their newest request card and submits."""
    card = council.request_card(owner)
    inputs: dict[str, str] = {}
    for key, (value, comment) in figures.items():
        inputs[f"value__{key}"] = value
        inputs[f"comment__{key}"] = comment
    return card_text(replied_card(council.act(owner, card, "submitReturns", inputs)))


def _return_of(council: Bench, cycle_id: int, indicator: str) -> Return:
    (found,) = [r for r in council.returns(cycle_id) if r.indicator_key == indicator]
    return found


def _current(council: Bench, return_id: int) -> Return:
    with council.store.transaction() as tx:
        return tx.get_return(return_id)


def _decide(
    council: Bench,
    upn: str,
    return_id: int,
    step_index: int,
    verb: str = "approve",
    inputs: Mapping[str, Any] | None = None,
) -> str:
    """``upn`` clicks ``verb`` on their approval card for the step; the reply's words."""
    card = council.approval_card(upn, return_id, step_index)
    return card_text(replied_card(council.act(upn, card, verb, inputs)))


def _approve_to_the_end(council: Bench, return_id: int) -> list[str]:
    """Each step still waiting approves in turn (Nadia for the team); who approved."""
    approved_by: list[str] = []
    for _ in range(5):
        council.service.settle()
        if _current(council, return_id).status is ReturnStatus.APPROVED:
            return approved_by
        waiting = [s for s in council.steps(return_id) if s.status in CURRENT_STEP]
        assert waiting, f"return {return_id} waits for nobody"
        step = waiting[0]
        names = sorted(council.user(a)["upn"] for a in step.approvers)
        upn = NADIA if NADIA in names else names[0]
        assert "Approved by" in _decide(council, upn, return_id, step.step_index)
        approved_by.append(upn)
    raise AssertionError(f"return {return_id} was never approved")


def _snapshot(council: Bench) -> dict[str, Any]:
    """Everything a click could change: returns, steps, outbox, audit trail and timers."""
    with council.store.transaction() as tx:
        returns = [r for c in tx.list_cycles() for r in tx.list_returns(cycle_id=c.id)]
        return {
            "returns": [r.model_dump() for r in returns],
            "steps": [s.model_dump() for r in returns for s in tx.list_steps(r.id or 0)],
            "outbox": [m.model_dump() for m in tx.list_outbox()],
            "audit": [e.model_dump() for e in tx.list_audit()],
            "timers": [t.model_dump() for t in tx.list_timers()],
        }


def _rows_for(council: Bench, indicator: str, period: str) -> list[Json]:
    """The KPI Results rows for (indicator, period), as the dashboard would read them."""
    return [
        row
        for row in results_rows(council.sandbox, council.health)
        if (row.get("IndicatorId"), row.get("Period")) == (indicator, period)
    ]


def _audit(council: Bench, action: str) -> list[Any]:
    with council.store.transaction() as tx:
        return [e for e in tx.list_audit() if e.action == action]


# --------------------------------------------------------------------------- 1


def test_rejected_then_resubmitted_from_the_card_then_approved_with_the_new_value(
    sandbox: RunningSandbox, where: Where
) -> None:
    with _council(sandbox, where.database_url, where.period) as (council, cycle_id):
        said = _submit(council, ZOE, {VISITOR_TRIPS: ("1840", "Half-term events.")})
        assert "Awaiting approval by Imran Hussain" in said
        first = _return_of(council, cycle_id, VISITOR_TRIPS)
        first_id = first.id or 0
        council.service.settle()

        # Imran rejects, with a reason.
        old_card = council.approval_card(IMRAN, first_id, 0)
        reason = "1,840 is the quarter to date; we report the month on its own."
        said = _decide(council, IMRAN, first_id, 0, "reject", {"reason": reason})
        assert "Rejected by Imran Hussain" in said and reason in said
        assert _current(council, first_id).status is ReturnStatus.REJECTED
        council.service.settle()

        # Zoe's chat: a card with Imran's reason, asking for the figure again.
        sent_back = council.request_card(ZOE)
        assert "Returned to you" in sent_back.text and reason in sent_back.text
        assert "Imran Hussain" in sent_back.text
        said = card_text(
            replied_card(
                council.act(
                    ZOE,
                    sent_back,
                    "submitReturns",
                    {
                        f"value__{VISITOR_TRIPS}": "612",
                        f"comment__{VISITOR_TRIPS}": "October alone, from the visitor survey.",
                    },
                )
            )
        )
        assert "Awaiting approval by Imran Hussain" in said
        again = _current(council, first_id)
        assert again.status is ReturnStatus.RETURNED and again.value == 612
        assert again.version > first.version

        # The chain runs again from the start and completes (no target: no head's step).
        assert _approve_to_the_end(council, first_id) == [IMRAN, NADIA]
        council.service.settle()
        (row,) = _rows_for(council, VISITOR_TRIPS, where.period)
        assert row["Value"] == 612
        assert row["Commentary"] == "October alone, from the visitor survey."
        assert row["ApprovedBy"] == "Nadia Clarke"

        # Imran's first card, clicked again where a client still shows it: out of date.
        before = _snapshot(council)
        stale = council.act(IMRAN, old_card, "approve", old_card.data("approve"), any_verb=True)
        said = card_text(replied_card(stale))
        assert "This card is out of date" in said
        assert find_actions(replied_card(stale)) == []
        assert _snapshot(council) == before
        assert _rows_for(council, VISITOR_TRIPS, where.period) == [row]


# --------------------------------------------------------------------------- 2


def test_a_red_figure_goes_to_the_head_of_service_and_a_green_one_skips_them(
    sandbox: RunningSandbox, where: Where
) -> None:
    with _council(sandbox, where.database_url, where.period) as (council, cycle_id):
        why = "Two hostels closed for refurbishment; cases moved to the winter scheme."
        _submit(council, CHLOE, {HOMELESSNESS: ("900", why)})
        _submit(council, EMMA, {LONG_TERM_CARE: ("1200", "More people helped by reablement.")})
        red = _return_of(council, cycle_id, HOMELESSNESS)
        green = _return_of(council, cycle_id, LONG_TERM_CARE)
        assert (red.rag, green.rag) == (Rag.RED, Rag.GREEN)
        council.service.settle()

        # Each supervisor approves; the red one goes to the head of service next.
        said = _decide(council, MARCUS, red.id or 0, 0)
        assert "now with Head of service sign-off" in said
        said = _decide(council, FIONA, green.id or 0, 0)
        assert "now with Performance team" in said
        council.service.settle()

        # Angela, Chloe's head of service, is asked, and sees the red figure's commentary.
        asked = council.approval_card(ANGELA, red.id or 0, 1)
        assert why in asked.text
        # Stephen, Emma's head of service, gets nothing; the performance team gets the green.
        assert council.chat_cards(STEPHEN) == []
        assert not [m for m in council.mails(STEPHEN) if "Emma Doyle" in str(m.get("subject"))]
        for upn in PERFORMANCE_TEAM:
            council.approval_card(upn, green.id or 0, 2)
            asked_about = {int(p.data("approve")["return_id"]) for p in council.approval_cards(upn)}
            assert red.id not in asked_about, f"{upn} was asked before the head of service"

        red_steps = council.steps(red.id or 0)
        green_steps = council.steps(green.id or 0)
        assert [s.status for s in red_steps] == [
            StepStatus.APPROVED,
            StepStatus.ASKED,
            StepStatus.PENDING,  # the team is asked only after the head of service
        ]
        assert [s.status for s in green_steps] == [
            StepStatus.APPROVED,
            StepStatus.SKIPPED,
            StepStatus.ASKED,
        ]
        assert "red" in (green_steps[1].reason or "")

        # When Angela approves, the red figure reaches the performance team too.
        assert "now with Performance team" in _decide(council, ANGELA, red.id or 0, 1)
        council.service.settle()
        council.approval_card(NADIA, red.id or 0, 2)


# --------------------------------------------------------------------------- 3


def test_an_owner_cannot_approve_their_own_return_through_the_bot(
    sandbox: RunningSandbox, where: Where
) -> None:
    """Kieran sits in the performance team (in this copy of the flow) and returns a figure.

    The chain leaves him out of his own return's team step, so he is never asked; he
    takes a card he was genuinely sent (Hannah's return) and points its Approve or Reject
    at his own return. The click is signed as him, so the service knows who clicks.
    """
    flow = monthly_flow(sandbox_health(sandbox))
    team = [*flow.groups["performance-team"], KIERAN]
    flow = flow.model_copy(update={"groups": {**flow.groups, "performance-team": team}})
    with _council(sandbox, where.database_url, where.period, flow) as (council, cycle_id):
        _submit(council, HANNAH, {TAX_BASE: ("1450", "New homes at Canley completed.")})
        _submit(council, KIERAN, {JOB_SHOP: ("212", "Two recruitment fairs this month.")})
        hannahs = _return_of(council, cycle_id, TAX_BASE).id or 0
        own = _return_of(council, cycle_id, JOB_SHOP)
        council.service.settle()
        _decide(council, "gareth.lloyd@contoso.gov.uk", hannahs, 0)
        _decide(council, IMRAN, own.id or 0, 0)
        council.service.settle()

        team_step = council.steps(own.id or 0)[2]
        assert team_step.status is StepStatus.ASKED
        assert council.user(KIERAN)["id"] not in team_step.approvers
        assert {int(p.data("approve")["return_id"]) for p in council.approval_cards(KIERAN)} == {
            hannahs
        }
        genuine = council.approval_card(KIERAN, hannahs, 2)
        pointed_at_own = {
            **genuine.data("approve"),
            "return_id": own.id,
            "version": _current(council, own.id or 0).version,
            "step_index": team_step.step_index,
        }
        before = _snapshot(council)
        for verb, extra in (("approve", {}), ("reject", {"reason": "Let me redo it."})):
            report = council.act(KIERAN, genuine, verb, {**pointed_at_own, **extra})
            said = card_text(replied_card(report))
            assert "You cannot approve or reject your own return." in said, verb
            assert _snapshot(council) == before, f"{verb} of his own return changed the store"

        # Nothing moved: his return still waits for Nadia or Ben, and only they were asked.
        assert _current(council, own.id or 0).status is ReturnStatus.RETURNED
        assert council.steps(own.id or 0)[2].status is StepStatus.ASKED
        for upn in PERFORMANCE_TEAM:
            council.approval_card(upn, own.id or 0, 2)


# --------------------------------------------------------------------------- 4


def _sent_days(council: Bench, email: str) -> list[str]:
    """The London dates the service queued cards to ``email`` (its own clock, not Teams')."""
    with council.store.transaction() as tx:
        return [
            m.created_at.astimezone(LONDON).date().isoformat()
            for m in tx.list_outbox(kind="send_card")
            if m.payload["user"]["email"] == email
        ]


def _overdue_mails(council: Bench, manager: str, owner_name: str) -> list[Json]:
    return [
        m
        for m in council.mails(manager)
        if str(m.get("subject", "")).startswith(f"Overdue: {owner_name}'s")
    ]


def test_reminders_and_escalation_count_working_days_across_the_new_year_bank_holiday(
    sandbox: RunningSandbox, where: Where
) -> None:
    # December 2026's cycle opens on the third working day of January: 1 January is a
    # bank holiday, so that is Wednesday 6 January 2027, and returns are due Wednesday 13th.
    with _council(sandbox, where.database_url, "2026-12") as (council, cycle_id):
        assert council.clock.now == datetime(2027, 1, 6, 9, 0, tzinfo=UTC)
        with council.store.transaction() as tx:
            assert tx.get_cycle(cycle_id).due_date == date(2027, 1, 13)
        escalated_before = len(_overdue_mails(council, SIAN, "Grace Mensah"))
        yusuf_before = len(_overdue_mails(council, MARCUS, "Yusuf Ali"))

        def run_until(until: datetime) -> None:
            while council.clock.now < until:
                council.clock.now = min(council.clock.now + timedelta(hours=1), until)
                council.service.settle()

        run_until(datetime(2027, 1, 7, 10, 0, tzinfo=UTC))
        _submit(council, YUSUF, {DOMESTIC_ABUSE: ("140", "Referrals steady after Christmas.")})
        run_until(datetime(2027, 1, 21, 12, 0, tzinfo=UTC))

        # Grace never returns: her request, then a reminder on each chasing working day.
        assert _sent_days(council, GRACE) == [
            "2027-01-06",  # the request
            "2027-01-11",  # two working days before due
            "2027-01-13",  # due today
            "2027-01-15",  # overdue chaser 1
            "2027-01-19",  # overdue chaser 2 (over the weekend of 16-17)
        ]
        grace_id = council.user(GRACE)["id"]
        reminded = [e for e in _audit(council, "owner.reminded") if e.subject_id == grace_id]
        assert [e.at.astimezone(LONDON).date() for e in reminded] == [
            date(2027, 1, 11),
            date(2027, 1, 13),
            date(2027, 1, 15),
            date(2027, 1, 19),
        ]
        # ...and in Teams she has five cards, every one still asking for her figures.
        cards = council.chat_cards(GRACE)
        assert len(cards) == 5
        assert all(card.action("submitReturns") for card in cards)
        # Yusuf returned before the first reminder: one card, now his receipt.
        (yusufs,) = council.chat_cards(YUSUF)
        assert yusufs.action("submitReturns") is None
        assert _sent_days(council, YUSUF) == ["2027-01-06"]

        # After the second overdue chaser, Sian, her line manager, is e-mailed.
        (escalation,) = [e for e in _audit(council, "owner.escalated") if e.subject_id == grace_id]
        assert escalation.at.astimezone(LONDON).date() == date(2027, 1, 19)
        assert (escalation.after or {})["to"] == [SIAN]
        mails = _overdue_mails(council, SIAN, "Grace Mensah")
        assert len(mails) == escalated_before + 1
        newest = mails[-1]
        assert "2026-12" in newest["subject"]
        cc = [r["emailAddress"]["address"] for r in newest.get("ccRecipients", [])]
        assert cc == [GRACE]
        assert len(_overdue_mails(council, MARCUS, "Yusuf Ali")) == yusuf_before


# --------------------------------------------------------------------------- 5


def _new_refreshes(council: Bench, seen: set[str]) -> list[Json]:
    """Refreshes in the sandbox's history that were not there before, oldest first."""
    history = refresh_history(council.sandbox, council.health)
    return sorted(
        (r for r in history if r["requestId"] not in seen), key=lambda r: str(r["startTime"])
    )


def _seen(council: Bench) -> set[str]:
    return {str(r["requestId"]) for r in refresh_history(council.sandbox, council.health)}


def test_approvals_in_one_window_make_one_refresh_in_power_bi(
    sandbox: RunningSandbox, where: Where
) -> None:
    figures = {
        "COV-042": ("38", "Fewer reports after the new collection round."),
        "COV-054": ("310", "Spring planting."),
        "COV-225": ("61.5", "Survey wave 2."),
    }
    with _council(sandbox, where.database_url, where.period) as (council, cycle_id):
        seen = _seen(council)
        _submit(council, OWEN, figures)
        for key in figures:
            assert _approve_to_the_end(council, _return_of(council, cycle_id, key).id or 0) == [
                SIAN,
                NADIA,
            ]
        council.service.settle()
        assert {k: len(_rows_for(council, k, where.period)) for k in figures} == dict.fromkeys(
            figures, 1
        )
        assert _new_refreshes(council, seen) == []  # the window has not closed yet

        for _ in range(4):  # an hour, settling every quarter
            council.clock.now += timedelta(minutes=15)
            council.service.settle()

        (refresh,) = _new_refreshes(council, seen)
        assert refresh["status"] == "Completed"
        assert len(_audit(council, "powerbi.refresh_requested")) == 1
        assert len(_audit(council, "powerbi.refreshed")) == 1


def test_a_refresh_over_the_daily_budget_waits_for_the_next_day(
    sandbox: RunningSandbox, where: Where
) -> None:
    flow = monthly_flow(sandbox_health(sandbox))
    assert flow.powerbi is not None
    powerbi = flow.powerbi.model_copy(update={"daily_budget": 1})
    flow = flow.model_copy(update={"powerbi": powerbi})
    figures = {
        "COV-039": ("1210", "Two depots on the heat network."),
        "COV-045": ("87", "Fleet renewal delayed."),
    }
    with _council(sandbox, where.database_url, where.period, flow) as (council, cycle_id):
        seen = _seen(council)
        _submit(council, GRACE, figures)
        first, second = (_return_of(council, cycle_id, key).id or 0 for key in figures)

        def wait(minutes: int) -> None:
            council.clock.now += timedelta(minutes=minutes)
            council.service.settle()

        # The first window: one approval, one refresh (the day's whole budget).
        _approve_to_the_end(council, first)
        wait(20)
        (today,) = _new_refreshes(council, seen)
        assert _audit(council, "powerbi.refresh_deferred") == []

        # The second window: the refresh is put off to tomorrow; Power BI sees nothing.
        _approve_to_the_end(council, second)
        wait(20)
        wait(60)  # and an hour on, still nothing
        assert _new_refreshes(council, seen) == [today]
        (deferred,) = _audit(council, "powerbi.refresh_deferred")
        assert (deferred.after or {})["daily_budget"] == 1

        # Past midnight (on both clocks) the deferred refresh goes.
        move_sandbox_clock(sandbox, DAY.total_seconds())
        opened_on = council.clock.now.astimezone(LONDON).date()
        council.clock.now = datetime.combine(
            opened_on + DAY, datetime.min.time(), tzinfo=LONDON
        ) + timedelta(hours=1)
        council.service.settle()
        earlier, later = _new_refreshes(council, seen)
        assert earlier == today
        day_of = [date.fromisoformat(str(r["startTime"])[:10]) for r in (earlier, later)]
        assert day_of[1] - day_of[0] == DAY
        with council.store.transaction() as tx:
            sent = [m.created_at.astimezone(LONDON).date() for m in tx.list_outbox(kind="refresh")]
        assert sent == [opened_on, opened_on + DAY]


# --------------------------------------------------------------------------- 6


def test_a_correction_after_approval_replaces_the_results_row_with_a_higher_version(
    sandbox: RunningSandbox, where: Where
) -> None:
    with _council(sandbox, where.database_url, where.period) as (council, cycle_id):
        _submit(council, AISHA, {NEET: ("5.2", "From the CCIS return.")})
        ret = _return_of(council, cycle_id, NEET)
        assert _approve_to_the_end(council, ret.id or 0) == [DANIEL, NADIA]
        council.service.settle()
        (published,) = _rows_for(council, NEET, where.period)
        assert published["Value"] == 5.2

        reason = "The DfE revised the not-known cohort; please send the revised rate."
        council.service.engine.request_correction(
            MONTHLY,
            where.period,
            NEET,
            by=council.user(NADIA)["id"],
            reason=reason,
            now=council.clock.now,
        )
        council.service.settle()
        sent_back = council.request_card(AISHA)
        assert reason in sent_back.text and "Nadia Clarke" in sent_back.text
        council.act(
            AISHA,
            sent_back,
            "submitReturns",
            {f"value__{NEET}": "4.9", f"comment__{NEET}": "Revised after the DfE's correction."},
        )
        assert _approve_to_the_end(council, ret.id or 0) == [DANIEL, NADIA]
        council.service.settle()

        (corrected,) = _rows_for(council, NEET, where.period)
        assert corrected["Value"] == 4.9
        assert corrected["Commentary"] == "Revised after the DfE's correction."
        assert corrected["Version"] > published["Version"]
        assert len(_audit(council, "return.correction_requested")) == 1
