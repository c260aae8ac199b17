"""Sign-in on the web with Entra ID: OpenID Connect authorisation code with PKCE.

MSAL's confidential client makes the sign-in request (PKCE ``S256``, ``state``, a hashed
``nonce``) and redeems the code; MSAL no longer validates the ID token, so
:class:`IdTokenValidator` does, as OpenID Connect Core §3.1.3.7 asks: the signature
against the tenant's published keys (JWKS from the discovery document), ``iss`` equal
to the discovery document's issuer, ``aud`` the app's client id, ``tid`` the tenant,
``exp``/``nbf``/``iat`` (two minutes' leeway) and ``nonce`` the one this browser's
sign-in sent. In sandbox mode the sandbox is the identity provider; nothing here knows.

Sessions are cookies encrypted and signed with a key derived from the
``session_secret`` setting (Fernet: AES-128-CBC and HMAC-SHA256), so they hold nothing
readable, and several service processes share them. The pending sign-in (MSAL's flow
with the PKCE verifier) is a second such cookie that lives ten minutes. Cookies are
``HttpOnly``, ``SameSite=Lax`` and ``Secure``, except when the public address is plain
http on the loopback interface (the sandbox rehearsal). Each session carries a random
CSRF token that every state-changing form must send back (a synchroniser token), and a
POST whose ``Origin`` is another site is refused as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import msal
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from m365perf.errors import M365PerfError
from m365perf.flows.model import Flow
from m365perf.m365.auth import ClientCredential, LoginAuthority, login_authority
from m365perf.m365.factory import credential_from_settings
from m365perf.settings import Settings
from m365perf.web.return_pages import render_problem

__all__ = [
    "BadIdToken",
    "BadState",
    "CookieSessions",
    "EntraSignIn",
    "IdTokenValidator",
    "SignIn",
    "SignInError",
    "WebSession",
    "add_signin",
    "is_local_http",
    "local_path",
    "nonce_hash",
    "read_form",
    "signin_from_settings",
    "staff_groups",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "m365perf_session"
PENDING_COOKIE = "m365perf_signin"
CALLBACK_PATH = "/signin/callback"
PENDING_LIFETIME_S = 600
DEFAULT_SESSION_HOURS = 8
LEEWAY_S = 120
KEY_REFETCH_S = 300
KEY_CACHE_S = 24 * 3600
_FRESH = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


class SignInError(M365PerfError):
    """A sign-in that proves nobody; ``reason`` says why (for the log, not the page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadState(SignInError):
    """The answer does not belong to the sign-in this browser started."""


class BadIdToken(SignInError):
    """The ID token is not from our tenant, not for us, not for this sign-in, or stale."""


# --------------------------------------------------------------------------- ID token


def nonce_hash(nonce: str) -> str:
    """What MSAL puts on the wire for ``nonce`` (and the IdP echoes in the ID token)."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


class IdTokenValidator:
    """Checks an ID token against the tenant's discovery document and signing keys."""

    def __init__(
        self,
        *,
        client_id: str,
        tenant_id: str,
        discovery: Callable[[], Mapping[str, Any]],
        fetch_json: Callable[[str], Any],
        now: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id
        self._tenant_id = tenant_id.lower()
        self._discovery = discovery
        self._fetch = fetch_json
        self._now = now
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def validate(self, token: str, *, nonce: str) -> dict[str, Any]:
        """The proven claims of ``token``; :class:`BadIdToken` when any check fails."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise BadIdToken("the ID token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise BadIdToken(f"the ID token is signed with {header.get('alg')!r}, not RS256")
        document = self._discovery()
        issuer = str(document.get("issuer", ""))
        if self._tenant_id not in issuer.lower():
            raise BadIdToken(f"the discovery document's issuer {issuer!r} is not our tenant's")
        key = self._key(str(header.get("kid", "")), str(document.get("jwks_uri", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise BadIdToken("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise BadIdToken("the ID token is for another application") from None
        except jwt.InvalidIssuerError:
            raise BadIdToken("the ID token is from another issuer") from None
        except jwt.InvalidSignatureError:
            raise BadIdToken("the ID token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise BadIdToken(f"the ID token is not valid: {exc}") from None
        if str(claims.get("tid", "")).lower() != self._tenant_id:
            raise BadIdToken("the ID token is from another tenant")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce_hash(nonce)):
            raise BadIdToken("the ID token's nonce is not this sign-in's")
        if not isinstance(claims.get("oid"), str) or not claims["oid"]:
            raise BadIdToken("the ID token names no user (oid)")
        return claims

    def _key(self, kid: str, jwks_uri: str) -> Any:
        with self._lock:
            now = self._now()
            stale = self._fetched_at is None or now - self._fetched_at > KEY_CACHE_S
            may_refetch = self._fetched_at is None or now - self._fetched_at > KEY_REFETCH_S
            if stale or (kid not in self._keys and may_refetch):
                self._load(jwks_uri, now)
            if kid not in self._keys:
                raise BadIdToken("the ID token is signed with a key the tenant does not publish")
            return self._keys[kid]

    def _load(self, jwks_uri: str, now: float) -> None:
        if not jwks_uri:
            raise BadIdToken("the discovery document names no jwks_uri")
        try:
            document = self._fetch(jwks_uri)
            keys = {}
            for jwk in document.get("keys", []):
                if jwk.get("kty") == "RSA" and jwk.get("kid"):
                    keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm="RS256").key
        except Exception as exc:  # any failure to read the keys: nobody is signed in
            raise BadIdToken(f"cannot read the tenant's signing keys: {exc}") from None
        self._keys, self._fetched_at = keys, now


# --------------------------------------------------------------------------- MSAL


class EntraSignIn:
    """Starts a sign-in and finishes it, through MSAL's confidential client."""

    def __init__(
        self,
        *,
        credential: ClientCredential,
        tenant_id: str,
        login: LoginAuthority,
        redirect_uri: str,
        now: Callable[[], float] = time.time,
        app_factory: Callable[..., Any] | None = None,
    ) -> None:
        self._credential = credential
        self._login = login
        self._redirect_uri = redirect_uri
        self._factory = app_factory or msal.ConfidentialClientApplication
        self._app: Any = None
        self._document: Mapping[str, Any] | None = None
        self._lock = threading.Lock()
        self.validator = IdTokenValidator(
            client_id=credential.client_id,
            tenant_id=tenant_id,
            discovery=self._discovery,
            fetch_json=login.get_json,
            now=now,
        )

    def _msal(self) -> Any:
        with self._lock:
            if self._app is None:
                self._app = self._factory(
                    self._credential.client_id,
                    client_credential=self._credential._msal_form(),
                    **self._login.msal_options(),
                )
            return self._app

    def _discovery(self) -> Mapping[str, Any]:
        if self._document is None:
            url = f"{self._login.authority}/v2.0/.well-known/openid-configuration"
            self._document = dict(self._login.get_json(url))
        return self._document

    def begin(self, *, login_hint: str | None = None) -> dict[str, Any]:
        """MSAL's auth-code flow; ``auth_uri`` is where to send the browser."""
        options: dict[str, Any] = {"redirect_uri": self._redirect_uri, "response_mode": "query"}
        if login_hint:
            options["login_hint"] = login_hint
        with warnings.catch_warnings():
            # MSAL recommends form_post; that answer is a cross-site POST, which does not
            # carry a SameSite=Lax cookie, so the pending sign-in could not be found.
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            flow: dict[str, Any] = self._msal().initiate_auth_code_flow([], **options)
        flow["auth_uri"] = self._login.browser_url(flow["auth_uri"])
        return flow

    def finish(self, flow: Mapping[str, Any], answer: Mapping[str, str]) -> dict[str, Any]:
        """The proven ID token claims of the person who signed in; else a SignInError."""
        if not flow.get("state") or not hmac.compare_digest(
            str(flow.get("state")), str(answer.get("state", ""))
        ):
            raise BadState("the answer's state is not this browser's sign-in")
        try:
            result = self._msal().acquire_token_by_auth_code_flow(dict(flow), dict(answer))
        except ValueError as exc:  # MSAL's refusal of a mismatched answer
            raise BadState(str(exc)) from None
        if not isinstance(result, Mapping) or "error" in result:
            error = result.get("error") if isinstance(result, Mapping) else "no answer"
            description = result.get("error_description", "") if isinstance(result, Mapping) else ""
            raise SignInError(f"the identity provider refused: {error}: {description}")
        token = result.get("id_token")
        if not isinstance(token, str):
            raise BadIdToken("the token answer has no ID token")
        return self.validator.validate(token, nonce=str(flow.get("nonce", "")))


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class WebSession:
    """Who is signed in, proven by their ID token, and this session's CSRF token."""

    user_id: str
    name: str
    username: str
    groups: tuple[str, ...]
    csrf: str
    expires: float

    def in_any(self, group_ids: Collection[str]) -> bool:
        wanted = {g.lower() for g in group_ids}
        return any(g.lower() in wanted for g in self.groups)


class CookieSessions:
    """Encrypted, signed cookie values: a session, or a pending sign-in."""

    def __init__(self, secret: str, *, now: Callable[[], float] = time.time) -> None:
        key = hashlib.sha256(b"m365perf web session v1\x00" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._now = now

    def seal(self, value: Mapping[str, Any]) -> str:
        return self._fernet.encrypt_at_time(json.dumps(value).encode(), int(self._now())).decode()

    def open(self, sealed: str | None, *, max_age_s: float) -> dict[str, Any] | None:
        if not sealed:
            return None
        try:
            raw = self._fernet.decrypt_at_time(
                sealed.encode(), ttl=int(max_age_s), current_time=int(self._now())
            )
            value = json.loads(raw)
        except (InvalidToken, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def session(self, sealed: str | None, *, max_age_s: float) -> WebSession | None:
        value = self.open(sealed, max_age_s=max_age_s)
        if value is None or float(value.get("expires", 0)) < self._now():
            return None
        try:
            return WebSession(
                user_id=str(value["user_id"]),
                name=str(value["name"]),
                username=str(value["username"]),
                groups=tuple(str(g) for g in value["groups"]),
                csrf=str(value["csrf"]),
                expires=float(value["expires"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def seal_session(self, session: WebSession) -> str:
        return self.seal(
            {
                "user_id": session.user_id,
                "name": session.name,
                "username": session.username,
                "groups": list(session.groups),
                "csrf": session.csrf,
                "expires": session.expires,
            }
        )


def is_local_http(base_url: str) -> bool:
    """Plain http on the loopback interface: the only place a cookie may go without Secure."""
    parts = urlsplit(base_url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


@dataclass
class SignIn:
    """Everything the web pages need for sign-in: the IdP client, cookies, the staff groups.

    ``staff_groups`` are the Entra group ids the flows name (``staff_group``); a signed-in
    person in none of them sees no staff page.
    """

    entra: EntraSignIn
    sessions: CookieSessions
    base_url: str
    staff_groups: frozenset[str] = frozenset()
    session_hours: int = DEFAULT_SESSION_HOURS
    now: Callable[[], float] = time.time
    _secure: bool = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._secure = not is_local_http(self.base_url)

    def current(self, request: Request) -> WebSession | None:
        return self.sessions.session(
            request.cookies.get(SESSION_COOKIE), max_age_s=self.session_hours * 3600
        )

    def is_staff(self, session: WebSession) -> bool:
        return session.in_any(self.staff_groups)

    def signin_url(self, next_path: str) -> str:
        return "/signin?" + urlencode({"next": next_path})

    def csrf_ok(self, request: Request, session: WebSession, token: str | None) -> bool:
        """The form's token is this session's, and the request did not come from elsewhere."""
        origin = request.headers.get("origin")
        # "null" is what a browser sends under Referrer-Policy: no-referrer (our pages).
        foreign = origin not in (None, "", "null", self.base_url, _origin_of(request))
        if foreign:
            return False
        return bool(token) and hmac.compare_digest(str(token), session.csrf)

    def set_cookie(
        self, response: Response, name: str, value: str, max_age: int, path: str
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response, name: str, path: str) -> None:
        response.delete_cookie(name, path=path, secure=self._secure, httponly=True, samesite="lax")


def staff_groups(flows: Collection[Flow]) -> frozenset[str]:
    """The Entra groups whose members see the staff pages: every flow's ``staff_group``."""
    return frozenset(f.staff_group for f in flows if f.staff_group)


def signin_from_settings(settings: Settings, flows: Collection[Flow]) -> SignIn | None:
    """Web sign-in as configured; None without a session key or an app registration."""
    if not settings.has_web_signin or settings.session_secret is None:
        return None
    base = settings.staff_url
    login = login_authority(
        settings.login_base_url,
        settings.tenant_id,
        timeout=(settings.connect_timeout_s, settings.read_timeout_s),
    )
    entra = EntraSignIn(
        credential=credential_from_settings(settings),
        tenant_id=settings.tenant_id,
        login=login,
        redirect_uri=base + CALLBACK_PATH,
    )
    return SignIn(
        entra=entra,
        sessions=CookieSessions(settings.session_secret.get_secret_value()),
        base_url=base,
        staff_groups=staff_groups(flows),
        session_hours=settings.session_hours,
    )


def _origin_of(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def local_path(value: str | None) -> str:
    """A path on this site to go back to after sign-in; anything else goes to the start."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/approvals"
    return value


MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the last value of each name); anything else reads empty."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _page(title: str, message: str, status: int, hint: str | None = None) -> HTMLResponse:
    return HTMLResponse(render_problem(title, message, hint), status_code=status, headers=_FRESH)


def add_signin(app: FastAPI, signin: SignIn) -> None:
    """``GET /signin``, ``GET /signin/callback`` and ``POST /signout`` on ``app``."""

    @app.get("/signin")
    async def start(request: Request) -> Response:
        next_path = local_path(request.query_params.get("next"))
        try:
            flow = await run_in_threadpool(
                signin.entra.begin, login_hint=request.query_params.get("login_hint")
            )
        except Exception:  # the identity provider cannot be reached: say so, change nothing
            log.exception("could not start a sign-in")
            return _page(
                "Sign-in unavailable",
                "The sign-in service cannot be reached just now. Please try again in a few "
                "minutes.",
                503,
            )
        response = RedirectResponse(flow["auth_uri"], status_code=302, headers=_FRESH)
        pending = signin.sessions.seal({"flow": flow, "next": next_path})
        signin.set_cookie(response, PENDING_COOKIE, pending, PENDING_LIFETIME_S, "/signin")
        return response

    @app.get(CALLBACK_PATH)
    async def callback(request: Request) -> Response:
        pending = signin.sessions.open(
            request.cookies.get(PENDING_COOKIE), max_age_s=PENDING_LIFETIME_S
        )
        if pending is None or not isinstance(pending.get("flow"), dict):
            return _page(
                "Sign-in not finished",
                "This sign-in was not started in this browser, or it took longer than ten minutes.",
                400,
                "Open the link again to sign in.",
            )
        answer = dict(request.query_params)
        try:
            claims = await run_in_threadpool(signin.entra.finish, pending["flow"], answer)
        except SignInError as exc:
            log.info("refused a sign-in: %s: %s", type(exc).__name__, exc.reason)
            refused = _page(
                "Sign-in failed",
                "We could not confirm who you are, so you are not signed in.",
                400,
                "Open the link again to sign in.",
            )
            signin.clear_cookie(refused, PENDING_COOKIE, "/signin")
            return refused
        except Exception:  # the token endpoint cannot be reached
            log.exception("could not finish a sign-in")
            return _page(
                "Sign-in unavailable",
                "The sign-in service cannot be reached just now. Please try again.",
                503,
            )
        groups = claims.get("groups")
        session = WebSession(
            user_id=str(claims["oid"]).lower(),
            name=str(claims.get("name") or claims.get("preferred_username") or claims["oid"]),
            username=str(claims.get("preferred_username") or ""),
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            csrf=secrets.token_urlsafe(32),
            expires=signin.now() + signin.session_hours * 3600,
        )
        log.info("signed in %s", session.user_id)
        response = RedirectResponse(
            local_path(str(pending.get("next"))), status_code=303, headers=_FRESH
        )
        signin.set_cookie(
            response,
            SESSION_COOKIE,
            signin.sessions.seal_session(session),
            signin.session_hours * 3600,
            "/",
        )
        signin.clear_cookie(response, PENDING_COOKIE, "/signin")
        return response

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        session = signin.current(request)
        form = await read_form(request)
        if session is None:
            return _page("Signed out", "You are signed out.", 200)
        if not signin.csrf_ok(request, session, form.get("csrf")):
            return _page(
                "Not signed out",
                "This sign-out did not come from one of our pages. Nothing changed.",
                403,
            )
        response = _page("Signed out", "You are signed out of the performance returns.", 200)
        signin.clear_cookie(response, SESSION_COOKIE, "/")
        return response
