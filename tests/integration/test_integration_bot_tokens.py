"""Tokens as Microsoft issues them to a single-tenant bot, and every forgery of them, over HTTP.

The sandbox signs as the Bot Framework (``https://api.botframework.com``) and as the
council's tenant (Entra v2 and v1 issuers, keys in the tenant's discovery document); the
real service fetches those keys over HTTP and must take the genuine clicks and refuse
every other one with 401 and nothing changed: no return, step, outbox row, audit entry,
timer or stored conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from integration_support import Bench, Json, Posted, bench, monthly_flow, opening_time
from integration_support import sandbox_health as health_of

from m365perf.sandbox.testing import running_sandbox
from m365perf.store import ReturnStatus

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
OWNER = "kieran.murphy@contoso.gov.uk"
OTHER_TENANT = "0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5"

# Each forgery: what the sandbox is asked to sign, and what is changed in the activity.
FORGERIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "another tenant's activity, Bot Framework token": ({}, {"tenant": OTHER_TENANT}),
    "another tenant's activity, Entra v2 token": ({"issuer": "entra_v2"}, {"tenant": OTHER_TENANT}),
    "another tenant's conversation": ({}, {"conversation_tenant": OTHER_TENANT}),
    "an activity naming no tenant": ({}, {"tenant": None}),
    "our v2 issuer, another tenant's tid": ({"issuer": "entra_v2", "tid": OTHER_TENANT}, {}),
    "our v1 issuer, another tenant's tid": ({"issuer": "entra_v1", "tid": OTHER_TENANT}, {}),
    "another tenant's v2 issuer, our tid": ({"issuer": "entra_v2", "tenant": OTHER_TENANT}, {}),
    "another tenant's v2 issuer and tid": (
        {"issuer": "entra_v2", "tenant": OTHER_TENANT, "tid": OTHER_TENANT},
        {},
    ),
    "another tenant's v1 issuer and tid": (
        {"issuer": "entra_v1", "tenant": OTHER_TENANT, "tid": OTHER_TENANT},
        {},
    ),
    "an Entra token without tid": ({"issuer": "entra_v2", "tid": ""}, {}),
    "a Bot Framework token naming another tenant": ({"tid": OTHER_TENANT}, {}),
    "the multi-tenant 'common' issuer": (
        {"issuer": "https://login.microsoftonline.com/common/v2.0"},
        {},
    ),
    "an issuer one slash off": ({"issuer": "https://api.botframework.com/"}, {}),
    "the sandbox's own Graph issuer": ({"issuer": "sandbox-graph"}, {}),
    "for another bot (Bot Framework)": ({"audience": "00000000-0000-0000-0000-000000000b07"}, {}),
    "for another bot (Entra)": (
        {"issuer": "entra_v2", "audience": "00000000-0000-0000-0000-000000000b07"},
        {},
    ),
    "for Microsoft Graph": ({"issuer": "entra_v1", "audience": "https://graph.microsoft.com"}, {}),
    "expired (Bot Framework)": ({"expired": True}, {}),
    "expired (Entra)": ({"issuer": "entra_v2", "expired": True}, {}),
    "not valid for another hour": ({"not_before_s": 3600}, {}),
    "not valid for another hour (Entra)": ({"issuer": "entra_v1", "not_before_s": 3600}, {}),
    "alg none": ({"alg": "none"}, {}),
    "HS256 keyed with the public key": ({"alg": "HS256"}, {}),
    "HS256 keyed with the tenant's public key": ({"issuer": "entra_v2", "alg": "HS256"}, {}),
    "an unknown kid": ({"kid": "no-such-key"}, {}),
    "an unknown kid (Entra)": ({"issuer": "entra_v2", "kid": "no-such-key"}, {}),
    "a key nobody published": ({"key": "foreign"}, {}),
    "a key nobody published (Entra)": ({"issuer": "entra_v2", "key": "foreign"}, {}),
    "an Entra issuer signed with the Bot Framework's key": (
        {"issuer": "entra_v2", "key": "botframework", "kid": "botframework"},
        {},
    ),
    "the Bot Framework issuer signed with the tenant's key": (
        {"key": "entra", "kid": "entra"},
        {},
    ),
    "a Bot Framework token without serviceurl": ({"service_url_claim": False}, {}),
    "a token for another service url": ({}, {"service_url": "https://smba.evil.example/emea/"}),
    "no token at all": ({"alg": "absent"}, {}),
}


@pytest.fixture(scope="module")
def council(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """The October cycle open and every owner's card delivered to Teams."""
    tmp = tmp_path_factory.mktemp("tokens")
    with running_sandbox(tmp) as sandbox:
        start = opening_time(monthly_flow(health_of(sandbox)), PERIOD)
        with bench(sandbox, f"sqlite:///{tmp / 'm365perf.db'}", start=start) as council:
            opened = council.service.open_due_cycles()
            assert [o.created for o in opened] == [True]
            council.service.settle()
            yield council


def snapshot(council: Bench) -> dict[str, Any]:
    """Everything a click could change, conversation references included."""
    with council.store.transaction() as tx:
        returns = [r for c in tx.list_cycles() for r in tx.list_returns(cycle_id=c.id)]
        refs = [tx.find_conversation_ref(p.id) for p in tx.list_people()]
        return {
            "returns": [r.model_dump() for r in returns],
            "steps": [s.model_dump() for r in returns for s in tx.list_steps(r.id or 0)],
            "outbox": [m.model_dump() for m in tx.list_outbox()],
            "audit": [e.model_dump() for e in tx.list_audit()],
            "timers": [t.model_dump() for t in tx.list_timers()],
            "conversations": [r.model_dump() if r else None for r in refs],
        }


