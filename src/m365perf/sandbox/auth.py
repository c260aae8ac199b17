"""The sandbox's token issuer (Entra-style) and the Bot Framework-style key publication.

The service is a daemon (client credentials) and signs people in on the web
(authorisation code with PKCE, :mod:`m365perf.sandbox.signin`). Tokens are
RS256 JWTs signed with the sandbox's own key; every emulated API checks them
(signature, issuer, expiry, audience) exactly as a resource server would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from m365perf.sandbox.config import SandboxApp
from m365perf.sandbox.core import Sandbox, sandbox_of
from m365perf.sandbox.keys import SigningKey, certificate_public_key, certificate_thumbprints
from m365perf.sandbox.replies import Reply, aad_error
from m365perf.sandbox.signin import code_reply

router = APIRouter()

GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"})
POWERBI_AUDIENCES = frozenset(
    {"https://analysis.windows.net/powerbi/api", "https://api.powerbi.com"}
)
BOT_AUDIENCES = frozenset({"https://api.botframework.com"})
BOT_ISSUER = "https://api.botframework.com"
BOT_ENDORSEMENTS = ["msteams", "outlook"]
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def service_principal_id(client_id: str) -> str:
    """The enterprise-app object id Entra would put in ``oid``: stable per client id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://m365perf.invalid/sp/{client_id}"))


def issue_access_token(
    sandbox: Sandbox,
    app: SandboxApp,
    resource: str,
    *,
    lifetime_s: int | None = None,
    credential_kind: str = "1",
) -> str:
    """An app-only access token as Entra shapes one (``roles``, ``azp``, ``tid``, ``oid``)."""
    now = int(time.time())
    lifetime = sandbox.config.token_lifetime_s if lifetime_s is None else lifetime_s
    oid = service_principal_id(app.client_id)
    claims: dict[str, Any] = {
        "aud": resource,
        "iss": sandbox.config.issuer,
        "iat": now,
        "nbf": now - (0 if lifetime > 0 else 600),
        "exp": now + lifetime,
        "tid": sandbox.config.tenant_id,
        "azp": app.client_id,
        "appid": app.client_id,
        "azpacr": credential_kind,
        "appidacr": credential_kind,
        "idtyp": "app",
        "oid": oid,
        "sub": oid,
        "roles": list(app.roles),
        "uti": uuid.uuid4().hex[:22],
        "ver": "2.0",
    }
    return sandbox.entra_key.sign(claims)


@dataclass(frozen=True)
class TokenProblem(Exception):
    """Why a bearer token was refused; ``kind`` picks the service-specific message."""

    kind: str  # "missing" | "expired" | "audience" | "invalid"


