"""The status page in real Chromium through a whole cycle, on a desktop and on a phone,
and the staff pages (status, approvals) checked by axe-core."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from artefacts_support import artefact
from axe_support import assert_no_serious_violations
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import (
    ANN,
    BOB,
    NADIA,
    PEOPLE,
    Council,
    approval_data,
    make_council,
    submit_data,
)
from signin_support import STAFF_GROUP, offline_signin, sealed, session_cookie
from web_support import BOT_APP_ID, ISSUER, METADATA_URL, TENANT_ID, KeyDirectory

from m365perf.engine import Caller
from m365perf.store import ReturnStatus
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier
from m365perf.web.signin import SignIn

pytestmark = pytest.mark.browser

ANN_MAIL, BOB_MAIL = "ann.lee@contoso.gov.uk", "bob.ray@contoso.gov.uk"
PHONE = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """The app over a council on a real port, and sign-in cookies for it."""

    def __init__(self, council: Council) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        verifier = BotTokenVerifier(
            openid_metadata_url=METADATA_URL,
            issuers=ISSUER,
            bot_app_id=BOT_APP_ID,
            tenant_id=TENANT_ID,
            fetch_json=KeyDirectory(key),
        )
        self.council = council
        self.signin: SignIn = offline_signin()
        self.app = create_app(
            council.engine, verifier, clock=lambda: council.now, signin=self.signin
        )
        self.url = ""

    def cookie(self, who: Caller, *, staff: bool) -> dict[str, str]:
        name, session = session_cookie(
            self.signin, who.user_id, who.name, (STAFF_GROUP,) if staff else ()
        )
        return {"name": name, "value": sealed(self.signin, session), "url": self.url}


@contextmanager
def serving(council: Council) -> Iterator[Served]:
    """The app over ``council`` in uvicorn on a free port, until the block ends."""
    site = Served(council)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(site.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.05)
    site.url = f"http://127.0.0.1:{port}"
    try:
        yield site
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served() -> Iterator[Served]:
    with serving(make_council()) as site:
        yield site


def _row(page: Any, indicator: str) -> str:
    """The text of one return's row on the page, as a reader sees it."""
    page.reload()
    row = page.get_by_role("row").filter(has_text=indicator).last
    return str(row.inner_text())


def _last_card(council: Council, email: str) -> dict[str, Any]:
    card: dict[str, Any] = council.cards_to(email)[-1]["card"]
    return card


def _current_approver(council: Council) -> Caller:
    with council.store.transaction() as tx:
        ret = tx.find_return(1, "CP001")
        assert ret is not None
        (step,) = tx.list_open_steps(return_ids=[ret.id or 0])
    person = next(p for p in PEOPLE if p[0] in step.approvers or p[2] in step.approvers)
    return Caller(person[0], person[1])


def test_the_status_page_reflects_each_step_of_a_cycle(browser: Any, served: Served) -> None:
    council = served.council
    context = browser.new_context(bypass_csp=True)  # axe is injected as a script
    context.add_cookies([served.cookie(NADIA, staff=True)])
    page = context.new_page()
    page.goto(f"{served.url}/status")
    waste = "CP001: Household waste recycled"

    assert "not started" in _row(page, waste) and "Ann Lee" in _row(page, waste)

    council.tick(hours=3)
    data = submit_data(_last_card(council, ANN_MAIL), value__CP001="44", comment__CP001="Wet.")
    council.act(ANN, "submitReturns", data)
    council.tick(hours=4)
    row = _row(page, waste)
    assert "awaiting approval" in row and "Supervisor check" in row and "Bob Ray" in row
    assert "44%" in row and "Amber" in row and "4 hours" in row

    reject = approval_data(_last_card(council, BOB_MAIL), "reject", reason="Check the tonnage.")
    council.act(BOB, "reject", reject)
    row = _row(page, waste)
    assert "rejected, back with the owner" in row and "Ann Lee" in row

    data = submit_data(_last_card(council, ANN_MAIL), value__CP001="46", comment__CP001="Recount.")
    council.act(ANN, "submitReturns", data)
    council.act(BOB, "approve", approval_data(_last_card(council, BOB_MAIL), "approve"))
    approver = _current_approver(council)
    row = _row(page, waste)
    assert "awaiting approval" in row and "Supervisor check" not in row
    assert approver.name in row and "46%" in row and "Green" in row
    assert (
        approver.name in page.get_by_role("region", name="Approval queue by approver").inner_text()
    )

    email = next(p[2] for p in PEOPLE if p[0] == approver.user_id)
    council.act(approver, "approve", approval_data(_last_card(council, email), "approve"))
    with council.store.transaction() as tx:
        ret = tx.find_return(1, "CP001")
    assert ret is not None and ret.status is ReturnStatus.APPROVED
    row = _row(page, waste)
    assert "approved" in row and "46%" in row
    measures = page.get_by_role("region", name="Process measures by flow, every cycle")
    assert "Monthly corporate KPIs" in measures.inner_text()
    assert "Rejection rate" in measures.inner_text()

    council.tick(days=8)  # past the due date: what is still owed is late
    assert "late" in _row(page, "CP002: Days to process new benefit claims")

    page.screenshot(path=str(artefact("status.png")), full_page=True)
    assert_no_serious_violations(page)
    context.close()