def invoke(council: Bench, upn: str, posted: Posted, verb: str, inputs: Json) -> Json:
    """The ``adaptiveCard/action`` invoke Teams posts when ``upn`` clicks ``verb``."""
    user = council.user(upn)
    tenant = council.health["settings"]["tenant_id"]
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": "f:forged-click",
        "serviceUrl": council.health["settings"]["bot_connector_base_url"],
        "channelId": "msteams",
        "from": {"id": user["teams_id"], "name": user["display_name"], "aadObjectId": user["id"]},
        "conversation": {
            "conversationType": "personal",
            "tenantId": tenant,
            "id": posted.where["conversation_id"],
        },
        "recipient": {"id": f"28:{council.health['settings']['bot_app_id']}"},
        "channelData": {"tenant": {"id": tenant}},
        "replyToId": posted.where["activity_id"],
        "value": {
            "action": {
                "type": "Action.Execute",
                "verb": verb,
                "data": {**posted.data(verb), **inputs},
            },
            "trigger": "manual",
        },
    }


def forged(activity: Json, changes: dict[str, Any]) -> Json:
    """The activity with a forger's changes: its tenant, conversation tenant, serviceUrl."""
    forgery = {**activity, "channelData": dict(activity["channelData"])}
    forgery["conversation"] = dict(activity["conversation"])
    if "tenant" in changes:
        if changes["tenant"] is None:
            forgery["channelData"] = {}
        else:
            forgery["channelData"]["tenant"] = {"id": changes["tenant"]}
    if "conversation_tenant" in changes:
        forgery["conversation"]["tenantId"] = changes["conversation_tenant"]
    if "service_url" in changes:
        forgery["serviceUrl"] = changes["service_url"]
    return forgery


def token(council: Bench, spec: dict[str, Any]) -> str | None:
    """A token from the sandbox: ``kid`` ``botframework``/``entra`` names that key's id."""
    spec = dict(spec)
    if spec.get("alg") == "absent":
        return None
    if spec.get("issuer") == "sandbox-graph":
        spec["issuer"] = (
            f"https://login.m365perf-sandbox.invalid/{council.health['settings']['tenant_id']}/v2.0"
        )
    if spec.get("kid") in ("botframework", "entra"):
        spec["kid"] = _published_kid(council, spec["kid"])
    answer = requests.post(f"{council.sandbox.base_url}/_sandbox/bot-token", json=spec, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def _published_kid(council: Bench, which: str) -> str:
    base, tenant = council.sandbox.base_url, council.health["settings"]["tenant_id"]
    url = (
        f"{base}/botframework/keys"
        if which == "botframework"
        else (f"{base}/{tenant}/discovery/v2.0/keys")
    )
    return str(requests.get(url, timeout=10).json()["keys"][0]["kid"])


def post(council: Bench, activity: Json, bearer: str | None) -> requests.Response:
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    return requests.post(council.endpoint, json=activity, headers=headers, timeout=30)


def submit_inputs(card: Posted, value: str = "120") -> Json:
    versions = card.data("submitReturns")["versions"]
    return {f"value__{key}": value for key in versions} | {
        f"comment__{key}": "Steady month." for key in versions
    }


def test_every_forged_or_misdirected_token_is_refused_with_nothing_changed(
    council: Bench,
) -> None:
    assert len(FORGERIES) >= 20
    card = council.request_card(OWNER)
    activity = invoke(council, OWNER, card, "submitReturns", submit_inputs(card))
    before = snapshot(council)

    answers = {}
    for case, (spec, changes) in FORGERIES.items():
        answer = post(council, forged(activity, changes), token(council, spec))
        answers[case] = answer.status_code
        assert snapshot(council) == before, f"a click with {case} changed the store"
    assert answers == dict.fromkeys(FORGERIES, 401)
    assert council.request_card(OWNER) == card

    # The very same click, signed by the tenant's Entra v2 issuer, is taken.
    answer = post(council, activity, token(council, {"issuer": "entra_v2"}))
    assert answer.status_code == 200 and answer.json()["statusCode"] == 200
    cycle_id = int(card.data("submitReturns")["cycle_id"])
    versions = card.data("submitReturns")["versions"]
    statuses = {r.status for r in council.returns(cycle_id) if r.indicator_key in versions}
    assert statuses == {ReturnStatus.RETURNED}


@pytest.mark.parametrize("issuer", ["entra_v1", "botframework"])
def test_tokens_from_each_trusted_issuer_are_taken(council: Bench, issuer: str) -> None:
    """A v1 Entra token and a Bot Framework one each submit an owner's return."""
    owners = [
        upn
        for upn in council.everyone()
        if upn != OWNER and any(p.action("submitReturns") for p in council.chat_cards(upn))
    ]
    owner = owners[0 if issuer == "entra_v1" else 1]
    card = council.request_card(owner)
    report = council.act(owner, card, "submitReturns", submit_inputs(card, "50"), issuer=issuer)
    assert report["status"] == 200 and report["card_replaced"], report
    cycle_id = int(card.data("submitReturns")["cycle_id"])
    versions = card.data("submitReturns")["versions"]
    statuses = {r.status for r in council.returns(cycle_id) if r.indicator_key in versions}
    assert statuses == {ReturnStatus.RETURNED}
