"""A safe first start and catch-up, counted in the sandbox's mailboxes and Teams chats.

The review found the first ``serve`` on an empty database sending every past reminder
and escalation at once. Here the service starts on an empty store months after a
period's due date, and a service that opened a cycle on time comes back after days
down; what each person received is read back from the sandbox. Each start is
``Service.start``, the start-up ``m365perf serve`` runs before it answers.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from integration_support import ROOT, Bench, bench, monthly_flow, opening_time, sandbox_health

from m365perf.demo import Rehearsal
from m365perf.domain.periods import Period
from m365perf.flows import Flow, load_flow
from m365perf.plan.catchup import ladder_at_opening
from m365perf.plan.timetable import timetable
from m365perf.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.slow

ANNUAL_FILE = ROOT / "flows" / "annual-statutory-returns.yaml"
PERFORMANCE_MAILBOX = "performance@contoso.gov.uk"
# Tuesday 1 December 2026, 09:30 in London: the day the review started the service.
FIRST_START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'first-start.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    # Advisory locks are per database: a name of this test's own (see the schedulers test).
    monkeypatch.setattr("m365perf.service.CLOCK_LOCK", f"m365perf-clock:{url}")
    return url


def _annual(sandbox: RunningSandbox, collect_from: str) -> Flow:
    flow = Rehearsal._point_at_sandbox(load_flow(ANNUAL_FILE), sandbox_health(sandbox))
    return flow.model_copy(update={"collect_from": collect_from})


def _received(council: Bench) -> Counter[str]:
    """How many messages (e-mails and Teams cards) each person in the sandbox has.

    A request too big for one card goes as parts, e-mails with one subject: one message.
    A reminder or chaser has a subject of its own, so each counts.
    """
    got: Counter[str] = Counter()
    for upn in council.everyone():
        subjects = {str(m["subject"]) for m in council.mails(upn)}
        got[upn] = len(subjects) + len(council.chat_cards(upn))
    return +got


def _mails(council: Bench, starting: str) -> list[dict[str, object]]:
    return [
        m
        for upn in council.everyone()
        for m in council.mails(upn)
        if str(m["subject"]).startswith(starting)
    ]


def _body(mail: dict[str, object]) -> str:
    body = mail["body"]
    assert isinstance(body, dict)
    return " ".join(str(body["content"]).split())


def test_a_first_start_months_late_sends_one_truthful_request_per_person(
    sandbox: RunningSandbox, database_url: str
) -> None:
    flow = _annual(sandbox, "2025/26")
    period = Period.parse("2025/26")
    planned = timetable(flow, period)
    assert planned.due < FIRST_START.date() - timedelta(days=150)  # due in May: months ago
    with bench(sandbox, database_url, start=FIRST_START, flow=flow, serve=False) as council:
        opened = council.service.start()
        council.service.settle()

        assert [o.created for o in opened] == [True]
        with council.store.transaction() as tx:
            (cycle,) = tx.list_cycles()
            opened_audit = next(e for e in tx.list_audit() if e.action == "cycle.opened")
        due = ladder_at_opening(flow, period, FIRST_START).timetable.due
        assert cycle.period == "2025/26" and cycle.due_date == due
        assert due > FIRST_START.date()  # a real due date, counted from the first ask
        late = (opened_audit.after or {})["late"]
        assert late["planned_due"] == planned.due.isoformat() and late["dates_from_opening"]
        assert late["skipped_reminders"] == []  # the reminders are counted from today too

        got = _received(council)
        owners = {r.owner_email for r in council.returns(cycle.id or 0)}
        assert len(owners) >= 2
        assert max(got.values()) == 1, got  # at most one message to anyone
        assert set(got) <= owners | {PERFORMANCE_MAILBOX, *flow.performance_team}
        assert _mails(council, "Overdue") == []  # no line manager told anything
        requests = [m for m in _mails(council, flow.name) if ": returns due " in str(m["subject"])]
        assert {m["toRecipients"][0]["emailAddress"]["address"] for m in requests} == owners  # type: ignore[index]
        assert {str(m["subject"]).split(": returns due ")[1] for m in requests} == {
            f"{due:%A} {due.day} {due:%B %Y}"
        }
        for mail in requests:
            assert (
                f"This was due on {planned.due:%A} {planned.due.day} {planned.due:%B %Y}. "
                "This request reaches you late, so you have until "
            ) in _body(mail)

        # Up to the new due date: reminders at most one a day, still no escalation.
        day_before = datetime.combine(due, datetime.min.time(), tzinfo=UTC)
        while council.clock.now < day_before:
            council.clock.now += timedelta(hours=6)
            before = _received(council)
            council.service.settle()
            after = _received(council)
            assert all(after[p] - before[p] <= 1 for p in after), (council.clock.now, after)
        assert _mails(council, "Overdue") == []


def test_no_period_before_collect_from_is_opened(
    sandbox: RunningSandbox, database_url: str
) -> None:
    flow = _annual(sandbox, "2026/27")  # 2025/26 is the one due: not collected
    with bench(sandbox, database_url, start=FIRST_START, flow=flow, serve=False) as council:
        assert council.service.start() == []
        council.service.settle()
        with council.store.transaction() as tx:
            assert tx.list_cycles() == []
        assert _received(council) == Counter()


def test_after_downtime_each_owner_gets_one_folded_reminder_and_the_escalation_waits(
    sandbox: RunningSandbox, database_url: str
) -> None:
    flow = monthly_flow(sandbox_health(sandbox))
    start = opening_time(flow, "2026-10")  # Wednesday 4 November, due Wednesday 11th
    with bench(sandbox, database_url, start=start, serve=False) as council:
        (opened,) = council.service.start()
        council.service.settle()
        at_opening = _received(council)
        owners = {r.owner_email for r in council.returns(opened.cycle_id)}
    assert all(at_opening[o] == 1 for o in owners)

    # Down from the 4th to Wednesday 18th, 10:00: past reminders on the 9th, 11th, 13th
    # and 17th, and the escalation on the 17th at 09:05.
    back = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    with bench(sandbox, database_url, start=back, serve=False) as council:
        council.service.start()
        council.service.settle()
        got = _received(council)
        new = {p: got[p] - at_opening[p] for p in got if got[p] > at_opening[p]}
        assert {o: new.get(o) for o in owners} == dict.fromkeys(owners, 1)
        assert max(new.values()) == 1, new  # the performance team: one digest each
        assert _mails(council, "Overdue") == []
        for owner in sorted(owners)[:3]:
            text = " ".join(council.chat_cards(owner)[-1].text.split())
            assert "This return is late: it was due on Wednesday 11 November 2026." in text
        with council.store.transaction() as tx:
            audit = tx.list_audit()
        folded = [e for e in audit if e.action == "timer.folded"]
        put_off = [e for e in audit if e.action == "timer.put_off"]
        assert [(e.after or {})["reminder"] for e in folded] == [1, 2, 3]
        assert len(put_off) == 1
        assert (put_off[0].after or {})["to"].startswith("2026-11-20T09:05")  # 2 working days

        # The owners had their reminder; two working days on, the escalation goes.
        council.clock.now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
        council.service.settle()
        overdue = _mails(council, "Overdue")
        assert overdue
        assert all("due 2026-11-11" in _body(m) for m in overdue)
