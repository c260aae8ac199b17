"""The sandbox as identity provider: Entra's authorisation-code flow with PKCE, by hand.

Each test plays the relying party with plain requests, so every refusal an app could
meet (wrong verifier, code used twice, another redirect URI, no PKCE) is seen on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests

from m365perf.sandbox.config import DEFAULT_CLIENT_SECRET
from m365perf.sandbox.testing import RunningSandbox

REDIRECT = "http://127.0.0.1:9/signin/callback"


def _challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _authorize(sandbox: RunningSandbox, **params: str) -> requests.Response:
    query = {
        "client_id": sandbox.config.apps[0].client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid profile offline_access",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": _challenge("v" * 43),
        "code_challenge_method": "S256",
        **params,
    }
    return requests.get(
        f"{sandbox.base_url}/{sandbox.config.tenant_id}/oauth2/v2.0/authorize",
        params=query,
        allow_redirects=False,
        timeout=10,
    )


def _code_for(sandbox: RunningSandbox, upn: str, **params: str) -> dict[str, str]:
    """Pick ``upn`` on the account page; the query the sandbox sends back to the app."""
    page = _authorize(sandbox, **params)
    assert page.status_code == 200, page.text
    fields = {
        k: html.unescape(v)
        for k, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", page.text)
    }
    users = dict(
        (html.unescape(mail), value)
        for value, mail in re.findall(
            r"name='user' value='([^']+)'>[^<]*<small>([^<]+)</small>", page.text
        )
    )
    back = requests.post(
        f"{sandbox.base_url}/{sandbox.config.tenant_id}/oauth2/v2.0/authorize",
        data={**fields, "user": users[upn]},
        allow_redirects=False,
        timeout=10,
    )
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def _redeem(sandbox: RunningSandbox, code: str, **form: str) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "client_id": sandbox.config.apps[0].client_id,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": "v" * 43,
        **form,
    }
    return requests.post(
        f"{sandbox.base_url}/{sandbox.config.tenant_id}/oauth2/v2.0/token", data=data, timeout=10
    )


def _claims(sandbox: RunningSandbox, token: str) -> dict[str, Any]:
    keys = requests.get(f"{sandbox.base_url}/discovery/v2.0/keys", timeout=10).json()["keys"]
    key = jwt.PyJWK(keys[0], algorithm="RS256").key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=sandbox.config.apps[0].client_id,
        issuer=sandbox.config.issuer,
    )
    return claims


def test_a_picked_person_gets_a_signed_id_token_with_nonce_and_groups(
    shared_sandbox: RunningSandbox,
) -> None:
    answer = _code_for(shared_sandbox, "nadia.clarke@contoso.gov.uk")
    assert answer["state"] == "s-1"

    tokens = _redeem(shared_sandbox, answer["code"])

    assert tokens.status_code == 200, tokens.text
    claims = _claims(shared_sandbox, tokens.json()["id_token"])
    group = requests.get(f"{shared_sandbox.base_url}/_sandbox/health", timeout=10).json()[
        "performance_team_group_id"
    ]
    assert claims["name"] == "Nadia Clarke"
    assert claims["preferred_username"] == "nadia.clarke@contoso.gov.uk"
    assert claims["nonce"] == "n-1"
    assert claims["tid"] == shared_sandbox.config.tenant_id
    assert claims["groups"] == [group]


def test_the_discovery_document_names_the_sign_in_endpoints(shared_sandbox: RunningSandbox) -> None:
    tenant = shared_sandbox.config.tenant_id
    document = requests.get(
        f"{shared_sandbox.base_url}/{tenant}/v2.0/.well-known/openid-configuration", timeout=10
    ).json()

    assert document["authorization_endpoint"] == (
        f"{shared_sandbox.base_url}/{tenant}/oauth2/v2.0/authorize"
    )
    assert document["issuer"] == shared_sandbox.config.issuer
    assert requests.get(document["jwks_uri"], timeout=10).json()["keys"]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"code_verifier": "w" * 43}, 501481),
        ({"code_verifier": ""}, 501481),
        ({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, 500112),
        ({"client_secret": "wrong"}, 7000215),
    ],
)
def test_a_code_is_refused_without_its_verifier_redirect_uri_or_client(
    shared_sandbox: RunningSandbox, form: dict[str, str], code: int
) -> None:
    answer = _code_for(shared_sandbox, "ben.foster@contoso.gov.uk")

    refused = _redeem(shared_sandbox, answer["code"], **form)

    assert refused.status_code in (400, 401)
    assert refused.json()["error_codes"] == [code]
    assert "id_token" not in refused.json()


def test_a_code_works_once(shared_sandbox: RunningSandbox) -> None:
    answer = _code_for(shared_sandbox, "ben.foster@contoso.gov.uk")
    assert _redeem(shared_sandbox, answer["code"]).status_code == 200

    again = _redeem(shared_sandbox, answer["code"])

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert again.json()["error_codes"] == [54005]
    assert _redeem(shared_sandbox, secrets.token_urlsafe(32)).status_code == 400


def test_a_request_without_pkce_goes_back_as_an_error(shared_sandbox: RunningSandbox) -> None:
    answer = _authorize(shared_sandbox, code_challenge="")

    assert answer.status_code == 302
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert query["error"] == "invalid_request" and query["state"] == "s-1"
    assert "Proof Key for Code Exchange" in query["error_description"]


def test_an_unregistered_redirect_uri_or_app_is_refused_on_the_sandbox_page(
    shared_sandbox: RunningSandbox,
) -> None:
    elsewhere = _authorize(shared_sandbox, redirect_uri="https://evil.example/callback")
    stranger = _authorize(shared_sandbox, client_id="00000000-0000-0000-0000-000000000000")

    assert elsewhere.status_code == 400 and "AADSTS50011" in elsewhere.text
    assert stranger.status_code == 400 and "AADSTS700016" in stranger.text
    assert "location" not in elsewhere.headers  # never sent on to an unknown address


def test_group_members_are_set_through_the_bench(shared_sandbox: RunningSandbox) -> None:
    group = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    put = requests.put(
        f"{shared_sandbox.base_url}/_sandbox/groups/{group}",
        json={"displayName": "Auditors", "members": ["angela.reid@contoso.gov.uk"]},
        timeout=10,
    )
    assert put.status_code == 200
    unknown = requests.put(
        f"{shared_sandbox.base_url}/_sandbox/groups/{group}",
        json={"members": ["nobody@contoso.gov.uk"]},
        timeout=10,
    )

    tokens = _redeem(
        shared_sandbox, _code_for(shared_sandbox, "angela.reid@contoso.gov.uk")["code"]
    )

    assert unknown.status_code == 404
    assert group in _claims(shared_sandbox, tokens.json()["id_token"])["groups"]
