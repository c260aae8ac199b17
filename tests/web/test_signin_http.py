"""Sign-in over HTTP: the real web app on a port, the real sandbox as identity provider.

Every request goes through ``requests`` as a browser's would: redirects, the sandbox's
account picker, the callback, the session cookie.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from engine_support import card_text
from idp_support import (
    NADIA,
    OTHER_OWNER,
    OWNER,
    SUPERVISOR,
    IdpCouncil,
    csrf_of,
    free_port,
    make_idp_council,
    page_form,
    pick,
    serving,
    sign_in,
)
from link_support import snapshot

from m365perf.cards import validate_card
from m365perf.engine.digest import read_digest
from m365perf.sandbox.testing import RunningSandbox
from m365perf.store import ApprovalStep, Return, StepStatus


def _approvals_link(idp: IdpCouncil, email: str = SUPERVISOR) -> str:
    """The link in ``email``'s approval e-mail: in its body and on its card."""
    (first, *_) = idp.approval_cards(email)
    link = str(first["link"])
    assert link == f"{idp.base_url}/approvals/1"  # the e-mail body's button
    assert {"type": "Action.OpenUrl", "title": "Open in your browser", "url": link} in first[
        "card"
    ]["actions"]
    validate_card(first["card"])  # Adaptive Cards 1.5, with the link
    return link


