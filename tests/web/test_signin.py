"""The OpenID Connect pieces on their own: ID token checks, state, sealed cookies, paths.

The keys are made here and published through an in-memory discovery document, so every
check runs exactly as against Entra, only with our own key.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from signin_support import offline_signin

from m365perf.m365.auth import ClientCredential, login_authority
from m365perf.web.signin import (
    BadIdToken,
    BadState,
    CookieSessions,
    EntraSignIn,
    IdTokenValidator,
    WebSession,
    is_local_http,
    local_path,
    nonce_hash,
)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "3c1e2f4a-9b8d-4e7f-a6c5-1d2e3f4a5b6c"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
JWKS = f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
NONCE = "the-nonce-this-browser-sent"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Tenant:
    """Plays the tenant's discovery document and JWKS; counts key fetches."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update(kid="key-1", use="sig")
        self.keys = [jwk]
        self.fetches = 0

    def discovery(self) -> dict[str, Any]:
        return {"issuer": ISSUER, "jwks_uri": JWKS}

    def fetch(self, url: str) -> dict[str, Any]:
        assert url == JWKS
        self.fetches += 1
        return {"keys": self.keys}


def _validator(tenant: Tenant) -> IdTokenValidator:
    return IdTokenValidator(
        client_id=CLIENT, tenant_id=TENANT, discovery=tenant.discovery, fetch_json=tenant.fetch
    )


def _token(key: rsa.RSAPrivateKey, kid: str = "key-1", **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "tid": TENANT,
        "oid": "11111111-0000-0000-0000-000000000002",
        "sub": "pairwise-subject",
        "name": "Bob Ray",
        "preferred_username": "bob.ray@contoso.gov.uk",
        "nonce": nonce_hash(NONCE),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_a_token_from_our_tenant_for_us_and_this_sign_in_is_accepted(
    key: rsa.RSAPrivateKey,
) -> None:
    claims = _validator(Tenant(key)).validate(_token(key), nonce=NONCE)

    assert claims["oid"] == "11111111-0000-0000-0000-000000000002"
    assert claims["name"] == "Bob Ray"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "another-app"}, "another application"),
        ({"iss": "https://login.microsoftonline.com/another/v2.0"}, "another issuer"),
        ({"iss": "https://sts.windows.net/" + TENANT + "/"}, "another issuer"),
        ({"tid": "0e0b7f6a-0000-4000-8000-000000000000"}, "another tenant"),
        ({"nonce": nonce_hash("someone-else's-sign-in")}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200}, "expired"),
        ({"oid": None}, "names no user"),
    ],
)
def test_a_token_that_is_not_ours_is_refused(
    key: rsa.RSAPrivateKey, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(BadIdToken) as refused:
        _validator(Tenant(key)).validate(_token(key, **changes), nonce=NONCE)

    assert reason in refused.value.reason


def test_a_token_signed_with_another_key_under_our_key_id_is_refused(
    key: rsa.RSAPrivateKey,
) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(BadIdToken, match="signature"):
        _validator(Tenant(key)).validate(_token(forger), nonce=NONCE)


def test_an_unknown_key_is_looked_up_once_then_refused(key: rsa.RSAPrivateKey) -> None:
    tenant = Tenant(key)
    validator = _validator(tenant)
    validator.validate(_token(key), nonce=NONCE)

    with pytest.raises(BadIdToken, match="does not publish"):
        validator.validate(_token(key, kid="key-2"), nonce=NONCE)
    with pytest.raises(BadIdToken):
        validator.validate(_token(key, kid="key-3"), nonce=NONCE)

    assert tenant.fetches == 1  # not refetched for every unknown key id


def test_an_unsigned_token_is_refused(key: rsa.RSAPrivateKey) -> None:
    unsigned = jwt.encode({"iss": ISSUER, "aud": CLIENT}, None, algorithm="none")

    with pytest.raises(BadIdToken, match="not RS256"):
        _validator(Tenant(key)).validate(unsigned, nonce=NONCE)


def test_an_answer_with_another_state_is_refused_before_any_token_request() -> None:
    entra = EntraSignIn(
        credential=ClientCredential(CLIENT, secret="unused"),
        tenant_id=TENANT,
        login=login_authority("https://login.microsoftonline.com", TENANT),
        redirect_uri="https://performance.contoso.gov.uk/signin/callback",
        app_factory=_no_msal,
    )
    flow = {"state": "state-we-sent", "nonce": NONCE, "code_verifier": "v" * 43}

    with pytest.raises(BadState):
        entra.finish(flow, {"state": "another-state", "code": "stolen-code"})
    with pytest.raises(BadState):
        entra.finish({**flow, "state": ""}, {"state": "", "code": "stolen-code"})


def _no_msal(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("MSAL must not be reached for a refused answer")


def _session(expires: float) -> WebSession:
    return WebSession("oid-1", "Bob Ray", "bob.ray@contoso.gov.uk", ("g1",), "csrf-1", expires)


def test_a_sealed_session_reads_back_and_hides_what_it_holds() -> None:
    sessions = CookieSessions("k" * 40)
    session = _session(time.time() + 60)
    sealed = sessions.seal_session(session)

    assert sessions.session(sealed, max_age_s=3600) == session
    assert "Bob" not in sealed and "csrf-1" not in sealed and "oid-1" not in sealed


def test_a_session_sealed_with_another_key_expired_or_altered_reads_as_nobody() -> None:
    sessions = CookieSessions("k" * 40)
    good = sessions.seal_session(_session(time.time() + 60))

    assert CookieSessions("x" * 40).session(good, max_age_s=3600) is None
    assert sessions.session(good[:-6] + "AAAAAA", max_age_s=3600) is None
    assert (
        sessions.session(sessions.seal_session(_session(time.time() - 1)), max_age_s=3600) is None
    )
    old = CookieSessions("k" * 40, now=lambda: time.time() - 7200)
    assert sessions.session(old.seal_session(_session(time.time() + 60)), max_age_s=3600) is None
    assert sessions.session("", max_age_s=3600) is None


@pytest.mark.parametrize(
    ("asked", "went"),
    [
        ("/approvals/3", "/approvals/3"),
        ("/status", "/status"),
        ("//evil.example/approvals", "/approvals"),
        ("https://evil.example/", "/approvals"),
        ("/\\evil.example", "/approvals"),
        (None, "/approvals"),
    ],
)
def test_after_sign_in_only_a_path_on_this_site_is_followed(asked: str | None, went: str) -> None:
    assert local_path(asked) == went


def test_cookies_are_secure_except_for_plain_http_on_the_loopback_interface() -> None:
    from fastapi.responses import Response

    for base, secure in (
        ("https://performance.contoso.gov.uk", True),
        ("http://performance.contoso.gov.uk", True),
        ("http://127.0.0.1:8080", False),
        ("http://localhost:8080", False),
    ):
        response = Response()
        offline_signin(base).set_cookie(response, "m365perf_session", "v", 60, "/")
        header = response.headers["set-cookie"]
        assert ("Secure" in header) is secure, (base, header)
        assert "HttpOnly" in header and "SameSite=lax" in header
    assert is_local_http("http://127.0.0.1:8080") and not is_local_http("https://127.0.0.1")
