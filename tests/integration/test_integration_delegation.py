"""An approver is away: their delegate approves from a signed card click, over HTTP.

The supervisor of Zoe's indicator (Imran) names Kieran as his delegate after the card
went out; Kieran gets the card, clicks Approve through the real bot endpoint, and the
return moves on. The audit (``m365perf audit``) names both: "Kieran Murphy for Imran
Hussain", on the card sent to Kieran and on the decision.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from integration_support import (
    MONTHLY,
    bench,
    card_text,
    monthly_flow,
    opening_time,
    replied_card,
    sandbox_health,
)

from m365perf.cli import main
from m365perf.domain.lifecycle import CURRENT_STEP
from m365perf.engine.context import local_day
from m365perf.sandbox.testing import RunningSandbox
from m365perf.store import ReturnStatus, StepStatus

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
OWNER = "zoe.turner@contoso.gov.uk"
SUPERVISOR = "imran.hussain@contoso.gov.uk"
DELEGATE = "kieran.murphy@contoso.gov.uk"
INDICATOR = "COV-003"
BOTH = "Kieran Murphy for Imran Hussain"


def test_the_delegate_of_an_away_approver_decides_and_the_audit_names_both(
    sandbox: RunningSandbox, database_url: str
) -> None:
    start = opening_time(monthly_flow(sandbox_health(sandbox)), PERIOD)
    with bench(sandbox, database_url, start=start) as council:
        opened = council.service.open_due_cycles()
        council.service.settle()
        card = council.request_card(OWNER)
        council.act(
            OWNER,
            card,
            "submitReturns",
            {f"value__{INDICATOR}": "1840", f"comment__{INDICATOR}": "Summer events."},
        )
        (ret,) = [r for r in council.returns(opened[0].cycle_id) if r.indicator_key == INDICATOR]
        council.service.settle()
        (asked,) = [s for s in council.steps(ret.id or 0) if s.status in CURRENT_STEP]
        assert {council.user(a)["upn"] for a in asked.approvers} == {SUPERVISOR}
        assert council.approval_cards(DELEGATE) == []

        # Imran goes on leave and names Kieran; the waiting card goes to Kieran at once.
        council.clock.now += timedelta(hours=2)
        today = local_day(council.clock())
        council.service.engine.add_delegation(
            approver=SUPERVISOR,
            delegate=DELEGATE,
            starts_on=today,
            ends_on=today + timedelta(days=10),
            by=SUPERVISOR,
            now=council.clock(),
        )
        council.service.settle()
        delegated = council.approval_card(DELEGATE, ret.id or 0, asked.step_index)

        council.clock.now += timedelta(minutes=10)
        report = council.act(DELEGATE, delegated, "approve")

        reply = card_text(replied_card(report))
        assert f"Approved by {BOTH}" in reply
        step = council.steps(ret.id or 0)[asked.step_index]
        assert step.status is StepStatus.APPROVED
        assert step.decided_by == council.user(DELEGATE)["id"]
        with council.store.transaction() as tx:
            assert tx.get_return(ret.id or 0).status is ReturnStatus.RETURNED  # next step
        council.service.settle()
        # Imran's own card, still in his chat, now says who decided for him
        left = [p for p in council.chat_cards(SUPERVISOR) if f"Approved by {BOTH}" in p.text]
        assert left, "the away approver's card was not replaced with the outcome"

    trail = CliRunner().invoke(
        main,
        ["audit", "--cycle", f"{MONTHLY}:{PERIOD}"],
        env={"M365PERF_DATABASE_URL": database_url},
    )
    assert trail.exit_code == 0, trail.output
    lines = trail.output.splitlines()
    (sent,) = [line for line in lines if "step.delegated" in line]
    (decided,) = [line for line in lines if "step.approved" in line]
    assert f"({BOTH})" in sent and f"({BOTH})" in decided
    assert decided.split("  ")[1].startswith("Kieran Murphy (")
    delegations = CliRunner().invoke(
        main, ["audit", "--delegations"], env={"M365PERF_DATABASE_URL": database_url}
    )
    assert delegations.exit_code == 0, delegations.output
    (added,) = delegations.output.splitlines()
    assert "Imran Hussain (" in added and "delegation.added" in added and f"({BOTH})" in added
