"""Approving on the web in Chromium: the e-mail's link, sign-in at the sandbox, the page.

The sandbox runs as its own process and is the identity provider; the web app runs on a
real port; Chromium follows the redirects, picks the account on the sandbox's page and
presses the page's buttons. The outcome is compared with a card click on the twin return.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from engine_support import card_text
from idp_support import (
    SUPERVISOR,
    IdpCouncil,
)
from link_support import snapshot

from m365perf.store import Return, StepStatus

pytestmark = pytest.mark.browser

WASTE = "Household waste recycled (Chloe Evans)"


def _link(idp: IdpCouncil) -> str:
    """The link in the approval e-mail Marcus was sent (the body's button, and the card's)."""
    (first, *_) = idp.approval_cards(SUPERVISOR)
    assert str(first["link"]).endswith("/approvals/1")
    assert any(a.get("url") == first["link"] for a in first["card"]["actions"])
    return str(first["link"])


def _sign_in(page: Any, name: str) -> None:
    page.wait_for_url(re.compile(r".*/oauth2/v2\.0/authorize.*"))
    page.get_by_role("button", name=re.compile(f"^{name}")).click()
    page.wait_for_load_state()


def _return(idp: IdpCouncil, key: str) -> Return:
    with idp.council.store.transaction() as tx:
        found = tx.find_return(1, key)
    assert found is not None
    return found


def _chain(idp: IdpCouncil, key: str) -> list[tuple[StepStatus, str | None]]:
    return_id = _return(idp, key).id or 0
    with idp.council.store.transaction() as tx:
        return [(s.status, s.decided_by) for s in tx.list_steps(return_id)]


def test_an_approver_signs_in_and_approves_from_the_e_mail_link(
    browser: Any, idp: IdpCouncil, tmp_path: Path
) -> None:
    link = _link(idp)
    context = browser.new_context()
    page = context.new_page()

    page.goto(link)
    _sign_in(page, "Marcus Bennett")

    assert page.url == link
    page.screenshot(path=str(tmp_path / "approvals.png"), full_page=True)
    text = page.inner_text("main")
    assert "Signed in as Marcus Bennett" in text
    assert "Approvals waiting: Monthly corporate KPIs, 2026-10" in text
    assert "Value: 46.5% (" in text and "Commentary:" in text
    page.get_by_role("region", name=WASTE).get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    notice = page.get_by_role("status").inner_text()
    assert page.get_by_role("region", name=WASTE).count() == 0

    # The same decision by a click on the digest card, for the twin return, lands the same.
    twin = _return(idp, "CP002").id or 0
    data = idp.digest_action(SUPERVISOR, "digestApprove", twin)
    clicked = card_text(idp.council.act(idp.caller(SUPERVISOR), "digestApprove", data))
    assert notice == "Household waste recycled: approved."
    assert "Days to process new benefit claims: approved." in clicked
    assert _chain(idp, "CP001") == _chain(idp, "CP002")
    assert _chain(idp, "CP001")[0] == (StepStatus.APPROVED, idp.caller(SUPERVISOR).user_id)
    assert _return(idp, "CP001").status == _return(idp, "CP002").status
    context.close()


def test_without_sign_in_or_as_the_wrong_person_the_page_refuses_and_changes_nothing(
    browser: Any, idp: IdpCouncil
) -> None:
    link = _link(idp)
    marcus = browser.new_context()
    page = marcus.new_page()
    page.goto(link)
    _sign_in(page, "Marcus Bennett")
    approve = page.get_by_role("region", name=WASTE).locator("form").first
    fields = {
        el.get_attribute("name"): el.get_attribute("value")
        for el in approve.locator("input[type=hidden]").all()
    }
    before = snapshot(idp.council)

    anonymous = browser.new_context()
    stranger = anonymous.new_page()
    stranger.goto(link)  # sent to sign in, not shown the page
    assert "/oauth2/v2.0/authorize" in stranger.url
    assert "Household waste" not in stranger.content()
    posted = anonymous.request.post(link, form=fields, max_redirects=0)
    assert posted.status == 401

    yusuf = browser.new_context()
    wrong = yusuf.new_page()
    wrong.goto(link)
    _sign_in(wrong, "Yusuf Ali")
    assert "Nothing is waiting for your approval here." in wrong.inner_text("main")
    assert wrong.get_by_role("button", name="Approve").count() == 0
    token = wrong.locator("input[name=csrf]").first.get_attribute("value")
    replay = yusuf.request.post(link, form={**fields, "csrf": token})
    assert "not one of its approvers" in replay.text()

    assert snapshot(idp.council) == before
    assert _chain(idp, "CP001")[0] == (StepStatus.ASKED, None)  # still waiting for Marcus
    for context in (marcus, anonymous, yusuf):
        context.close()


def test_status_refuses_an_anonymous_visitor(browser: Any, idp: IdpCouncil) -> None:
    context = browser.new_context()
    page = context.new_page()

    page.goto(f"{idp.base_url}/status")

    assert "/oauth2/v2.0/authorize" in page.url  # sent to sign in
    assert context.request.get(f"{idp.base_url}/status.json").status == 401
    _sign_in(page, "Nadia Clarke")
    assert "Monthly corporate KPIs: 2026-10" in page.inner_text("main")
    context.close()
