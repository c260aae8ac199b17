"""Web sign-in for tests that need someone signed in but not the identity provider.

The session cookie is sealed with the test's own key exactly as the callback seals it
after a proven ID token; the sign-in itself is tested against the sandbox
(tests/web/test_signin_http.py, tests/browser/test_approvals_browser.py).
"""

from __future__ import annotations

import secrets
import time

from m365perf.m365.auth import ClientCredential, login_authority
from m365perf.web.signin import SESSION_COOKIE, CookieSessions, EntraSignIn, SignIn, WebSession

SESSION_KEY = "a-test-key-for-web-sign-in-cookies-0123456789"
STAFF_GROUP = "5d3f1c2a-8b7e-4a6d-9c0f-1e2d3c4b5a69"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def offline_signin(base_url: str = "http://127.0.0.1:8080") -> SignIn:
    """A SignIn whose identity provider is never reached (sessions are made directly)."""
    entra = EntraSignIn(
        credential=ClientCredential("00000000-0000-0000-0000-0000000000aa", secret="unused"),
        tenant_id=TENANT,
        login=login_authority("https://login.microsoftonline.com", TENANT),
        redirect_uri=base_url + "/signin/callback",
    )
    return SignIn(
        entra=entra,
        sessions=CookieSessions(SESSION_KEY),
        base_url=base_url,
        staff_groups=frozenset({STAFF_GROUP}),
    )


def session_cookie(
    signin: SignIn, user_id: str, name: str, groups: tuple[str, ...] = ()
) -> tuple[str, WebSession]:
    """(cookie name, session) for ``user_id`` signed in now; set the sealed value yourself."""
    session = WebSession(
        user_id=user_id,
        name=name,
        username=f"{name.lower().replace(' ', '.')}@contoso.gov.uk",
        groups=groups,
        csrf=secrets.token_urlsafe(16),
        expires=time.time() + 3600,
    )
    return SESSION_COOKIE, session


def sealed(signin: SignIn, session: WebSession) -> str:
    return signin.sessions.seal_session(session)
