"""MSAL client credentials against a sandbox-shaped login service, and the factory."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from m365perf.m365 import Tokens, clients_from_settings, tokens_from_settings
from m365perf.m365.auth import (
    GRAPH_SCOPE,
    ClientCredential,
    MsalTokenProvider,
    StaticToken,
)
from m365perf.m365.errors import AuthError
from m365perf.settings import Settings

TENANT = "11111111-2222-3333-4444-555555555555"
SECRET = "very-secret-value"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def serve_login(
    mocked: responses.RequestsMock, base: str, token_reply: dict[str, object], status: int = 200
) -> None:
    """What the sandbox serves: OpenID discovery and the v2.0 token endpoint."""
    mocked.get(
        f"{base}/{TENANT}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{base}/{TENANT}/oauth2/v2.0/token",
            "issuer": f"{base}/{TENANT}/v2.0",
            "authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/authorize",
            "jwks_uri": f"{base}/{TENANT}/discovery/v2.0/keys",
        },
    )
    mocked.post(f"{base}/{TENANT}/oauth2/v2.0/token", status=status, json=token_reply)


def token_form(mocked: responses.RequestsMock) -> dict[str, str]:
    [call] = [c for c in mocked.calls if c.request.method == "POST"]
    return {k: v[0] for k, v in parse_qs(str(call.request.body)).items()}


def provider(base: str, credential: ClientCredential | None = None) -> MsalTokenProvider:
    return MsalTokenProvider(
        tenant_id=TENANT,
        credential=credential or ClientCredential("app-1", secret=SECRET),
        scopes=[GRAPH_SCOPE],
        login_base_url=base,
    )


def test_secret_credential_against_a_plain_http_loopback_sandbox(mocked: responses.RequestsMock):
    base = "http://127.0.0.1:8931"
    serve_login(mocked, base, {"token_type": "Bearer", "expires_in": 3599, "access_token": "at-1"})
    tokens = provider(base)

    assert tokens.token() == "at-1"
    assert tokens.token() == "at-1"  # from MSAL's cache: one token request only

    form = token_form(mocked)
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == "app-1"
    assert form["client_secret"] == SECRET
    assert form["scope"] == GRAPH_SCOPE


def test_custom_https_login_host_skips_microsoft_instance_discovery(
    mocked: responses.RequestsMock,
):
    base = "https://login.sandbox.test"
    serve_login(mocked, base, {"token_type": "Bearer", "expires_in": 3599, "access_token": "at-2"})

    assert provider(base).token() == "at-2"
    assert all("login.microsoftonline.com" not in c.request.url for c in mocked.calls)


def test_refused_credentials_raise_a_permanent_auth_error_without_the_secret(
    mocked: responses.RequestsMock,
):
    base = "http://127.0.0.1:8931"
    reply = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret.",
    }
    serve_login(mocked, base, reply, status=401)

    with pytest.raises(AuthError, match="invalid_client") as caught:
        provider(base).token()

    assert caught.value.transient is False
    assert SECRET not in str(caught.value)


def test_unreachable_login_service_is_a_transient_auth_error(mocked: responses.RequestsMock):
    mocked.get(
        f"http://127.0.0.1:8931/{TENANT}/v2.0/.well-known/openid-configuration",
        body=requests.ConnectionError("refused"),
    )

    with pytest.raises(AuthError) as caught:
        provider("http://127.0.0.1:8931").token()

    assert caught.value.transient is True


def test_plain_http_to_a_remote_host_is_refused():
    with pytest.raises(ValueError, match="unencrypted"):
        provider("http://login.example.org")


def _write_certificate(path: Path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365perf test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(pem)
    return cert.fingerprint(hashes.SHA1()).hex()


def test_certificate_credential_sends_a_signed_assertion(
    tmp_path: Path, mocked: responses.RequestsMock
):
    thumbprint = _write_certificate(tmp_path / "app.pem")
    credential = ClientCredential.from_pem_file("app-1", str(tmp_path / "app.pem"))
    base = "http://127.0.0.1:8931"
    serve_login(mocked, base, {"token_type": "Bearer", "expires_in": 3599, "access_token": "at-3"})

    assert credential.thumbprint == thumbprint
    assert provider(base, credential).token() == "at-3"

    form = token_form(mocked)
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    header = jwt.get_unverified_header(form["client_assertion"])
    x5t = base64.urlsafe_b64encode(bytes.fromhex(thumbprint)).rstrip(b"=").decode()
    assert header["x5t"].rstrip("=") == x5t  # MSAL keeps the base64 padding


def test_credential_needs_exactly_one_proof():
    with pytest.raises(ValueError, match="exactly one"):
        ClientCredential("app-1")
    with pytest.raises(ValueError, match="exactly one"):
        ClientCredential("app-1", secret="s", private_key_pem="k", thumbprint="t")


def test_factory_points_every_client_at_the_configured_base_urls(mocked: responses.RequestsMock):
    settings = Settings(
        graph_base_url="http://127.0.0.1:8931/graph/v1.0",
        powerbi_base_url="http://127.0.0.1:8931/powerbi/v1.0/myorg",
        bot_connector_base_url="http://127.0.0.1:8931/bot/",
        user_agent="NONISV|Coventry|m365perf/0.1",
        _env_file=None,  # type: ignore[call-arg]
    )
    tokens = Tokens(graph=StaticToken("g"), powerbi=StaticToken("p"), bot=StaticToken("b"))
    mocked.get(
        "http://127.0.0.1:8931/graph/v1.0/users/u1?$select=id,displayName,mail,userPrincipalName",
        json={"id": "u1", "displayName": "Jo", "userPrincipalName": "jo@x"},
    )
    mocked.post(
        "http://127.0.0.1:8931/powerbi/v1.0/myorg/groups/w/datasets/d/refreshes",
        status=202,
        headers={"x-ms-request-id": "r1"},
    )
    mocked.post("http://127.0.0.1:8931/bot/v3/conversations", json={"id": "a:1"})
    clients = clients_from_settings(settings, tokens=tokens)

    assert clients.graph.get_user("u1").display_name == "Jo"
    assert clients.powerbi.trigger_refresh("w", "d") == "r1"
    assert clients.teams.create_conversation(settings.bot_connector_base_url, "b", "t", "29:u") == (
        "a:1"
    )
    auth = [c.request.headers["Authorization"] for c in mocked.calls]
    assert auth == ["Bearer g", "Bearer p", "Bearer b"]
    assert {c.request.headers["User-Agent"] for c in mocked.calls} == {
        "NONISV|Coventry|m365perf/0.1"
    }
    clients.close()


def test_factory_without_credentials_says_what_to_set():
    settings = Settings(tenant_id=TENANT, client_id="app-1", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="M365PERF_CLIENT_SECRET"):
        tokens_from_settings(settings, requests.Session())


def test_bot_token_comes_from_the_tenant_authority(mocked: responses.RequestsMock):
    settings = Settings(
        tenant_id=TENANT,
        client_id="app-1",
        client_secret=SECRET,
        login_base_url="http://127.0.0.1:8931",
        _env_file=None,  # type: ignore[call-arg]
    )
    serve_login(
        mocked,
        "http://127.0.0.1:8931",
        {"token_type": "Bearer", "expires_in": 3599, "access_token": "bot-at"},
    )

    tokens = tokens_from_settings(settings, requests.Session())

    assert tokens.bot.token() == "bot-at"
    assert token_form(mocked)["scope"] == "https://api.botframework.com/.default"


def test_eight_workers_asking_at_once_at_first_send_cause_one_token_request(
    mocked: responses.RequestsMock,
):
    import json
    import threading
    import time

    base = "http://127.0.0.1:8931"
    serve_login(mocked, base, {})
    mocked.remove(responses.POST, f"{base}/{TENANT}/oauth2/v2.0/token")

    def slow_token(request: object) -> tuple[int, dict[str, str], str]:
        time.sleep(0.2)  # long enough for every worker to be asking at once
        reply = {"token_type": "Bearer", "expires_in": 3599, "access_token": "at-8"}
        return 200, {}, json.dumps(reply)

    mocked.add_callback(responses.POST, f"{base}/{TENANT}/oauth2/v2.0/token", slow_token)
    tokens = provider(base)
    start = threading.Barrier(8)
    got: list[str] = []

    def worker() -> None:
        start.wait()
        got.append(tokens.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert got == ["at-8"] * 8
    assert len([c for c in mocked.calls if c.request.method == "POST"]) == 1
