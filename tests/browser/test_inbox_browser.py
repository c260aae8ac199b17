"""Playing officer and approver in the sandbox inbox, in Chromium, on ``m365perf demo``;
the status page, signed in as the performance team, follows each step.

``m365perf demo`` (without ``--auto``) runs as a user would run it: its own process, the
sandbox in another, the links printed. Chromium opens the printed inbox pages, where
Microsoft's renderer draws the cards; each click goes through the sandbox (signed as
the Bot Framework would) to the service's bot endpoint, and the page redraws the card
the service answers with. Screenshots land in ``tests/artefacts/`` (or
``$M365PERF_ARTEFACTS``).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from artefacts_support import artefact
from axe_support import assert_no_serious_violations

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
START_S = 120
CARD_WAIT_MS = 30_000
MONTHLY = "Monthly corporate KPIs: 2026-10"
ANNUAL = "Annual statutory returns: 2025/26"
REASON = "The October figure leaves out the temporary accommodation cases: please add them."


@dataclass
class Demo:
    process: subprocess.Popen[str]
    links: dict[str, Any]
    output: list[str]

    def officer(self, name: str) -> dict[str, Any]:
        return next(o for o in self.links["officers"] if o["name"] == name)

    def person(self, address: str) -> dict[str, Any]:
        people = self.links["officers"] + self.links["approvers"]
        return next(p for p in people if p["address"] == address)


def _two_flows(folder: Path) -> Path:
    """The monthly example as shipped, and the annual one asking for one figure only
    (COV-018, Aisha Begum's): the whole register gives her 18 annual figures on several
    cards, and this story is about one card, one figure and its receipt."""
    from m365perf.examples import FLOWS_DIR

    monthly = FLOWS_DIR / "monthly-corporate-kpis.yaml"
    (folder / monthly.name).write_text(monthly.read_text(encoding="utf-8"), encoding="utf-8")
    annual = (FLOWS_DIR / "annual-statutory-returns.yaml").read_text(encoding="utf-8")
    wanted = '  filter:\n    Frequency: Annual\n    Active: "Yes"\n'
    assert wanted in annual
    one = annual.replace(wanted, wanted + "    IndicatorId: COV-018\n")
    (folder / "annual-statutory-returns.yaml").write_text(one, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``m365perf demo --json`` running until the module's tests are done."""
    workdir = tmp_path_factory.mktemp("live-demo")
    flows = _two_flows(tmp_path_factory.mktemp("flows"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m365perf",
            "demo",
            "--json",
            "--workdir",
            str(workdir),
            "--flows",
            str(flows),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    first = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("{"):
                first.set()
        first.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert first.wait(START_S), "the demo printed no links in time"
        found = [line for line in lines if line.startswith("{")]
        assert found, "the demo stopped before printing its links:\n" + "".join(lines)
        yield Demo(process, json.loads(found[0]), lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _open(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.errors = errors
    return page


def _item(page: Any, section: str, text: str) -> Any:
    """The newest message in a section ("Teams…" or "Outlook…") whose text has ``text``,
    waited for; the locator stays on that message when its card is redrawn."""
    region = page.get_by_role("region", name=re.compile(f"^{section}"))
    found = region.get_by_role("article").filter(has_text=text)
    found.first.wait_for(timeout=CARD_WAIT_MS)
    newest = found.last if section == "Teams" else found.first
    return page.locator(f"article[data-key='{newest.get_attribute('data-key')}']")


def _status_row(page: Any, *texts: str) -> str:
    """The status page, reloaded: the text of the first table row holding every one of
    ``texts`` ('' when none does)."""
    page.reload()
    rows = page.get_by_role("row")
    for text in texts:
        rows = rows.filter(has_text=text)
    return str(rows.first.inner_text()) if rows.count() else ""


def _signed_in_status(browser: Any, demo: Demo) -> Any:
    """The status page, signed in at the sandbox as one of the performance team."""
    page = browser.new_context().new_page()
    page.goto(demo.links["status"])
    page.wait_for_url(re.compile(r".*/oauth2/v2\.0/authorize.*"))
    page.get_by_role("button", name=re.compile(f"^{demo.links['staff'][0]}")).click()
    page.wait_for_url(demo.links["status"])
    return page


def receipt_indicator(item: Any) -> str:
    """The indicator a one-return receipt names (the bold line under the thanks)."""
    text = str(item.locator(".card").inner_text())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[lines.index(next(x for x in lines if x.startswith("Thank you"))) + 1]


def test_the_demo_prints_an_inbox_link_for_every_officer_and_approver(demo: Demo) -> None:
    links = demo.links
    assert links["cycles"] == ["Annual statutory returns 2025/26", "Monthly corporate KPIs 2026-10"]
    emma = demo.officer("Emma Doyle")
    assert emma["url"].endswith("/_sandbox/inbox/emma.doyle%40contoso.gov.uk")
    assert emma["does"].startswith("1 indicator(s) of Monthly corporate KPIs 2026-10")
    assert emma["first_approvers"], "an officer's link says who approves first"
    for approver in emma["first_approvers"]:
        assert demo.person(approver)["role"] == "approver"
    answer = requests.get(emma["url"], timeout=10)
    assert answer.status_code == 200 and "Inbox of Emma Doyle" in answer.text


def test_an_officer_submits_the_mail_card_and_sees_the_receipt(demo: Demo, browser: Any) -> None:
    """Outlook: the actionable message's Action.Execute goes to the service the same way."""
    aisha = demo.officer("Aisha Begum")
    page = _open(browser, aisha["url"])
    mail = _item(page, "Outlook", ANNUAL)
    card = mail.locator(".card")
    card.get_by_label(re.compile("^Value for 2025/26")).fill("86.1")
    card.get_by_label(re.compile("^Commentary")).fill("Taken from the case system at year end.")
    card.get_by_role("button", name="Submit returns").click()

    receipt = mail.get_by_text("Thank you, Aisha Begum. 1 return was received.")
    receipt.wait_for(timeout=CARD_WAIT_MS)
    assert card.get_by_role("button", name="Submit returns").count() == 0  # the card replaced
    assert "86.1%" in mail.inner_text()
    page.screenshot(path=str(artefact("inbox-officer-receipt-outlook.png")), full_page=True)
    assert page.errors == []


def test_an_approver_rejects_with_a_reason_and_the_officer_sees_it(
    demo: Demo, browser: Any
) -> None:
    emma = demo.officer("Emma Doyle")
    officer = _open(browser, emma["url"])
    request = _item(officer, "Teams", MONTHLY)
    card = request.locator(".card")
    card.get_by_label(re.compile("^Value for 2026-10")).fill("57")
    card.get_by_label(re.compile("^Commentary")).fill("From the October case list.")
    card.get_by_role("button", name="Submit returns").click()
    receipt = request.get_by_text("Thank you, Emma Doyle. 1 return was received.")
    receipt.wait_for(timeout=CARD_WAIT_MS)
    officer.screenshot(path=str(artefact("inbox-officer-receipt-teams.png")), full_page=True)
    indicator = receipt_indicator(request)

    approver_link = demo.person(emma["first_approvers"][0])
    status = _signed_in_status(browser, demo)
    assert approver_link["name"] in _status_row(status, indicator)  # waiting for them
    status.screenshot(path=str(artefact("status-awaiting-approval.png")), full_page=True)
    approver = _open(browser, approver_link["url"])
    digest = _item(approver, "Teams", "Emma Doyle")  # the approval card arrives by itself
    approver.screenshot(path=str(artefact("inbox-approver-digest.png")), full_page=True)
    item = (
        digest.locator(".ac-container")
        .filter(has_text="Emma Doyle")
        .filter(has=approver.get_by_role("button", name="Reject"))
    )
    item.last.get_by_label(re.compile("^Reason, to reject")).fill(REASON)
    item.last.get_by_role("button", name="Reject").click()
    decided = digest.get_by_text(re.compile("rejected and sent back to its owner"))
    decided.wait_for(timeout=CARD_WAIT_MS)
    approver.screenshot(path=str(artefact("inbox-approver-rejected.png")), full_page=True)

    # The officer's page, left open, shows the card sent back with the approver's reason.
    sent_back = _item(officer, "Teams", REASON)
    assert approver_link["name"] in sent_back.inner_text()
    assert sent_back.get_by_role("button", name="Submit returns").count() == 1
    officer.screenshot(path=str(artefact("inbox-officer-sent-back.png")), full_page=True)
    assert "rejected" in _status_row(status, indicator, "Emma Doyle").lower()
    status.screenshot(path=str(artefact("status-after-rejection.png")), full_page=True)
    assert officer.errors == [] and approver.errors == []


def test_the_inbox_page_passes_axe(demo: Demo, browser: Any) -> None:
    teams = _open(browser, demo.officer("Chloe Evans")["url"])
    _item(teams, "Teams", MONTHLY)  # a request card, its inputs drawn by the renderer
    assert_no_serious_violations(teams)
    outlook = _open(browser, demo.officer("Aisha Begum")["url"])
    _item(outlook, "Outlook", ANNUAL)  # the actionable message (its receipt by now)
    assert_no_serious_violations(outlook)


def test_ctrl_c_stops_the_demo_and_its_sandbox(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGINT)
    # It finishes the tick in hand first (up to 30 s on a busy machine), then stops.
    assert demo.process.wait(timeout=120) == 0
    assert "Stopping the rehearsal." in "".join(demo.output)
    with pytest.raises(requests.ConnectionError):
        requests.get(demo.links["sandbox"] + "/_sandbox/health", timeout=5)
