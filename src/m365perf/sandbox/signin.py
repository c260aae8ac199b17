"""The sandbox as an OpenID Connect identity provider: Entra's authorisation-code flow.

``GET /{tenant}/oauth2/v2.0/authorize`` checks the request as Entra does (known client,
registered redirect URI, ``openid`` scope, a PKCE ``S256`` challenge) and shows a page
listing the sandbox's directory; picking a person redirects back with a one-use code.
The token endpoint (:mod:`m365perf.sandbox.auth`) redeems the code once, within ten
minutes, for the same client and redirect URI, only with the verifier whose SHA-256 is
the challenge, and answers with an ID token signed by the tenant key (published at
the JWKS) carrying ``nonce``, ``oid``, ``tid``, ``name``, ``preferred_username`` and
``groups`` (the person's groups in the sandbox directory, see ``/_sandbox/groups``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from m365perf.sandbox.config import SandboxApp
from m365perf.sandbox.core import Sandbox, sandbox_of
from m365perf.sandbox.replies import Reply, aad_error
from m365perf.sandbox.store import UserRow

router = APIRouter()

CODE_LIFETIME_S = 600
"""Entra's authorisation codes last about ten minutes."""

_GROUPS_META = "groups"
_CODE_META = "authcode:"


# --------------------------------------------------------------------------- groups


def groups(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Group object id -> {"displayName", "members": [user object ids]}."""
    raw = sandbox.store.get_meta(_GROUPS_META)
    loaded: dict[str, dict[str, Any]] = json.loads(raw) if raw else {}
    return loaded


def put_group(sandbox: Sandbox, group_id: str, name: str, members: list[str]) -> list[str]:
    """Set a group's members (object ids, UPNs or mail); returns the object ids kept."""
    ids = []
    for member in members:
        user = sandbox.store.user(member)
        if user is None:
            raise KeyError(member)
        ids.append(user.id)
    everything = groups(sandbox)
    everything[group_id] = {"displayName": name, "members": ids}
    sandbox.store.set_meta(_GROUPS_META, json.dumps(everything))
    return ids


def groups_of(sandbox: Sandbox, user_id: str) -> list[str]:
    return sorted(g for g, v in groups(sandbox).items() if user_id in v.get("members", []))


# --------------------------------------------------------------------------- authorise


def _find_app(sandbox: Sandbox, client_id: str) -> SandboxApp | None:
    return next((a for a in sandbox.config.apps if a.client_id.lower() == client_id.lower()), None)


def redirect_allowed(app: SandboxApp, redirect_uri: str) -> bool:
    """A registered redirect URI; with none registered, any loopback http(s) address."""
    if app.redirect_uris:
        return redirect_uri in app.redirect_uris
    parts = urlsplit(redirect_uri)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")


def _problem_page(status: int, code: int, message: str) -> Response:
    body = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Sign in: problem</title></head><body><main><h1>Sorry, but we're having "
        f"trouble signing you in.</h1><p>AADSTS{code}: {html.escape(message)}</p></main>"
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _request_problem(sandbox: Sandbox, tenant: str, params: dict[str, str]) -> Response | None:
    """What Entra shows on its own page (no redirect): the request cannot be trusted."""
    config = sandbox.config
    if tenant.lower() not in {config.tenant_id.lower(), config.mail_domain.lower()}:
        return _problem_page(400, 90002, f"Tenant '{tenant}' not found.")
    app = _find_app(sandbox, params.get("client_id", ""))
    if app is None:
        return _problem_page(
            400,
            700016,
            f"Application with identifier '{params.get('client_id', '')}' was not found in "
            f"the directory '{tenant}'.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_allowed(app, redirect_uri):
        return _problem_page(
            400,
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{app.client_id}'.",
        )
    return None


def _redirect_error(params: dict[str, str], error: str, code: int, description: str) -> Response:
    query = {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "state": params.get("state", ""),
    }
    return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)


def _with_query(url: str, query: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(query)


def _flow_problem(params: dict[str, str]) -> tuple[str, int, str] | None:
    """A request error Entra sends back to the app's redirect URI."""
    if params.get("response_type") != "code":
        return (
            "unsupported_response_type",
            700054,
            "response_type 'code' is the only one this app may use.",
        )
    if "openid" not in params.get("scope", "").split():
        return ("invalid_scope", 70011, "The scope must include 'openid' to sign a user in.")
    if not params.get("code_challenge"):
        return (
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code "
            "redemption.",
        )
    if params.get("code_challenge_method", "plain") != "S256":
        return ("invalid_request", 501491, "Only code_challenge_method S256 is supported.")
    if params.get("response_mode", "query") != "query":
        return ("invalid_request", 900144, "Only response_mode 'query' is emulated.")
    return None


_FIELDS = (
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_type",
    "response_mode",
)


def _picker(sandbox: Sandbox, tenant: str, params: dict[str, str]) -> Response:
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(params[name], quote=True)}'>"
        for name in _FIELDS
        if name in params
    )
    hint = params.get("login_hint", "").lower()
    people = [
        u for u in sandbox.store.users() if u.upn != f"performance@{sandbox.config.mail_domain}"
    ]
    if hint:
        people.sort(key=lambda u: u.upn != hint)
    buttons = "".join(
        "<li><button type='submit' name='user' "
        f"value='{html.escape(u.id, quote=True)}'>{html.escape(u.display_name)}"
        f" <small>{html.escape(u.upn)}</small></button></li>"
        for u in people
    )
    body = f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>Sign in to your account</title>
