"""A council run by the sandbox's people, served with web sign-in at the sandbox's IdP.

The engine tests' council (tests/engine/engine_support.py), with its people swapped for
the seeded sandbox directory's Housing and Communities service: Chloe Evans and Yusuf Ali
own the returns, Marcus Bennett approves first, Angela Reid second, then the performance
team (Nadia Clarke, Ben Foster, members of the sandbox's performance team group). The web
app runs in uvicorn on a real port and signs people in at the real sandbox process.
"""

from __future__ import annotations

import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
import uvicorn
from engine_support import COLUMNS, MONTHLY, ROWS, START, Council, submit_data

from m365perf.domain.periods import Period
from m365perf.engine import Caller, Engine, EngineConfig
from m365perf.flows import load_flow
from m365perf.m365.auth import ClientCredential, login_authority
from m365perf.plan.register import read_indicators
from m365perf.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import PersonSpec
from m365perf.store.testing import memory_store
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier
from m365perf.web.signin import CookieSessions, EntraSignIn, SignIn

SESSION_KEY = "a-test-key-for-web-sign-in-cookies-0123456789"
OWNER, OTHER_OWNER = "chloe.evans@contoso.gov.uk", "yusuf.ali@contoso.gov.uk"
SUPERVISOR, HEAD = "marcus.bennett@contoso.gov.uk", "angela.reid@contoso.gov.uk"
NADIA = "nadia.clarke@contoso.gov.uk"
_SWAP = {
    "ann.lee@contoso.gov.uk": OWNER,
    "bob.ray@contoso.gov.uk": SUPERVISOR,
    "cat.doe@contoso.gov.uk": HEAD,
    "dan.fox@contoso.gov.uk": OTHER_OWNER,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class IdpCouncil:
    council: Council
    sandbox: RunningSandbox
    base_url: str
    people: dict[str, Caller]  # by e-mail
    staff_group: str

    def caller(self, email: str) -> Caller:
        return self.people[email]

    def submit(self) -> None:
        """Chloe returns both her figures by card click; Marcus's digest lists both."""
        (request,) = self.council.cards_to(OWNER)
        data = submit_data(request["card"], value__CP001="46.5", value__CP002="19")
        self.council.act(self.caller(OWNER), "submitReturns", data)
        self.settle()

    def settle(self) -> None:
        """Let the digests' debounce window pass and their timers fire."""
        self.council.tick(minutes=2)
        self.council.engine.fire_due_timers(worker="test", now=self.council.now)

    def approval_cards(self, email: str) -> list[dict[str, Any]]:
        """The approval digests (or, on a per-item flow, the approval cards) sent to ``email``."""
        return [
            p
            for p in self.council.cards_to(email)
            if str(p["card_id"]).startswith(("digest-", "approval-"))
        ]

    def digest_action(self, email: str, verb: str, return_id: int) -> dict[str, Any]:
        """The data of ``verb``'s button for ``return_id`` on ``email``'s newest digest."""
        card = self.approval_cards(email)[-1]["card"]
        stack: list[Any] = [card]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                data = node.get("data")
                if (
                    node.get("type") == "Action.Execute"
                    and node.get("verb") == verb
                    and isinstance(data, dict)
                    and str(data.get("return_id")) == str(return_id)
                ):
                    return dict(data)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        raise AssertionError(f"no {verb} button for return {return_id}")


def make_idp_council(
    sandbox: RunningSandbox, base_url: str, *, cards: str = "digest"
) -> IdpCouncil:
    health = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=10).json()
    users = requests.get(f"{sandbox.base_url}/_sandbox/users", timeout=10).json()["value"]
    people = [u for u in users if u["display_name"] != "Performance Team"]
    group = str(health["performance_team_group_id"])
    store = memory_store()
    flow = load_flow(MONTHLY)
    approval = flow.approval.model_copy(update={"cards": cards})
    flow = flow.model_copy(update={"staff_group": group, "approval": approval})
    engine = Engine(
        store,
        [flow],
        EngineConfig(public_base_url=base_url, approvals_base_url=base_url),
    )
    now = START
    with store.transaction() as tx:
        tx.upsert_people(
            [
                PersonSpec(
                    id=u["id"],
                    name=u["display_name"],
                    email=u["mail"],
                    line_manager_id=u["manager_id"],
                )
                for u in people
            ],
            now=now,
        )
    register = [
        dict(
            zip(
                COLUMNS,
                [_SWAP.get(cell, cell) for cell in row] + [""] * (len(COLUMNS) - len(row)),
                strict=True,
            )
        )
        for row in ROWS
    ]
    indicators, problems = read_indicators(flow, register)
    engine.open_cycle(flow.id, Period.parse("2026-10"), indicators, problems, now=now)
    callers = {u["mail"]: Caller(u["id"], u["display_name"]) for u in people}
    return IdpCouncil(Council(engine, store, now), sandbox, base_url, callers, group)


