"""Tokens: issued like Entra issues them, and checked by every emulated API."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sandbox_support import BOT, GRAPH, POWERBI, Wire

from m365perf.sandbox.config import DEFAULT_CLIENT_SECRET, SandboxApp
from m365perf.sandbox.testing import RunningSandbox, running_sandbox


def _token_request(sandbox: RunningSandbox, **form: str) -> requests.Response:
    app = sandbox.config.apps[0]
    data = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "scope": GRAPH,
        **form,
    }
    return requests.post(
        f"{sandbox.base_url}/{sandbox.config.tenant_id}/oauth2/v2.0/token", data=data, timeout=10
    )


def test_token_is_an_rs256_jwt_verifiable_with_the_published_keys(
    shared_sandbox: RunningSandbox,
) -> None:
    response = _token_request(shared_sandbox)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    jwks = jwt.PyJWKClient(f"{shared_sandbox.base_url}/discovery/keys")
    key = jwks.get_signing_key_from_jwt(body["access_token"])
    claims = jwt.decode(
        body["access_token"],
        key.key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        issuer=shared_sandbox.config.issuer,
    )
    assert claims["tid"] == shared_sandbox.config.tenant_id
    assert claims["azp"] == shared_sandbox.config.apps[0].client_id
    assert claims["exp"] > time.time() + 3000
    assert "Sites.ReadWrite.All" in claims["roles"]


def test_audience_follows_the_requested_resource(shared_sandbox: RunningSandbox) -> None:
    token = _token_request(shared_sandbox, scope=POWERBI).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "https://analysis.windows.net/powerbi/api"


def test_wrong_secret_is_refused_as_invalid_client(shared_sandbox: RunningSandbox) -> None:
    response = _token_request(shared_sandbox, client_secret="not-the-secret")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, 400, "unauthorized_client", 700016),
        ({"scope": "https://graph.microsoft.com/Sites.Read.All"}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
)
def test_other_token_errors_carry_their_aadsts_codes(
    shared_sandbox: RunningSandbox, form: dict[str, str], status: int, error: str, code: int
) -> None:
    response = _token_request(shared_sandbox, **form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_codes"] == [code]


def test_unknown_tenant_is_not_found(shared_sandbox: RunningSandbox) -> None:
    response = requests.post(
        f"{shared_sandbox.base_url}/not-our-tenant/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "x", "scope": GRAPH},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def _msal_session(sandbox: RunningSandbox) -> requests.Session:
    # requests lets REQUESTS_CA_BUNDLE from the environment override a session's verify=,
    # so the session must ignore the environment to trust the sandbox's CA.
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    return session


def test_msal_gets_a_token_through_the_https_authority(shared_sandbox: RunningSandbox) -> None:
    config = shared_sandbox.config
    app = msal.ConfidentialClientApplication(
        config.apps[0].client_id,
        authority=f"{shared_sandbox.tls_base_url}/{config.tenant_id}",
        client_credential=DEFAULT_CLIENT_SECRET,
        validate_authority=False,
        instance_discovery=False,
        http_client=_msal_session(shared_sandbox),
    )
    result = app.acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in result, result
    again = app.acquire_token_for_client(scopes=[GRAPH])
    assert again["token_source"] == "cache"


def _certificate() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365perf test app")])
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
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_credential_works_and_another_certificate_does_not(tmp_path: Path) -> None:
    key, pem = _certificate()
    stranger_key, stranger_pem = _certificate()
    cert_app = SandboxApp(client_id="11111111-2222-3333-4444-555555555555", certificate_pem=pem)
    with running_sandbox(tmp_path, seed=False, apps=(cert_app,)) as sandbox:
        authority = f"{sandbox.tls_base_url}/{sandbox.config.tenant_id}"

        def acquire(private_key: rsa.RSAPrivateKey, public_pem: str) -> dict[str, object]:
            app = msal.ConfidentialClientApplication(
                cert_app.client_id,
                authority=authority,
                client_credential={
                    "private_key": private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode(),
                    "public_certificate": public_pem,
                },
                validate_authority=False,
                instance_discovery=False,
                http_client=_msal_session(sandbox),
            )
            result: dict[str, object] = app.acquire_token_for_client(scopes=[GRAPH])
            return result

        good = acquire(key, pem)
        assert "access_token" in good, good
        claims = jwt.decode(str(good["access_token"]), options={"verify_signature": False})
        assert claims["azpacr"] == "2"
        bad = acquire(stranger_key, stranger_pem)
        assert bad["error"] == "invalid_client"
        assert bad["error_codes"] == [700027]


def _graph_status(wire: Wire, token: str | None) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.get(
        f"{wire.base}/v1.0/users/performance@contoso.gov.uk", headers=headers, timeout=10
    )


def test_graph_refuses_missing_expired_foreign_and_misaddressed_tokens(wire: Wire) -> None:
    assert _graph_status(wire, wire.token()).status_code == 200

    missing = _graph_status(wire, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert missing.json()["error"]["message"] == "Access token is empty."

    expired = wire.admin("POST", "/token", json={"lifetime_s": -60}).json()["access_token"]
    response = _graph_status(wire, expired)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]

    wrong_audience = _graph_status(wire, wire.token(POWERBI))
    assert wrong_audience.status_code == 401
    assert wrong_audience.json()["error"]["message"].endswith("Invalid audience.")

    claims = jwt.decode(wire.token(), options={"verify_signature": False})
    forged = jwt.encode(
        claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256"
    )
    assert _graph_status(wire, forged).status_code == 401


def test_bot_connector_and_power_bi_refuse_a_graph_token(wire: Wire) -> None:
    graph_token = {"Authorization": f"Bearer {wire.token(GRAPH)}"}
    bot = requests.post(
        f"{wire.base}/botframework/v3/conversations", json={}, headers=graph_token, timeout=10
    )
    assert bot.status_code == 401
    assert bot.json() == {"message": "Authorization has been denied for this request."}
    refreshes = requests.get(
        f"{wire.base}/powerbi/v1.0/myorg/groups/x/datasets/y/refreshes",
        headers=graph_token,
        timeout=10,
    )
    assert refreshes.status_code == 401
    assert wire.bot("POST", "/conversations", json={}).status_code == 400  # right token, bad body


def test_an_app_without_the_role_is_denied(wire: Wire) -> None:
    token = wire.admin("POST", "/token", json={"roles": ["User.Read.All"]}).json()["access_token"]
    response = requests.post(
        f"{wire.base}/v1.0/users/performance@contoso.gov.uk/sendMail",
        json={"message": {"subject": "x", "toRecipients": []}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ErrorAccessDenied"


def test_openid_documents_point_at_the_key_sets(shared_sandbox: RunningSandbox) -> None:
    base, tenant = shared_sandbox.base_url, shared_sandbox.config.tenant_id
    entra = requests.get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration", timeout=10)
    doc = entra.json()
    assert doc["token_endpoint"] == f"{base}/{tenant}/oauth2/v2.0/token"
    assert doc["issuer"] == shared_sandbox.config.issuer
    assert requests.get(doc["jwks_uri"], timeout=10).json()["keys"][0]["kty"] == "RSA"
    bot = requests.get(f"{base}/botframework/v1/.well-known/openidconfiguration", timeout=10)
    assert bot.json()["issuer"] == "https://api.botframework.com"
    keys = requests.get(bot.json()["jwks_uri"], timeout=10).json()["keys"]
    assert "msteams" in keys[0]["endorsements"]
    assert BOT.startswith("https://api.botframework.com")