<style>body{{font-family:sans-serif;max-width:36rem;margin:2rem auto}}
li{{list-style:none;margin:.3rem 0}}button{{width:100%;text-align:left;padding:.5rem}}</style>
</head><body><main><h1>Pick an account</h1>
<p>The sandbox's directory stands in for Entra ID: choose who signs in.</p>
<form method="post" action="/{html.escape(tenant, quote=True)}/oauth2/v2.0/authorize">
{hidden}<ul>{buttons}</ul></form></main></body></html>"""
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/{tenant}/oauth2/v2.0/authorize")
async def authorize(tenant: str, request: Request) -> Response:
    sandbox = sandbox_of(request)
    params = dict(request.query_params)
    problem = _request_problem(sandbox, tenant, params)
    if problem is not None:
        return problem
    flow_problem = _flow_problem(params)
    if flow_problem is not None:
        return _redirect_error(params, *flow_problem)
    return _picker(sandbox, tenant, params)


@router.post("/{tenant}/oauth2/v2.0/authorize")
async def authorize_as(tenant: str, request: Request) -> Response:
    """The picker's answer: a one-use code for the chosen person, back to the app."""
    sandbox = sandbox_of(request)
    params = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    problem = _request_problem(sandbox, tenant, params)
    if problem is not None:
        return problem
    flow_problem = _flow_problem(params)
    if flow_problem is not None:
        return _redirect_error(params, *flow_problem)
    user = sandbox.store.user(params.get("user", ""))
    if user is None:
        return _redirect_error(params, "access_denied", 50034, "The user account does not exist.")
    code = secrets.token_urlsafe(32)
    grant = {
        "client_id": params["client_id"],
        "redirect_uri": params["redirect_uri"],
        "scope": params.get("scope", ""),
        "nonce": params.get("nonce"),
        "code_challenge": params["code_challenge"],
        "user_id": user.id,
        "issued": time.time(),
    }
    sandbox.store.set_meta(_CODE_META + _digest(code), json.dumps(grant))
    query = {"code": code, "state": params.get("state", ""), "session_state": str(uuid.uuid4())}
    return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)


@router.get("/{tenant}/oauth2/v2.0/logout")
async def logout(tenant: str, request: Request) -> Response:
    """Entra's sign-out: back to ``post_logout_redirect_uri`` when it is a loopback one."""
    target = request.query_params.get("post_logout_redirect_uri", "")
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost"):
        return RedirectResponse(target, status_code=302)
    return HTMLResponse("<!DOCTYPE html><title>Signed out</title><p>You signed out.</p>")


