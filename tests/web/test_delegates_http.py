"""Naming a delegate on the approvals page, over HTTP, signed in at the sandbox's IdP.

The page acts through the engine's delegation calls (as ``m365perf delegate`` does), for
the signed-in person only; the engine's refusals are shown and change nothing.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import requests
from idp_support import (
    HEAD,
    OTHER_OWNER,
    SUPERVISOR,
    IdpCouncil,
    csrf_of,
    sign_in,
)

from m365perf.engine.context import local_day
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import AuditEvent, Delegation


def _form(text: str, action: str) -> dict[str, str]:
    """The hidden fields of the first form posting to ``action``, as drawn."""
    for form in re.findall(rf'<form method="post" action="{action}">(.*?)</form>', text, re.S):
        return {
            k: html.unescape(v)
            for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)
        }
    raise AssertionError(f"no form posting to {action} on the page")


def _stored(idp: IdpCouncil) -> tuple[list[Delegation], list[AuditEvent]]:
    with idp.council.store.transaction() as tx:
        return (
            tx.list_delegations(include_ended=True),
            tx.list_audit(subject_type=SubjectType.DELEGATION),
        )


def _days(idp: IdpCouncil, first: int, last: int) -> dict[str, str]:
    today = local_day(idp.council.now)
    return {
        "starts_on": (today + timedelta(days=first)).isoformat(),
        "ends_on": (today + timedelta(days=last)).isoformat(),
    }


def test_an_approver_names_a_delegate_sees_it_listed_and_ends_it(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, f"{idp.base_url}/approvals", SUPERVISOR)
    assert "Away? Name a delegate" in page.text
    assert "Nobody is named to approve for you." in page.text
    days = _days(idp, 1, 7)
    fields = {**_form(page.text, "/approvals/delegates/add"), "delegate": HEAD, **days}
    fields["flow_id"] = "monthly-corporate-kpis"

    added = http.post(f"{idp.base_url}/approvals/delegates/add", data=fields, timeout=20)

    assert added.status_code == 200
    assert (
        f"Angela Reid will approve for you from {days['starts_on']} to {days['ends_on']}."
        in added.text
    )
    assert (
        f"Angela Reid ({HEAD}) approves for you from {days['starts_on']} to "
        f"{days['ends_on']}, Monthly corporate KPIs." in added.text
    )
    (row,), (audit,) = _stored(idp)
    marcus, angela = idp.caller(SUPERVISOR).user_id, idp.caller(HEAD).user_id
    assert (row.approver_id, row.delegate_id, row.created_by) == (marcus, angela, marcus)
    assert row.flow_id == "monthly-corporate-kpis"
    assert (audit.action, audit.actor) == (AuditAction.DELEGATION_ADDED, marcus)
    listed = http.get(f"{idp.base_url}/approvals", timeout=20)
    assert f"End delegation {row.id}" in listed.text

    end = _form(listed.text, "/approvals/delegates/end")
    ended = http.post(f"{idp.base_url}/approvals/delegates/end", data=end, timeout=20)

    assert ended.status_code == 200
    assert f"Delegation {row.id} ended" in ended.text
    assert "Nobody is named to approve for you." in ended.text
    (row,), (_, audit) = _stored(idp)
    assert row.ended_at is not None
    assert (audit.action, audit.actor) == (AuditAction.DELEGATION_ENDED, marcus)


def test_a_bad_delegate_shows_the_engines_message_and_stores_nothing(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, f"{idp.base_url}/approvals", SUPERVISOR)
    fields = {**_form(page.text, "/approvals/delegates/add"), **_days(idp, 1, 7)}
    url = f"{idp.base_url}/approvals/delegates/add"

    unknown = http.post(url, data={**fields, "delegate": "nobody@contoso.gov.uk"}, timeout=20)
    himself = http.post(url, data={**fields, "delegate": SUPERVISOR}, timeout=20)
    backwards = http.post(url, data={**fields, **_days(idp, 7, 1), "delegate": HEAD}, timeout=20)

    assert unknown.status_code == 404
    assert "is not in the directory" in html.unescape(unknown.text)
    assert himself.status_code == 400
    assert "Marcus Bennett cannot be their own delegate" in himself.text
    assert backwards.status_code == 400
    assert "before it starts" in backwards.text
    assert "Nobody is named to approve for you." in himself.text
    assert _stored(idp) == ([], [])


def test_the_person_recorded_is_the_signed_in_one_never_a_form_field(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, f"{idp.base_url}/approvals", OTHER_OWNER)
    fields = {**_form(page.text, "/approvals/delegates/add"), **_days(idp, 1, 3)}
    fields.update(delegate=HEAD, approver=SUPERVISOR, by=SUPERVISOR)

    http.post(f"{idp.base_url}/approvals/delegates/add", data=fields, timeout=20)

    (row,), _ = _stored(idp)
    yusuf = idp.caller(OTHER_OWNER).user_id
    assert (row.approver_id, row.created_by) == (yusuf, yusuf)


def test_without_the_csrf_token_or_sign_in_nothing_is_named(idp: IdpCouncil) -> None:
    http = requests.Session()
    page = sign_in(http, f"{idp.base_url}/approvals", SUPERVISOR)
    fields = {**_form(page.text, "/approvals/delegates/add"), "delegate": HEAD}
    fields.update(_days(idp, 1, 7))
    url = f"{idp.base_url}/approvals/delegates/add"

    missing = http.post(url, data={k: v for k, v in fields.items() if k != "csrf"}, timeout=20)
    guessed = http.post(url, data={**fields, "csrf": "guessed"}, timeout=20)
    anonymous = requests.post(url, data=fields, timeout=20, allow_redirects=False)
    end = requests.post(
        f"{idp.base_url}/approvals/delegates/end",
        data={"csrf": csrf_of(page.text), "delegation_id": "1"},
        timeout=20,
        allow_redirects=False,
    )

    assert [missing.status_code, guessed.status_code] == [403, 403]
    assert "no delegate was named" in missing.text
    assert [anonymous.status_code, end.status_code] == [401, 401]
    assert "You are not signed in" in anonymous.text
    assert _stored(idp) == ([], [])
