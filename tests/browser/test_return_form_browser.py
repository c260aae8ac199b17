"""The owners' web form in Chromium: open the e-mailed link, return figures, see the receipt."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from engine_support import Council
from link_support import SECRET, form_link, make_app, make_linked_council

from m365perf.store import ReturnStatus
from m365perf.web.links import LinkSigner

pytestmark = pytest.mark.browser

ANN = "ann.lee@contoso.gov.uk"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def council() -> Council:
    return make_linked_council(LinkSigner(SECRET))


@pytest.fixture
def site(council: Council) -> Iterator[str]:
    port = _free_port()
    app = make_app(council, LinkSigner(SECRET))
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


def test_an_officer_returns_a_figure_through_the_e_mailed_link(
    browser: Any, council: Council, site: str, tmp_path: Path
) -> None:
    (request,) = council.cards_to(ANN)
    # The e-mail's link names the public address; here the service listens on a test port.
    page = browser.new_page()
    page.goto(site + urlsplit(form_link(council, request)).path)
    waste = page.get_by_role("group", name="Household waste recycled")
    waste.get_by_label("Value for 2026-10").fill("46.5")
    waste.get_by_label("Commentary").fill("Garden waste up after a wet October")
    claims = page.get_by_role("group", name="Days to process new benefit claims")
    claims.get_by_label("Value for 2026-10").fill("19")
    page.screenshot(path=str(tmp_path / "return-form.png"), full_page=True)
    page.get_by_role("button", name="Submit returns").click()
    page.wait_for_load_state()
    text = page.inner_text("main")
    assert "Thank you, Ann Lee. 2 returns were received." in text
    assert "Returned: 46.5%" in text and "Awaiting approval by Bob Ray" in text
    assert page.get_by_role("button").count() == 0  # nothing left to submit
    page.screenshot(path=str(tmp_path / "return-receipt.png"), full_page=True)
    assert (tmp_path / "return-receipt.png").stat().st_size > 1000
    with council.store.transaction() as tx:
        (ret,) = [r for r in tx.list_returns(cycle_id=1) if r.indicator_key == "CP001"]
    assert ret.status is ReturnStatus.RETURNED
    assert ret.commentary == "Garden waste up after a wet October"