def sandbox_signin(sandbox: RunningSandbox, base_url: str, staff_group: str) -> SignIn:
    """Web sign-in at the sandbox's identity provider, exactly as settings would make it."""
    entra = EntraSignIn(
        credential=ClientCredential(DEFAULT_CLIENT_ID, secret=DEFAULT_CLIENT_SECRET),
        tenant_id=sandbox.config.tenant_id,
        login=login_authority(sandbox.base_url, sandbox.config.tenant_id),
        redirect_uri=base_url + "/signin/callback",
    )
    return SignIn(
        entra=entra,
        sessions=CookieSessions(SESSION_KEY),
        base_url=base_url,
        staff_groups=frozenset({staff_group}),
    )


@contextmanager
def serving(idp: IdpCouncil, port: int, *, part: Any = "all") -> Iterator[SignIn]:
    """The real web app on ``port`` over the council, signing in at the sandbox."""
    signin = sandbox_signin(idp.sandbox, idp.base_url, idp.staff_group)
    verifier = BotTokenVerifier(
        openid_metadata_url="https://login.botframework.com/v1/.well-known/openidconfiguration",
        issuers="https://api.botframework.com",
        bot_app_id="0b8e4b5c-6a1d-4d8e-9f3a-2c7b1e5d9a40",
        tenant_id="7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09",
        fetch_json=_no_fetch,
    )
    app = create_app(
        idp.council.engine,
        verifier,
        clock=lambda: idp.council.now,
        signin=signin,
        part=part,
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.05)
    try:
        yield signin
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _no_fetch(url: str) -> dict[str, Any]:
    raise AssertionError(f"no bot click is made here, yet {url} was fetched")


_USER_BUTTON = re.compile(r"name='user' value='([^']+)'>[^<]*<small>([^<]+)</small>")
_HIDDEN = re.compile(r"<input type='hidden' name='([^']+)' value='([^']*)'>")
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)">')


def sign_in(http: requests.Session, url: str, email: str) -> requests.Response:
    """Open ``url`` and sign in at the sandbox's page as ``email``, as a browser would."""
    answer = http.get(url, timeout=20)
    assert "Pick an account" in answer.text, answer.text[:500]
    return pick(http, answer, email)


def pick(
    http: requests.Session, picker: requests.Response, email: str, *, follow: bool = True
) -> requests.Response:
    """Press ``email``'s button on the sandbox's account picker; follow back to the app.

    ``follow=False`` stops at the sandbox's redirect (its ``location`` is the callback).
    """
    fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(picker.text)}
    (action,) = _FORM_ACTION.findall(picker.text)
    users = {html.unescape(upn): value for value, upn in _USER_BUTTON.findall(picker.text)}
    fields["user"] = users[email]
    url = urljoin(picker.url, html.unescape(action))
    return http.post(url, data=fields, timeout=20, allow_redirects=follow)


def csrf_of(text: str) -> str:
    """The session's CSRF token as the page carries it in its forms."""
    (token, *_) = re.findall(r'name="csrf" value="([^"]+)"', text)
    return html.unescape(token)


def page_form(text: str, verb: str, return_id: str | None = None) -> dict[str, str]:
    """The fields of the approvals page's form for ``verb`` (and that return), as drawn."""
    for form in re.findall(r"<form method=\"post\" action=\"[^\"]+\">(.*?)</form>", text, re.S):
        fields = {
            k: html.unescape(v)
            for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)
        }
        if fields.get("verb") == verb and (
            return_id is None or fields.get("return_id") == return_id
        ):
            return fields
    raise AssertionError(f"no {verb} form for return {return_id} on the page")


# --- fixtures (the conftests of tests/web and tests/browser import these) ------------


@pytest.fixture(scope="module")
def idp_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox per module, the identity provider of the tests in it."""
    with running_sandbox(tmp_path_factory.mktemp("idp"), throttle=False) as running:
        yield running


@pytest.fixture
def idp(idp_sandbox: RunningSandbox) -> Iterator[IdpCouncil]:
    """A council whose owners have returned, served with sign-in on a free port."""
    port = free_port()
    council = make_idp_council(idp_sandbox, f"http://127.0.0.1:{port}")
    council.submit()
    with serving(council, port):
        yield council