def verify_bearer(
    sandbox: Sandbox, authorization: str | None, audiences: frozenset[str]
) -> dict[str, Any]:
    """The claims of a valid sandbox-issued token for one of ``audiences``; else TokenProblem."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise TokenProblem("missing")
    token = authorization[7:].strip()
    if not token:
        raise TokenProblem("missing")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            sandbox.entra_key.private_key.public_key(),
            algorithms=["RS256"],
            issuer=sandbox.config.issuer,
            options={"verify_aud": False, "require": ["exp", "iss", "aud"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError:
        raise TokenProblem("expired") from None
    except jwt.PyJWTError:
        raise TokenProblem("invalid") from None
    if claims.get("aud") not in audiences:
        raise TokenProblem("audience")
    if claims.get("tid") != sandbox.config.tenant_id:
        raise TokenProblem("invalid")
    return claims


def _find_app(sandbox: Sandbox, client_id: str) -> SandboxApp | None:
    return next((a for a in sandbox.config.apps if a.client_id.lower() == client_id.lower()), None)


def _assertion_ok(app: SandboxApp, assertion: str, tenant: str) -> str | None:
    """None when the certificate-signed client assertion holds; else the AADSTS reason."""
    if app.certificate_pem is None:
        return "The certificate used to sign the client assertion is not registered on app."
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return "Client assertion is not a valid JWT."
    x5t, x5t256 = certificate_thumbprints(app.certificate_pem)

    def unpadded(value: object) -> str:
        return str(value or "").rstrip("=")  # MSAL keeps base64 padding, JOSE drops it

    if unpadded(header.get("x5t")) != x5t and unpadded(header.get("x5t#S256")) != x5t256:
        return (
            "The certificate with identifier used to sign the client assertion is not "
            "registered on application."
        )
    try:
        claims = jwt.decode(
            assertion,
            certificate_public_key(app.certificate_pem),
            algorithms=["RS256", "PS256"],
            options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        return "Client assertion contains an expired token."
    except jwt.PyJWTError:
        return "Client assertion failed signature validation."
    audience = claims.get("aud")
    if not isinstance(audience, str) or not audience.endswith(f"/{tenant}/oauth2/v2.0/token"):
        return "Client assertion audience claim does not match Realm issuer."
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        return "Client assertion issuer and subject must both be the client id."
    return None


def _token_reply(sandbox: Sandbox, tenant: str, form: dict[str, str]) -> Reply:
    config = sandbox.config
    if tenant.lower() not in {config.tenant_id.lower(), config.mail_domain.lower()}:
        return aad_error(
            400,
            "invalid_request",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    grant = form.get("grant_type", "")
    if grant not in ("client_credentials", "authorization_code"):
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )
    for name in ("client_id", "scope") if grant == "client_credentials" else ("client_id", "code"):
        if not form.get(name):
            return aad_error(
                400,
                "invalid_request",
                900144,
                f"The request body must contain the following parameter: '{name}'.",
            )
    client_id = form["client_id"]
    app = _find_app(sandbox, client_id)
    if app is None:
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may "
            "have sent your authentication request to the wrong tenant.",
        )
    scopes = [s for s in form.get("scope", "").split() if s not in _RESERVED_SCOPES]
    if grant == "client_credentials" and (len(scopes) != 1 or not scopes[0].endswith("/.default")):
        return aad_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {form['scope']} is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    if "client_secret" in form:
        if app.client_secret is None or form["client_secret"] != app.client_secret:
            return aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{app.client_id}'.",
            )
        kind = "1"
    elif "client_assertion" in form:
        if form.get("client_assertion_type") != _JWT_BEARER:
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
            )
        reason = _assertion_ok(app, form["client_assertion"], tenant)
        if reason is not None:
            return aad_error(401, "invalid_client", 700027, reason)
        kind = "2"
    else:
        return aad_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    if grant == "authorization_code":
        return code_reply(sandbox, app, form)
    resource = scopes[0][: -len("/.default")]
    lifetime = config.token_lifetime_s
    token = issue_access_token(sandbox, app, resource, credential_kind=kind)
    return Reply(
        200,
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        },
        {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


@router.post("/{tenant}/oauth2/v2.0/token")
async def token(tenant: str, request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    return _token_reply(sandbox_of(request), tenant, form).response()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
async def openid_configuration(tenant: str, request: Request) -> Response:
    """Enough of Entra's discovery document for MSAL (it reads the endpoints, not the rest)."""
    sandbox = sandbox_of(request)
    if tenant.lower() not in {sandbox.config.tenant_id.lower(), sandbox.config.mail_domain}:
        return JSONResponse(
            {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}'"},
            status_code=400,
        )
    base, tid = _base(request), sandbox.config.tenant_id
    return JSONResponse(
        {
            "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": sandbox.config.issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": "graph.microsoft.com",
        }
    )


@router.get("/discovery/keys")
@router.get("/discovery/v2.0/keys")
@router.get("/{tenant}/discovery/v2.0/keys")
async def entra_keys(request: Request) -> Response:
    return JSONResponse({"keys": [sandbox_of(request).entra_key.jwk()]})