def test_an_approver_signs_in_from_the_e_mail_link_and_sees_what_waits(idp: IdpCouncil) -> None:
    http = requests.Session()
    link = _approvals_link(idp)

    page = sign_in(http, link, SUPERVISOR)

    assert page.status_code == 200
    assert page.url == link
    assert "Signed in as Marcus Bennett" in page.text
    assert "Household waste recycled (Chloe Evans)" in page.text
    assert "Days to process new benefit claims (Chloe Evans)" in page.text
    assert page.text.count(">Approve</button>") == 2
    cookie = next(c for c in http.cookies if c.name == "m365perf_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "lax"
    assert not cookie.secure  # plain http on 127.0.0.1 only: the sandbox rehearsal
    assert "Marcus" not in (cookie.value or "")  # sealed: nothing readable in it


def test_approving_on_the_page_moves_the_return_on_as_a_card_click_does(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, _approvals_link(idp), SUPERVISOR)
    waste, claims = _returns(idp, "CP001"), _returns(idp, "CP002")

    answer = http.post(page.url, data=page_form(page.text, "approve", str(waste.id)), timeout=20)
    data = idp.digest_action(SUPERVISOR, "digestApprove", claims.id or 0)
    clicked = idp.council.act(idp.caller(SUPERVISOR), "digestApprove", data)

    assert answer.status_code == 200
    assert "Household waste recycled: approved." in answer.text
    assert "Household waste recycled (Chloe Evans)" not in answer.text
    assert "Days to process new benefit claims: approved." in card_text(clicked)
    by_page, by_card = _chain(idp, waste.id or 0), _chain(idp, claims.id or 0)
    assert by_page == by_card  # the same steps decided, skipped and now waiting
    assert by_page[0] == (StepStatus.APPROVED, idp.caller(SUPERVISOR).user_id)
    assert _returns(idp, "CP001").status == _returns(idp, "CP002").status


def _returns(idp: IdpCouncil, key: str) -> Return:
    with idp.council.store.transaction() as tx:
        found = tx.find_return(1, key)
    assert found is not None
    return found


def _chain_steps(idp: IdpCouncil, return_id: int) -> list[ApprovalStep]:
    with idp.council.store.transaction() as tx:
        return tx.list_steps(return_id)


def _chain(idp: IdpCouncil, return_id: int) -> list[tuple[StepStatus, str | None]]:
    with idp.council.store.transaction() as tx:
        return [(s.status, s.decided_by) for s in tx.list_steps(return_id)]


def test_approve_all_without_flags_decides_each_through_the_engine(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, _approvals_link(idp), SUPERVISOR)

    answer = http.post(page.url, data=page_form(page.text, "approve_unflagged"), timeout=20)

    assert "2 items approved." in answer.text
    assert "Nothing is waiting for your approval here." in answer.text
    nadia = idp.caller(NADIA).user_id  # the performance team is asked next
    assert len(read_digest(idp.council.store, idp.council.engine.ctx, 1, nadia).items) == 2


def test_rejecting_needs_a_reason_and_then_sends_the_return_back(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, _approvals_link(idp), SUPERVISOR)
    form = page_form(page.text, "reject", None)
    before = snapshot(idp.council)

    empty = http.post(page.url, data={**form, "reason": ""}, timeout=20)

    assert "Give a reason for rejecting" in empty.text
    assert snapshot(idp.council)[0] == before[0]
    sent_back = http.post(page.url, data={**form, "reason": "Check the tonnage"}, timeout=20)
    assert "rejected and sent back to its owner" in sent_back.text
    (first, *_) = _chain_steps(idp, int(form["return_id"]))
    assert (first.status, first.reason) == (StepStatus.REJECTED, "Check the tonnage")


def test_without_sign_in_the_page_refuses_and_changes_nothing(idp: IdpCouncil) -> None:
    link = _approvals_link(idp)
    signed_in = requests.Session()
    form = page_form(sign_in(signed_in, link, SUPERVISOR).text, "approve", None)
    before = snapshot(idp.council)

    anonymous = requests.post(link, data=form, timeout=20, allow_redirects=False)
    opened = requests.get(link, timeout=20, allow_redirects=False)

    assert anonymous.status_code == 401
    assert "nothing was approved" in anonymous.text
    assert opened.status_code == 302
    assert opened.headers["location"] == "/signin?" + urlencode({"next": "/approvals/1"})
    assert snapshot(idp.council) == before


def test_signed_in_as_the_wrong_person_the_page_refuses_and_changes_nothing(
    idp: IdpCouncil,
) -> None:
    link = _approvals_link(idp)
    marcus = requests.Session()
    form = page_form(sign_in(marcus, link, SUPERVISOR).text, "approve", None)
    yusuf = requests.Session()
    page = sign_in(yusuf, link, OTHER_OWNER)
    before = snapshot(idp.council)

    # Nothing waits for Yusuf; he replays Marcus's form with his own session's CSRF token.
    assert "Nothing is waiting for your approval here." in page.text
    answer = yusuf.post(link, data={**form, "csrf": csrf_of(page.text)}, timeout=20)

    assert answer.status_code == 200
    assert "not one of its approvers" in answer.text
    assert snapshot(idp.council) == before


def test_the_owner_cannot_approve_their_own_return(idp: IdpCouncil) -> None:
    link = _approvals_link(idp)
    form = page_form(sign_in(requests.Session(), link, SUPERVISOR).text, "approve", None)
    chloe = requests.Session()
    page = sign_in(chloe, link, OWNER)
    before = snapshot(idp.council)

    answer = chloe.post(link, data={**form, "csrf": csrf_of(page.text)}, timeout=20)

    assert "Nothing is waiting for your approval here." in page.text
    assert "your own return" in answer.text or "not one of its approvers" in answer.text
    assert snapshot(idp.council) == before


def test_a_post_without_the_session_csrf_token_changes_nothing(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, _approvals_link(idp), SUPERVISOR)
    form = page_form(page.text, "approve", None)
    before = snapshot(idp.council)

    missing = http.post(page.url, data={k: v for k, v in form.items() if k != "csrf"}, timeout=20)
    other = http.post(page.url, data={**form, "csrf": "guessed"}, timeout=20)
    cross_site = http.post(
        page.url, data=form, headers={"Origin": "https://evil.example"}, timeout=20
    )

    assert [missing.status_code, other.status_code, cross_site.status_code] == [403, 403, 403]
    assert snapshot(idp.council) == before


def test_a_tampered_state_signs_nobody_in(idp: IdpCouncil) -> None:
    http = requests.Session()
    start = http.get(f"{idp.base_url}/signin", timeout=20, allow_redirects=False)
    authorize = start.headers["location"]
    picker = http.get(authorize, timeout=20)
    back = pick(http, picker, SUPERVISOR, follow=False).headers["location"]
    query = dict(parse_qsl(urlsplit(back).query))
    query["state"] = "not-the-state-we-sent"

    answer = http.get(f"{idp.base_url}/signin/callback?{urlencode(query)}", timeout=20)

    assert answer.status_code == 400
    assert "you are not signed in" in answer.text
    assert "m365perf_session" not in http.cookies
    assert http.get(f"{idp.base_url}/approvals", allow_redirects=False).status_code == 302


def test_a_callback_from_another_browser_signs_nobody_in(idp: IdpCouncil) -> None:
    victim = requests.Session()
    start = victim.get(f"{idp.base_url}/signin", timeout=20, allow_redirects=False)
    picker = victim.get(start.headers["location"], timeout=20)
    back = pick(victim, picker, SUPERVISOR, follow=False).headers["location"]
    attacker = requests.Session()

    answer = attacker.get(back, timeout=20)

    assert answer.status_code == 400
    assert "m365perf_session" not in attacker.cookies


def test_status_refuses_an_anonymous_visitor_and_opens_for_the_performance_team(
    idp: IdpCouncil,
) -> None:
    status = f"{idp.base_url}/status"
    assert requests.get(status + ".json", timeout=20).status_code == 401
    assert requests.get(status, timeout=20, allow_redirects=False).status_code == 302
    marcus = requests.Session()
    refused = sign_in(marcus, status, SUPERVISOR)
    nadia = requests.Session()
    opened = sign_in(nadia, status, NADIA)

    assert refused.status_code == 403
    assert opened.status_code == 200
    assert "Monthly corporate KPIs: 2026-10" in opened.text
    assert nadia.get(status + ".json", timeout=20).json()["cycles"]


def test_signing_out_ends_the_session(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, _approvals_link(idp), SUPERVISOR)

    out = http.post(f"{idp.base_url}/signout", data={"csrf": csrf_of(page.text)}, timeout=20)

    assert "You are signed out" in out.text
    assert http.get(page.url, timeout=20, allow_redirects=False).status_code == 302


def test_a_per_item_approval_card_links_to_the_same_page(idp_sandbox: RunningSandbox) -> None:
    port = free_port()
    council = make_idp_council(idp_sandbox, f"http://127.0.0.1:{port}", cards="per_item")
    council.submit()
    with serving(council, port):
        cards = council.approval_cards(SUPERVISOR)
        assert len(cards) == 2 and all(str(c["card_id"]).startswith("approval-") for c in cards)
        link = _approvals_link(council)
        http = requests.Session()
        page = sign_in(http, link, SUPERVISOR)
        answer = http.post(link, data=page_form(page.text, "approve_unflagged"), timeout=20)

    assert "2 items approved." in answer.text


def test_the_public_listener_serves_no_staff_page(idp_sandbox: RunningSandbox) -> None:
    port = free_port()
    council = make_idp_council(idp_sandbox, f"http://127.0.0.1:{port}")
    with serving(council, port, part="public"):
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/health", timeout=20).status_code == 200
        for path in ("/status", "/status.json", "/approvals/1", "/signin"):
            assert requests.get(base + path, timeout=20).status_code == 404, path


def test_the_overview_lists_each_cycle_with_something_waiting(idp: IdpCouncil) -> None:
    http = requests.Session()

    page = sign_in(http, f"{idp.base_url}/approvals", SUPERVISOR)

    assert page.url == f"{idp.base_url}/approvals"
    assert '<a href="/approvals/1">Monthly corporate KPIs 2026-10: 2 items waiting</a>' in page.text


def test_a_refusal_from_the_identity_provider_signs_nobody_in(idp: IdpCouncil) -> None:
    http = requests.Session()
    start = http.get(f"{idp.base_url}/signin", timeout=20, allow_redirects=False)
    state = dict(parse_qsl(urlsplit(start.headers["location"]).query))["state"]
    query = {"error": "access_denied", "error_description": "AADSTS65004", "state": state}

    answer = http.get(f"{idp.base_url}/signin/callback?{urlencode(query)}", timeout=20)

    assert answer.status_code == 400
    assert "Sign-in failed" in answer.text
    assert "m365perf_session" not in http.cookies