def test_a_parked_message_is_retried_from_its_button(browser: Any, served: Served) -> None:
    council = served.council
    (claimed,) = council.store.claim_outbox(council.now, 1, "test-worker")
    council.store.park(claimed.id or 0, "403 MessageWritesBlocked", now=council.now)
    context = browser.new_context()
    context.add_cookies([served.cookie(NADIA, staff=True)])
    page = context.new_page()
    page.goto(f"{served.url}/status")

    parked = page.get_by_role("region", name="Messages the service could not send")
    assert "403 MessageWritesBlocked" in parked.inner_text()
    parked.get_by_role("button", name=f"Retry message {claimed.id}").click()
    page.wait_for_load_state()

    assert page.get_by_role("status").inner_text() == (
        f"Message {claimed.id} is back in the queue: it will be sent again shortly."
    )
    assert "None: nothing is parked." in page.inner_text("main")
    with council.store.transaction() as tx:
        (event,) = tx.list_audit(subject_type="outbox")
    assert (event.action, event.actor) == ("outbox.retried", NADIA.user_id)
    context.close()


def test_on_a_phone_each_row_reads_as_a_card_and_passes_axe(browser: Any, served: Served) -> None:
    council = served.council
    data = submit_data(_last_card(council, ANN_MAIL), value__CP001="46.5")
    council.act(ANN, "submitReturns", data)
    context = browser.new_context(viewport=PHONE, bypass_csp=True, is_mobile=True)
    context.add_cookies([served.cookie(NADIA, staff=True)])
    page = context.new_page()
    page.goto(f"{served.url}/status")

    width = page.evaluate("document.documentElement.scrollWidth")
    cell = page.locator('td[data-label="Owner"]').first
    label = page.evaluate("el => getComputedStyle(el, '::before').content", cell.element_handle())

    assert width <= PHONE["width"]  # nothing to scroll sideways
    assert label == '"Owner: "'
    page.screenshot(path=str(artefact("status-phone.png")), full_page=True)
    assert_no_serious_violations(page)
    context.close()


def test_the_approvers_web_page_passes_axe(browser: Any) -> None:
    council = make_council(cards="digest")
    data = submit_data(_last_card(council, ANN_MAIL), value__CP001="46.5", value__CP002="19")
    council.act(ANN, "submitReturns", data)
    with serving(council) as site:
        context = browser.new_context(bypass_csp=True)
        context.add_cookies([site.cookie(BOB, staff=False)])
        page = context.new_page()
        page.goto(f"{site.url}/approvals/1")
        assert "Household waste recycled" in page.inner_text("main")
        assert_no_serious_violations(page)
        page.goto(f"{site.url}/approvals")
        assert_no_serious_violations(page)
        page.screenshot(path=str(artefact("approvals.png")), full_page=True)
        context.close()
