"""Access tokens for Graph, Power BI and the Bot Connector (MSAL client credentials).

One long-lived MSAL ``ConfidentialClientApplication`` per resource, because MSAL's
token cache lives on the app object: ``acquire_token_for_client`` answers from that
cache and only calls Entra ID when the token is missing or within five minutes of
expiry. The app is built on first use, not at construction, because building it
performs the OpenID discovery request and a process that never sends (``plan``,
``validate``) must not need the network.

Pointing ``login_base_url`` at anything other than a Microsoft login host (the local
sandbox) turns MSAL's authority validation and instance discovery off. MSAL only
accepts ``https`` authorities; for a plain-``http`` sandbox on the loopback interface
the MSAL traffic goes through :class:`_LoopbackScheme`, which presents the sandbox
to MSAL as ``https`` and sends the requests as ``http``. That is refused for any host
other than loopback, so a client secret never crosses a network in clear text.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from m365perf.m365.errors import AuthError

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
POWERBI_SCOPE = "https://analysis.windows.net/powerbi/api/.default"
BOT_CONNECTOR_SCOPE = "https://api.botframework.com/.default"

# Entra error codes that mean "the login service is having a bad moment", not
# "your configuration is wrong".
_HTTP_STATUS = re.compile(r"HTTP Error: (\d{3})")
_TRANSIENT_AUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
    }
)


@runtime_checkable
class TokenProvider(Protocol):
    """Anything that can hand out a bearer token for one resource."""

    def token(self) -> str:
        """Return a currently valid access token (without the ``Bearer`` prefix)."""
        ...


@dataclass(frozen=True)
class StaticToken:
    """A fixed token: for tests and for services that issue their own."""

    value: str = field(repr=False)

    def token(self) -> str:
        """Return the fixed token."""
        return self.value


@dataclass(frozen=True)
class ClientCredential:
    """The app registration's proof of identity: a secret, or a certificate's key.

    ``private_key_pem`` and ``thumbprint`` (SHA-1, hex) are MSAL's certificate form;
    :meth:`from_pem_file` derives the thumbprint from the certificate in the file.
    """

    client_id: str
    secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    thumbprint: str | None = None
    passphrase: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id is empty: set M365PERF_CLIENT_ID")
        if bool(self.secret) == bool(self.private_key_pem):
            raise ValueError(
                "give exactly one of a client secret (M365PERF_CLIENT_SECRET) or a "
                "certificate (M365PERF_CERTIFICATE_PATH)"
            )
        if self.private_key_pem and not self.thumbprint:
            raise ValueError("a certificate credential needs its SHA-1 thumbprint")

    @classmethod
    def from_pem_file(
        cls, client_id: str, path: str, *, thumbprint: str = "", passphrase: str | None = None
    ) -> ClientCredential:
        """Read a PEM holding the private key and the certificate uploaded to Entra ID."""
        try:
            with open(path, encoding="ascii") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ValueError(f"cannot read certificate file {path}: {exc}") from exc
        if "PRIVATE KEY-----" not in pem:
            raise ValueError(f"{path} holds no private key")
        if not thumbprint:
            if "BEGIN CERTIFICATE" not in pem:
                raise ValueError(f"{path} holds no certificate; give the thumbprint instead")
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
            # SHA-1 because that is what Entra ID's x5t thumbprint is, not for security.
            thumbprint = cert.fingerprint(hashes.SHA1()).hex()
        return cls(client_id, private_key_pem=pem, thumbprint=thumbprint, passphrase=passphrase)

    def _msal_form(self) -> str | dict[str, str]:
        if self.secret:
            return self.secret
        assert self.private_key_pem is not None and self.thumbprint is not None
        form = {"private_key": self.private_key_pem, "thumbprint": self.thumbprint}
        if self.passphrase:
            form["passphrase"] = self.passphrase
        return form


class MsalTokenProvider:
    """Client-credentials tokens for one resource, cached by one MSAL app object."""

    def __init__(
        self,
        *,
        tenant_id: str,
        credential: ClientCredential,
        scopes: Sequence[str],
        login_base_url: str = "https://login.microsoftonline.com",
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        app_factory: Callable[..., Any] | None = None,
        share_app_of: MsalTokenProvider | None = None,
    ) -> None:
        """``share_app_of``: another resource's provider for the same tenant and credential,
        whose MSAL app (and so its one OpenID discovery and its token cache) this one uses."""
        if not tenant_id:
            raise ValueError("tenant_id is empty: set M365PERF_TENANT_ID")
        if not scopes:
            raise ValueError("at least one scope is needed")
        self._credential = credential
        self._scopes = list(scopes)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._app_factory = app_factory or msal.ConfidentialClientApplication
        self._authority, self._http_client, self._microsoft = _authority_for(
            login_base_url, tenant_id, self._session, timeout
        )
        self._app: Any = None
        self._lock = threading.Lock()
        self._shared = share_app_of
        if share_app_of is not None and (
            share_app_of._authority != self._authority or share_app_of._credential is not credential
        ):
            raise ValueError("an MSAL app is shared only by one tenant's and credential's tokens")
        # One token request at a time: MSAL answers from its cache once a token is in
        # it, but eight worker threads missing it together would each ask Entra ID.
        self._fetching = threading.Lock()

    @property
    def scopes(self) -> list[str]:
        """The scopes every token is requested for."""
        return list(self._scopes)

    def token(self) -> str:
        """Return a cached token, or fetch a new one from Entra ID (or the sandbox)."""
        app = self._get_app()
        try:
            with self._fetching:
                result = app.acquire_token_for_client(scopes=self._scopes)
        except requests.RequestException as exc:
            raise AuthError(f"token request failed: {type(exc).__name__}", transient=True) from exc
        except msal.exceptions.MsalServiceError as exc:
            # MSAL raises this for a 429 or 5xx from the token endpoint (its own
            # raise_for_status), where a 4xx with an error body comes back as a result.
            status = _HTTP_STATUS.search(str(exc))
            busy = status is not None and (status[1] == "429" or status[1].startswith("5"))
            raise AuthError(f"token request failed: {exc}", transient=busy) from exc
        if not isinstance(result, Mapping) or "access_token" not in result:
            raise _auth_error(result)
        return str(result["access_token"])

    def _get_app(self) -> Any:
        if self._shared is not None:
            return self._shared._get_app()
        with self._lock:
            if self._app is None:
                options: dict[str, Any] = {}
                if not self._microsoft:
                    options = {"validate_authority": False, "instance_discovery": False}
                try:
                    self._app = self._app_factory(
                        self._credential.client_id,
                        authority=self._authority,
                        client_credential=self._credential._msal_form(),
                        http_client=self._http_client,
                        **options,
                    )
                except requests.RequestException as exc:
                    raise AuthError(
                        f"cannot reach the login service at {self._authority}: "
                        f"{type(exc).__name__}",
                        transient=True,
                    ) from exc
                except ValueError as exc:
                    # MSAL raises ValueError for a failed OpenID discovery (wrong tenant,
                    # wrong base URL) and for an unusable credential.
                    raise AuthError(f"login configuration rejected: {exc}") from exc
            return self._app


def _auth_error(result: object) -> AuthError:
    if not isinstance(result, Mapping):
        return AuthError("token request returned nothing usable")
    code = str(result.get("error", "unknown_error"))
    description = str(result.get("error_description", "")).splitlines()[0:1]
    text = f"token request refused: {code}" + (f": {description[0]}" if description else "")
    return AuthError(text, transient=code in _TRANSIENT_AUTH_ERRORS)


@dataclass(frozen=True)
class LoginAuthority:
    """The tenant's authority as MSAL must see it, and how MSAL's requests reach it.

    For a plain-http loopback sandbox MSAL is shown ``https``; :meth:`browser_url` turns an
    address MSAL made (the sign-in page's) back into the one a browser can open.
    """

    authority: str
    http_client: Any
    microsoft: bool
    wire_base: str | None = None

    def msal_options(self) -> dict[str, Any]:
        """MSAL's keyword arguments: no authority validation off Microsoft's hosts."""
        options: dict[str, Any] = {"authority": self.authority, "http_client": self.http_client}
        if not self.microsoft:
            options.update(validate_authority=False, instance_discovery=False)
        return options

    def browser_url(self, url: str) -> str:
        if self.wire_base is None:
            return url
        shown = "https://" + self.wire_base.removeprefix("http://")
        return self.wire_base + url[len(shown) :] if url.startswith(shown) else url

    def get_json(self, url: str) -> Any:
        """GET a JSON document (discovery, keys) through the same client MSAL uses."""
        response = self.http_client.get(url)
        response.raise_for_status()
        return response.json()


def login_authority(
    login_base_url: str,
    tenant_id: str,
    session: requests.Session | None = None,
    timeout: tuple[float, float] = (5.0, 30.0),
) -> LoginAuthority:
    """The authority of ``tenant_id`` under ``login_base_url`` (Entra, or the sandbox)."""
    authority, client, microsoft = _authority_for(
        login_base_url, tenant_id, session or requests.Session(), timeout
    )
    wire = None
    if isinstance(client, _LoopbackScheme):
        wire = client._http
    return LoginAuthority(authority, client, microsoft, wire)


def _authority_for(
    login_base_url: str, tenant_id: str, session: requests.Session, timeout: tuple[float, float]
) -> tuple[str, Any, bool]:
    """Return (authority as MSAL must see it, http client for MSAL, is Microsoft's host)."""
    parts = urlsplit(login_base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"login_base_url is not an http(s) URL: {login_base_url!r}")
    host = parts.hostname.lower()
    microsoft = host in _MICROSOFT_LOGIN_HOSTS
    path = parts.path.rstrip("/")
    if parts.scheme == "https":
        authority = f"https://{parts.netloc}{path}/{tenant_id}"
        return authority, _SessionHttpClient(session, timeout), microsoft
    if not _is_loopback(host):
        raise ValueError(
            f"login_base_url {login_base_url!r} is plain http on a non-loopback host; "
            "client secrets would travel unencrypted. Use https."
        )
    authority = f"https://{parts.netloc}{path}/{tenant_id}"
    return authority, _LoopbackScheme(session, timeout, parts.netloc), False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _SessionHttpClient:
    """MSAL's minimal http client interface over our pooled session, with our timeouts."""

    def __init__(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        self._session = session
        self._timeout = timeout

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, params=params, data=data, headers=headers, **kwargs)

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, params=params, headers=headers, **kwargs)

    def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""


@dataclass
class _SchemeSwappedResponse:
    """What MSAL reads from a response: status, text, headers, raise_for_status."""

    status_code: int
    text: str
    headers: Mapping[str, str]
    _raw: requests.Response

    def raise_for_status(self) -> None:
        self._raw.raise_for_status()

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class _LoopbackScheme(_SessionHttpClient):
    """Let MSAL (https only) talk to a plain-http sandbox on 127.0.0.1.

    MSAL is given ``https://host:port/...``; requests leave as ``http://host:port/...``
    and every ``http://host:port`` in a response body (the discovery document's
    endpoints) is shown to MSAL as ``https://host:port``.
    """

    def __init__(self, session: requests.Session, timeout: tuple[float, float], netloc: str):
        super().__init__(session, timeout)
        self._https = f"https://{netloc}"
        self._http = f"http://{netloc}"

    def _wire(self, url: str) -> str:
        if url.startswith(self._https):
            return self._http + url[len(self._https) :]
        return url

    def _shown(self, response: requests.Response) -> _SchemeSwappedResponse:
        text = response.text.replace(self._http, self._https)
        return _SchemeSwappedResponse(response.status_code, text, response.headers, response)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        return self._shown(super().post(self._wire(url), params, data, headers, **kwargs))

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        return self._shown(super().get(self._wire(url), params, headers, **kwargs))
