"""Fuzzing the bot endpoint: signed, malformed activities never give a 500 or a traceback.

Each case is a click Teams could have sent (an owner's submit, an approver's digest
buttons, an Action.Submit fallback, a conversationUpdate), signed with a valid Bot
Framework token for its sender, then mutated: values replaced by hostile ones (huge or
negative ids, blank card ids, NUL and lone surrogates, 30,000-character text, objects
where text belongs), keys dropped or added, types swapped. The real web app, engine,
SQLite store and token verifier answer it. A refused case (an HTTP 4xx, or a card error)
must leave the returns, outbox and audit trail as they were.

CI size 200; full size 2,000::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability/test_fuzz_bot.py -q -s
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fuzz_support import SEED, Tally, finish, mutate
from reliability_support import sized

from engine_support import ANN, BOB, make_council, submit_data  # isort: skip
from web_support import Site, click, make_site  # isort: skip

CASES = sized(200, 2_000)
ANN_EMAIL, BOB_EMAIL = "ann.lee@contoso.gov.uk", "bob.ray@contoso.gov.uk"


def _state(site: Site) -> tuple[Any, ...]:
    """What a refused click must not change (the conversation a click remembers is not
    judged here)."""
    with site.council.store.transaction() as tx:
        return tx.list_returns(), tx.list_outbox(), tx.list_audit()


def _seeds(site: Site) -> list[dict[str, Any]]:
    """Genuine activities to mutate, each from its own sender."""
    card = site.council.cards_to(ANN_EMAIL)[0]["card"]
    submit = submit_data(card, value__CP001="30", comment__CP001="Contract change.")
    site.post(click(ANN.user_id, "submitReturns", submit))
    site.council.engine.fire_due_timers(worker="fuzz", now=site.council.tick(minutes=2))
    seeds = [click(ANN.user_id, "submitReturns", submit)]
    approvals = site.council.cards_to(BOB_EMAIL)
    if approvals:
        digest = approvals[-1]["card"]
        for action in _actions(digest):
            verb = action.get("verb")
            if verb:
                seeds.append(click(BOB.user_id, verb, dict(action["data"])))
    fallback = click(ANN.user_id, "submitReturns", {})
    fallback.update(type="message", value={"verb": "submitReturns", **submit})
    del fallback["name"]
    seeds.append(fallback)
    update = click(ANN.user_id, "x", {})
    update.update(
        type="conversationUpdate",
        membersAdded=[{"id": "28:bot"}, {"id": "29:x", "aadObjectId": BOB.user_id}],
    )
    seeds.append(update)
    return seeds


def _actions(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute":
            found.append(node)
        for value in node.values():
            found += _actions(value)
    elif isinstance(node, list):
        for value in node:
            found += _actions(value)
    return found


def _refused(reply: Any) -> bool:
    if reply.status_code >= 400:
        return True
    try:
        body = reply.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("statusCode"), int)
        and (body["statusCode"] >= 400)
    )


def _invoke_status(reply: Any) -> int:
    """The status the person sees: an invoke error's own code, else the HTTP status."""
    try:
        body = reply.json()
    except ValueError:
        return int(reply.status_code)
    if isinstance(body, dict) and isinstance(body.get("statusCode"), int):
        return int(body["statusCode"])
    return int(reply.status_code)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_signed_malformed_activities_never_fail_the_service(
    signing_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rng = random.Random(SEED)
    site = make_site(make_council(), signing_key)
    seeds = _seeds(site)
    tally = Tally()
    started = time.monotonic()
    for case in range(CASES):
        activity = rng.choice(seeds)
        sent = copy.deepcopy(activity)
        for _ in range(rng.randint(1, 3)):
            target = rng.choice(["value", "value", "value", "conversation", "from", None])
            if target is None or not isinstance(sent.get(target), dict):
                sent = mutate(rng, sent)
            else:
                sent[target] = mutate(rng, sent[target])
        if not isinstance(sent, dict):
            sent = {"type": "invoke", "value": sent}
        before = _state(site)
        reply = site.client.post(
            "/api/messages",
            content=json.dumps(sent).encode("ascii"),  # lone surrogates escaped, as JSON allows
            headers={"Authorization": f"Bearer {site.token()}", "Content-Type": "application/json"},
        )
        status = _invoke_status(reply)
        tally.saw(status)
        if _refused(reply) and _state(site) != before:
            tally.changed_when_refused.append(f"case {case}: {str(sent)[:300]}")
        if rng.random() < 0.05:  # time moves on, as between real clicks
            site.council.tick(minutes=rng.randint(1, 90))
    finish("fuzz_bot", tally, caplog.records, cases=CASES, started=started)
