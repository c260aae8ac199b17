"""MailClient and BotConnectorClient against the sandbox: cards reach people as sent."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from contract_support import Bench, open_bench

from m365perf.cards import (
    ApprovalView,
    IndicatorRequest,
    Outcome,
    OutcomeView,
    OwnerRequestView,
    PeriodValue,
    outlook_card,
    render_approval,
    render_outcome,
    render_owner_requests,
    summary_text,
    validate_card,
)
from m365perf.domain.kinds import Polarity, Rag, Unit
from m365perf.m365.teams import card_activity
from m365perf.sandbox.seed import register_rows

pytestmark = pytest.mark.slow

PERIOD = "2026/27 Q2"
LINK = "https://performance.contoso.gov.uk/returns/card-approval-7"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """One sandbox: the mail and chat tests each look only at their own message."""
    with open_bench(tmp_path_factory.mktemp("messaging")) as started:
        yield started


def _percentage_indicator(bench: Bench) -> dict[str, Any]:
    """A real Coventry percentage indicator with an owner and a supervisor from the directory."""
    return next(
        row
        for row in register_rows(bench.sandbox.config.mail_domain)
        if row["Unit"] == "percentage" and row["Polarity"] == "higher_is_better"
    )


def _approval_view(indicator: dict[str, Any], owner_name: str) -> ApprovalView:
    return ApprovalView(
        return_id="return-7",
        version=2,
        step_index=0,
        step_count=2,
        step_name="Supervisor check",
        card_id="card-approval-7",
        indicator_name=indicator["Title"],
        owner_name=owner_name,
        period_label=PERIOD,
        unit=Unit.PERCENTAGE,
        value=71.4,
        polarity=Polarity.HIGHER_IS_BETTER,
        target=75.0,
        tolerance=2.5,
        rag=Rag.RED,
        previous=PeriodValue("2026/27 Q1", 73.0),
        last_year=PeriodValue("2025/26 Q2", 74.2),
        direction_vs_previous="worsening",
        direction_vs_last_year="worsening",
        history=tuple(PeriodValue(f"2025/26 Q{q}", 72.0 + q) for q in range(1, 5)),
        variation="common cause",
        assurance="hit and miss",
        commentary="Two vacancies in the team during the quarter.",
        submitted_at=datetime(2026, 10, 14, 9, 30, tzinfo=UTC),
    )


def test_an_approval_card_reaches_the_approvers_mailbox_as_it_was_sent(bench: Bench) -> None:
    people = bench.directory()
    indicator = _percentage_indicator(bench)
    owner, approver = people[indicator["Owner"]], indicator["Supervisor"]
    view = _approval_view(indicator, owner["display_name"])
    card = render_approval(view)
    validate_card(card)
    subject = f"Please approve: {indicator['Title']} ({PERIOD})"

    bench.m365.mail.send_card(
        bench.settings.service_mailbox,
        [approver],
        subject,
        card,
        summary=summary_text(view, LINK),
        link=LINK,
    )

    received = [m for m in bench.inbox(approver) if m["subject"] == subject]
    assert len(received) == 1
    message = received[0]
    assert message["card"] == outlook_card(card, originator=bench.settings.actionable_originator)
    validate_card(message["card"])
    assert "cardNote" not in message  # Outlook kept the card: the originator is registered
    assert message["from"]["emailAddress"]["address"] == bench.settings.service_mailbox
    assert LINK in message["body"]["content"]
    assert html.escape(indicator["Title"]) in message["body"]["content"]


def test_a_teams_request_card_is_sent_and_then_replaced_by_its_outcome(bench: Bench) -> None:
    graph, teams, settings = bench.m365.graph, bench.m365.teams, bench.settings
    indicator = _percentage_indicator(bench)
    owner = graph.get_user(indicator["Owner"])
    supervisor = graph.get_user(indicator["Supervisor"])
    service_url = settings.bot_connector_base_url
    request_view = OwnerRequestView(
        cycle_id="cycle-2026-27-q2",
        owner_id=owner.id,
        card_id="card-request-3",
        owner_name=owner.display_name,
        flow_name="Council Plan",
        period_label=PERIOD,
        due=date(2026, 10, 16),
        indicators=(
            IndicatorRequest(
                indicator_id=indicator["IndicatorId"],
                name=indicator["Title"],
                unit=Unit.PERCENTAGE,
                version=1,
                polarity=Polarity.HIGHER_IS_BETTER,
                target=75.0,
                tolerance=2.5,
                recent=(PeriodValue("2026/27 Q1", 73.0),),
            ),
        ),
    )
    (request_card,) = render_owner_requests(request_view)
    validate_card(request_card)

    conversation = teams.create_conversation(
        service_url, settings.bot_app_id, settings.tenant_id, owner.id
    )
    assert (
        teams.create_conversation(service_url, settings.bot_app_id, settings.tenant_id, owner.id)
        == conversation
    )
    activity = teams.send_activity(
        service_url, conversation, card_activity(request_card, summary="Returns due")
    )
    assert _card_in_chat(bench, owner.user_principal_name, conversation, activity) == request_card

    outcome_card = render_outcome(
        OutcomeView(
            outcome=Outcome.APPROVED,
            indicator_name=indicator["Title"],
            owner_name=owner.display_name,
            period_label=PERIOD,
            at=datetime(2026, 10, 15, 11, 0, tzinfo=UTC),
            by=supervisor.display_name,
            unit=Unit.PERCENTAGE,
            value=71.4,
        )
    )
    validate_card(outcome_card)
    teams.update_activity(service_url, conversation, activity, card_activity(outcome_card))

    assert _card_in_chat(bench, owner.user_principal_name, conversation, activity) == outcome_card
    (chat,) = [
        c for c in bench.chats(owner.user_principal_name) if c["conversationId"] == conversation
    ]
    assert [a["id"] for a in chat["activities"]] == [activity]  # replaced, not added


def _card_in_chat(bench: Bench, upn: str, conversation: str, activity: str) -> Any:
    """The card the user sees on that message of that chat."""
    for chat in bench.chats(upn):
        if chat["conversationId"] == conversation:
            for shown in chat["activities"]:
                if shown["id"] == activity:
                    return shown["card"]
    raise AssertionError(f"message {activity} not in {upn}'s chat {conversation}")