@router.get("/botframework/v1/.well-known/openidconfiguration")
async def bot_openid_configuration(request: Request) -> Response:
    """The Bot Framework's static metadata, pointing at the sandbox's published keys."""
    return JSONResponse(
        {
            "issuer": BOT_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{_base(request)}/botframework/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
    )


@router.get("/botframework/keys")
@router.get("/botframework/v1/.well-known/keys")
async def bot_keys(request: Request) -> Response:
    return JSONResponse({"keys": [sandbox_of(request).bot_key.jwk(BOT_ENDORSEMENTS)]})


ENTRA_BOT_ISSUERS = {
    "entra_v2": "https://login.microsoftonline.com/{tenant}/v2.0",
    "entra_v1": "https://sts.windows.net/{tenant}/",
}
"""Issuers Entra puts on the tokens a single-tenant bot receives (facts §9)."""


@dataclass(frozen=True)
class BotTokenSpec:
    """A token the Bot Connector would send a bot, with every switch a forger would try.

    ``issuer`` is ``botframework``, ``entra_v2``, ``entra_v1`` or a literal ``iss``;
    ``tenant`` the tenant in an Entra issuer (default ours); ``tid`` the ``tid`` claim
    (default: the issuer's tenant, none on Bot Framework tokens; ``""`` leaves it out).
    ``key``: ``issuer`` (the right key), ``botframework``, ``entra`` or ``foreign``;
    ``alg``: ``RS256``, ``none`` or ``HS256`` (keyed with the public key, the old trick).
    """

    service_url: str
    issuer: str = "botframework"
    tenant: str | None = None
    tid: str | None = None
    audience: str | None = None
    expired: bool = False
    not_before_s: int = -300
    lifetime_s: int = 3600
    key: str = "issuer"
    kid: str | None = None
    alg: str = "RS256"
    service_url_claim: bool = True


def bot_token(sandbox: Sandbox, spec: BotTokenSpec) -> str:
    """An inbound bot token: Bot Framework's (facts §6.5) or the tenant's Entra one (§9)."""
    now = int(time.time())
    tenant = spec.tenant or sandbox.config.tenant_id
    entra = spec.issuer in ENTRA_BOT_ISSUERS
    issuer = ENTRA_BOT_ISSUERS[spec.issuer].format(tenant=tenant) if entra else spec.issuer
    if spec.issuer == "botframework":
        issuer = BOT_ISSUER
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": spec.audience if spec.audience is not None else sandbox.config.bot_app_id,
        "nbf": now + spec.not_before_s - (7200 if spec.expired else 0),
        "iat": now - (7200 if spec.expired else 0),
        "exp": now - 3600 if spec.expired else now + spec.lifetime_s,
    }
    if spec.service_url_claim:
        claims["serviceurl"] = spec.service_url
    tid = spec.tid if spec.tid is not None else (tenant if entra else "")
    if tid:
        claims["tid"] = tid
    if entra:
        claims.update(azp=sandbox.config.bot_app_id, appid=sandbox.config.bot_app_id, ver="2.0")
    own = sandbox.entra_key if entra else sandbox.bot_key
    chosen = {
        "issuer": own,
        "botframework": sandbox.bot_key,
        "entra": sandbox.entra_key,
    }.get(spec.key)
    signer = chosen if chosen is not None else SigningKey.ephemeral("forger")
    kid = spec.kid if spec.kid is not None else own.kid
    if spec.alg == "RS256":
        return signer.sign(claims, kid=kid)
    return _hand_made_token(spec.alg, kid, claims, own)


def _hand_made_token(alg: str, kid: str, claims: dict[str, Any], key: SigningKey) -> str:
    """``alg: none`` or HS256 keyed with the public key: tokens PyJWT will not make."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if alg == "none":
        return signing_input + "."
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def bot_framework_token(
    sandbox: Sandbox,
    *,
    service_url: str,
    audience: str | None = None,
    expired: bool = False,
    foreign: bool = False,
    issuer: str = "botframework",
) -> str:
    """What the Bot Connector puts on an activity it posts to a bot (facts §6.5, §9)."""
    return bot_token(
        sandbox,
        BotTokenSpec(
            service_url=service_url,
            issuer=issuer,
            audience=audience,
            expired=expired,
            key="foreign" if foreign else "issuer",
        ),
    )