# --------------------------------------------------------------------------- token


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def id_token_claims(
    sandbox: Sandbox, user: UserRow, client_id: str, nonce: str | None
) -> dict[str, Any]:
    """An Entra v2 ID token's claims for ``user`` signing in to ``client_id``."""
    now = int(time.time())
    sub = hashlib.sha256(f"{client_id}:{user.id}".encode()).hexdigest()[:43]
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": sandbox.config.issuer,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": user.display_name,
        "oid": user.id,
        "preferred_username": user.upn,
        "email": user.mail,
        "sub": sub,
        "tid": sandbox.config.tenant_id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "2.0",
        "groups": groups_of(sandbox, user.id),
    }
    if nonce:
        claims["nonce"] = nonce
    return claims


def code_reply(sandbox: Sandbox, app: SandboxApp, form: dict[str, str]) -> Reply:
    """Redeem an authorisation code (the client is already authenticated as ``app``)."""
    code = form.get("code", "")
    key = _CODE_META + _digest(code)
    raw = sandbox.store.get_meta(key) if code else None
    grant = json.loads(raw) if raw else None
    if grant is None or grant.get("used"):
        return aad_error(
            400,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid "
            "code or use an existing refresh token."
            if grant
            else "The provided authorization code is invalid.",
        )
    sandbox.store.set_meta(key, json.dumps({**grant, "used": True}))
    if time.time() - float(grant["issued"]) > CODE_LIFETIME_S:
        return aad_error(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token "
            "has expired due to inactivity. Send a new interactive authorization request.",
        )
    if grant["client_id"].lower() != app.client_id.lower():
        return aad_error(
            400, "invalid_grant", 70002, "The authorization code was issued to another client."
        )
    if form.get("redirect_uri", "") != grant["redirect_uri"]:
        return aad_error(
            400,
            "invalid_grant",
            500112,
            "The reply address does not match the reply address provided when requesting "
            "the authorization code.",
        )
    verifier = form.get("code_verifier", "")
    if not verifier or _challenge_of(verifier) != grant["code_challenge"]:
        return aad_error(
            400,
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the "
            "authorization request.",
        )
    user = sandbox.store.user(grant["user_id"])
    if user is None:
        return aad_error(400, "invalid_grant", 50034, "The user account does not exist.")
    claims = id_token_claims(sandbox, user, app.client_id, grant.get("nonce"))
    scopes = [
        s
        for s in grant["scope"].split()
        if s not in ("openid", "profile", "offline_access", "email")
    ]
    access = {
        "aud": "00000003-0000-0000-c000-000000000000",
        "iss": sandbox.config.issuer,
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "exp": claims["exp"],
        "tid": sandbox.config.tenant_id,
        "oid": user.id,
        "sub": claims["sub"],
        "azp": app.client_id,
        "appid": app.client_id,
        "idtyp": "user",
        "scp": " ".join(scopes) or "User.Read",
        "upn": user.upn,
        "ver": "2.0",
    }
    body = {
        "token_type": "Bearer",
        "scope": " ".join(["openid", "profile", "email", *scopes]) or "User.Read",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": sandbox.entra_key.sign(access),
        "id_token": sandbox.entra_key.sign(claims),
        "client_info": _b64json({"uid": user.id, "utid": sandbox.config.tenant_id}),
    }
    return Reply(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


# --------------------------------------------------------------------------- admin


@router.get("/_sandbox/groups")
async def list_groups(request: Request) -> Response:
    return JSONResponse({"value": groups(sandbox_of(request))})


@router.put("/_sandbox/groups/{group_id}")
async def set_group(group_id: str, request: Request) -> Response:
    """Body ``{"displayName": "...", "members": ["upn or id", ...]}``."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    members = body.get("members") if isinstance(body, dict) else None
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        return JSONResponse({"error": "members must be a list of UPNs or ids"}, status_code=400)
    sandbox = sandbox_of(request)
    try:
        ids = put_group(sandbox, group_id, str(body.get("displayName") or group_id), members)
    except KeyError as missing:
        return JSONResponse({"error": f"no user {missing.args[0]!r}"}, status_code=404)
    return JSONResponse({"id": group_id, "members": ids})
