"""Where a person's cards go: only to a chat that person opened, or one the bot opens anew.

Over HTTP against the sandbox: a stored chat is changed only by its owner's own verified
activity in a 1:1 chat (never for the other members a ``conversationUpdate`` lists, never
by a refused click); a chat that is gone (404, the bot removed) is opened again, with the
Teams app installed for the user through Graph, and only failing that does the card go
by e-mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from integration_support import Bench, Json, bench, monthly_flow, opening_time
from integration_support import sandbox_health as health_of
from test_integration_bot_tokens import snapshot, submit_inputs, token

from m365perf.sandbox.testing import RunningSandbox, running_sandbox

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
OWNER = "kieran.murphy@contoso.gov.uk"
GONE = "liam.fletcher@contoso.gov.uk"
"""Installed the bot once (a chat was stored), then removed it before the cycle opened."""


def activity(council: Bench, upn: str, kind: str, conversation_id: str, **fields: Any) -> Json:
    """An activity from ``upn`` in their personal chat ``conversation_id``, as Teams sends it."""
    user = council.user(upn)
    tenant = council.health["settings"]["tenant_id"]
    return {
        "type": kind,
        "id": f"f:{kind}-{upn}",
        "serviceUrl": council.health["settings"]["bot_connector_base_url"],
        "channelId": "msteams",
        "from": {"id": user["teams_id"], "name": user["display_name"], "aadObjectId": user["id"]},
        "conversation": {
            "conversationType": "personal",
            "tenantId": tenant,
            "id": conversation_id,
        },
        "recipient": {"id": f"28:{council.health['settings']['bot_app_id']}"},
        "channelData": {"tenant": {"id": tenant}},
        **fields,
    }


def post(council: Bench, body: Json) -> requests.Response:
    bearer = token(council, {"issuer": "entra_v2"})
    headers = {"Authorization": f"Bearer {bearer}"}
    return requests.post(council.endpoint, json=body, headers=headers, timeout=30)


def installs(sandbox: RunningSandbox) -> list[str]:
    """The Graph paths on which the service installed the Teams app for someone."""
    rows = requests.get(f"{sandbox.base_url}/_sandbox/requests", timeout=10).json()["value"]
    return [
        str(r["path"])
        for r in rows
        if r.get("method") == "POST" and str(r.get("path", "")).endswith("/installedApps")
    ]


def ref_of(council: Bench, upn: str) -> str | None:
    with council.store.transaction() as tx:
        ref = tx.find_conversation_ref(council.user(upn)["id"])
    return None if ref is None else ref.conversation_id


def _stale_chat_then_open(council: Bench) -> None:
    """GONE installed the bot (a chat is stored), then removed it; the cycle opens."""
    answer = post(
        council,
        activity(
            council,
            GONE,
            "conversationUpdate",
            "a:1-a-chat-that-is-gone",
            membersAdded=[{"id": f"28:{council.health['settings']['bot_app_id']}"}],
        ),
    )
    assert answer.status_code == 200
    assert ref_of(council, GONE) == "a:1-a-chat-that-is-gone"
    removed = requests.post(
        f"{council.sandbox.base_url}/_sandbox/teams/remove-bot", json={"user": GONE}, timeout=10
    )
    assert removed.status_code == 200
    opened = council.service.open_due_cycles()
    assert [o.created for o in opened] == [True]
    council.service.settle()


@pytest.fixture(scope="module")
def council(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    tmp = tmp_path_factory.mktemp("conversations")
    with running_sandbox(tmp) as sandbox:
        start = opening_time(monthly_flow(health_of(sandbox)), PERIOD)
        with bench(sandbox, f"sqlite:///{tmp / 'm365perf.db'}", start=start) as council:
            _stale_chat_then_open(council)
            yield council


def test_a_stale_chat_is_opened_anew_with_the_app_installed_through_graph(
    council: Bench,
) -> None:
    card = council.request_card(GONE)
    assert card.where["conversation_id"] != "a:1-a-chat-that-is-gone"
    assert installs(council.sandbox) == [
        f"/v1.0/users/{council.user(GONE)['id']}/teamwork/installedApps"
    ]
    assert council.mails(GONE) == []


def test_a_stale_chat_goes_by_email_when_the_app_cannot_be_installed(tmp_path: Path) -> None:
    """No catalog id configured: nothing to install, so the card is e-mailed instead."""
    with running_sandbox(tmp_path) as sandbox:
        start = opening_time(monthly_flow(health_of(sandbox)), PERIOD)
        url = f"sqlite:///{tmp_path / 'm365perf.db'}"
        with bench(sandbox, url, start=start, settings={"teams_app_catalog_id": ""}) as council:
            _stale_chat_then_open(council)
            assert not [p for p in council.chat_cards(GONE) if p.action("submitReturns")]
            assert installs(sandbox) == []
            mailed = council.mails(GONE)
            assert len(mailed) == 1 and mailed[0]["card"], mailed


def test_members_listed_in_a_conversation_update_keep_their_own_chats(council: Bench) -> None:
    """An owner's install event listing everyone: the supervisor's cards still reach the
    supervisor, none lands in the owner's chat."""
    card = council.request_card(OWNER)
    own_chat = str(card.where["conversation_id"])
    others = [upn for upn in council.everyone() if upn != OWNER]
    before = {upn: ref_of(council, upn) for upn in others}
    listed = [{"id": f"28:{council.health['settings']['bot_app_id']}"}] + [
        {"id": council.user(upn)["teams_id"], "aadObjectId": council.user(upn)["id"]}
        for upn in others
    ]

    answer = post(
        council, activity(council, OWNER, "conversationUpdate", own_chat, membersAdded=listed)
    )

    assert answer.status_code == 200
    assert ref_of(council, OWNER) == own_chat
    assert {upn: ref_of(council, upn) for upn in others} == before

    report = council.act(OWNER, card, "submitReturns", submit_inputs(card))
    assert report["status"] == 200 and report["card_replaced"], report
    council.service.settle()
    cycle_id = int(card.data("submitReturns")["cycle_id"])
    versions = card.data("submitReturns")["versions"]
    mine = [r for r in council.returns(cycle_id) if r.indicator_key in versions]
    approvers = {
        council.user(approver)["upn"]
        for r in mine
        for approver in council.steps(r.id or 0)[0].approvers
    }
    assert approvers and OWNER not in approvers
    for upn in approvers:
        assert council.approval_cards(upn), f"{upn} got no approval card in their own chat"
    assert not [p for p in council.chat_cards(OWNER) if p.action("approve")]


def test_a_refused_click_remembers_no_chat(council: Bench) -> None:
    clicker = next(
        upn
        for upn in council.everyone()
        if upn not in (OWNER, GONE) and ref_of(council, upn) is None
    )
    before = snapshot(council)
    refused = activity(
        council,
        clicker,
        "invoke",
        "a:1-somebody-elses-chat",
        name="adaptiveCard/action",
        value={
            "action": {
                "type": "Action.Execute",
                "verb": "approve",
                "data": {"return_id": 999_999, "step_index": 0},
            },
            "trigger": "manual",
        },
    )

    answer = post(council, refused)

    assert answer.status_code == 200 and answer.json()["statusCode"] >= 400, answer.text
    assert ref_of(council, clicker) is None
    assert snapshot(council)["conversations"] == before["conversations"]
