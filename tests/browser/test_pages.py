"""The pages people open in a browser, in real Chromium: the status page and the inbox."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import ANN, NADIA, Council, make_council, submit_data
from signin_support import STAFF_GROUP, offline_signin, sealed, session_cookie
from web_support import BOT_APP_ID, ISSUER, METADATA_URL, KeyDirectory

from m365perf.cards import render_approval
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier

pytestmark = pytest.mark.browser

HOSTILE = "<script>window.hacked = 1</script> & <b>bold</b>"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def council() -> Council:
    from engine_support import ROWS

    rows = [list(r) for r in ROWS]
    rows[2][1] = HOSTILE  # CP003's name, as typed into the register by someone unkind
    return make_council(rows=rows)


@pytest.fixture
def status_site(council: Council) -> Iterator[tuple[str, dict[str, str]]]:
    """The served address, and the session cookie of Nadia (performance team) for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        fetch_json=KeyDirectory(key),
    )
    signin = offline_signin()
    app = create_app(council.engine, verifier, clock=lambda: council.now, signin=signin)
    name, session = session_cookie(signin, NADIA.user_id, NADIA.name, (STAFF_GROUP,))
    for url in _serve(app):
        yield url, {"name": name, "value": sealed(signin, session), "url": url}


def test_status_page_shows_the_cycle_and_escapes_register_text(
    browser: Any, council: Council, status_site: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    status_url, staff_cookie = status_site
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))
    council.tick(days=10)  # past the due date: Dan's fly-tips are late
    anonymous = browser.new_page()
    anonymous.goto(f"{status_url}/status.json")
    assert "sign in first" in anonymous.inner_text("body")  # nobody signed in: 401
    context = browser.new_context()
    context.add_cookies([staff_cookie])
    page = context.new_page()
    page.goto(f"{status_url}/status")
    text = page.inner_text("body")
    assert "Monthly corporate KPIs" in text and "2026-10" in text
    assert "Dan Fox" in text  # outstanding, by owner
    assert HOSTILE.split(">")[0] + ">" in text  # the name shown as text...
    assert page.evaluate("typeof window.hacked") == "undefined"  # ...never run
    assert page.locator("b", has_text="bold").count() == 0
    page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
    assert (tmp_path / "status.png").stat().st_size > 1000
    assert council.now - timedelta(days=10) < council.now


def test_sandbox_inbox_page_shows_a_delivered_card(browser: Any, tmp_path: Path) -> None:
    from m365perf.cards import ApprovalView
    from m365perf.m365 import clients_from_settings
    from m365perf.sandbox.testing import running_sandbox
    from m365perf.settings import load_settings

    with running_sandbox(tmp_path, seed=True) as sandbox:
        settings = load_settings(**sandbox.settings_overrides())
        m365 = clients_from_settings(settings)
        view = ApprovalView(
            return_id="1",
            version=2,
            step_index=0,
            step_count=2,
            step_name="Supervisor check",
            card_id="approval-1",
            indicator_name="Household waste recycled",
            owner_name="Aisha Begum",
            period_label="2026-10",
            unit="percentage",
            value=46.5,
            target=45.0,
            commentary="Garden waste up after a wet October",
        )
        card = render_approval(view)
        user = "daniel.hughes@contoso.gov.uk"
        m365.mail.send_card(
            settings.service_mailbox,
            [user],
            "Approve: household waste",
            card,
            summary="Household waste recycled 46.5%",
            link="http://x",
        )
        page = browser.new_page()
        page.goto(f"{sandbox.base_url}/_sandbox/inbox/{user}")
        mail = page.get_by_role("article", name="Approve: household waste")
        mail.wait_for()  # drawn by Microsoft's renderer once the page has read the inbox
        text = mail.locator(".card").inner_text()
        assert "Household waste recycled" in text
        assert "Garden waste up after a wet October" in text
        page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)
