"""How a sandbox run is set up: where it listens, what it stores, how hard it pushes back.

The defaults are the documented Microsoft 365 budgets (m365-facts.md §3), so a
rehearsal meets the same limits as the tenant; tests pass much smaller ones.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _stable_guid(name: str) -> str:
    """A GUID that is the same on every machine, so seeded data and docs agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://m365perf.invalid/sandbox/{name}"))


DEFAULT_TENANT_ID = _stable_guid("tenant")
DEFAULT_CLIENT_ID = _stable_guid("app")
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_BOT_APP_ID = _stable_guid("bot")
DEFAULT_TEAMS_APP_CATALOG_ID = _stable_guid("teams-app-catalog")
DEFAULT_ORIGINATOR = _stable_guid("actionable-messages-provider")

ALL_APP_ROLES = (
    "TeamsAppInstallation.ReadWriteSelfForUser.All",
    "Sites.ReadWrite.All",
    "Sites.Manage.All",
    "User.Read.All",
    "Mail.Send",
    "Dataset.ReadWrite.All",
)


class Budget(BaseModel):
    """A token bucket: ``limit`` units refill evenly over ``window_s`` seconds.

    ``concurrency`` caps requests in flight at once (Outlook's four per mailbox).
    """

    model_config = ConfigDict(frozen=True)

    limit: float = Field(gt=0)
    window_s: float = Field(gt=0)
    concurrency: int | None = Field(default=None, ge=1)


def documented_budgets() -> dict[str, Budget]:
    """The published limits (facts §3), keyed by budget family.

    sharepoint: resource units per app per minute for a tenant under 1,000 licences;
    mailbox: per app and mailbox, 10,000 requests per 10 minutes and 4 concurrent;
    bot: 50 sends per second per app (UNCONFIRMED, facts §3.5);
    powerbi: not documented (UNCONFIRMED) - 120 a minute is a guess;
    directory: user look-ups, generous.
    """
    return {
        "sharepoint": Budget(limit=1250, window_s=60),
        "mailbox": Budget(limit=10_000, window_s=600, concurrency=4),
        "bot": Budget(limit=50, window_s=1),
        "powerbi": Budget(limit=120, window_s=60),
        "directory": Budget(limit=3_500, window_s=10),
    }


class Faults(BaseModel):
    """Shares of requests to break, drawn from a seeded RNG so a run can be replayed.

    ``slow`` holds the response back ``slow_s`` seconds *after* the handler ran (the
    write happened; a client with a shorter read timeout never hears so), like ``drop``.
    """

    model_config = ConfigDict(frozen=True)

    share_503: float = Field(default=0.0, ge=0, le=1)
    share_slow: float = Field(default=0.0, ge=0, le=1)
    share_drop: float = Field(default=0.0, ge=0, le=1)
    share_429: float = Field(default=0.0, ge=0, le=1)
    slow_s: float = Field(default=2.0, ge=0)
    retry_after_s: int = Field(default=1, ge=0)
    token_endpoint: bool = False
    """Break the token endpoint too (off by default: test helpers fetch tokens there)."""

    @classmethod
    def mixed(cls, rate: float, *, slow_s: float = 4.0) -> Faults:
        """``rate`` of all requests broken, the token endpoint's too: 30% of it each 429,
        503 and drops after the write, 10% slow responses."""
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate {rate} is not between 0 and 1")
        return cls(
            share_429=0.3 * rate,
            share_503=0.3 * rate,
            share_drop=0.3 * rate,
            share_slow=0.1 * rate,
            slow_s=slow_s,
            token_endpoint=True,
        )

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Read the CLI's ``--faults``: shares such as ``503=0.1,429=0.1,slow=0.05,drop=0.02``,
        or one rate such as ``0.2`` for :meth:`mixed`; ``retry_after=S`` and ``slow_s=S``
        set the Retry-After given and how long a slow response takes."""
        names = {"503": "share_503", "429": "share_429", "slow": "share_slow", "drop": "share_drop"}
        timings = {"retry_after": "retry_after_s", "slow_s": "slow_s"}
        values: dict[str, float | bool] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, raw = (s.strip() for s in part.partition("="))
            if not sep:
                name, raw = "", name
            if name and name not in names and name not in timings:
                raise ValueError(
                    f"bad fault {part!r}: expected NAME=SHARE with NAME one of 503, 429, slow, "
                    "drop (or retry_after=S, slow_s=S), or one rate such as 0.2"
                )
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"bad fault value {raw!r} in {part!r}: not a number") from None
            if not name:
                values.update(cls.mixed(number).model_dump(exclude={"retry_after_s"}))
            elif name in timings:
                values[timings[name]] = int(number) if name == "retry_after" else number
            else:
                values[names[name]] = number
        shares = [v for k, v in values.items() if k.startswith("share_")]
        if sum(shares) > 1:
            raise ValueError("fault shares add up to more than 1")
        return cls.model_validate(values)

    @property
    def any(self) -> bool:
        return bool(self.share_503 or self.share_slow or self.share_drop or self.share_429)


class SandboxApp(BaseModel):
    """An app registration the token endpoint knows: a secret, a certificate, or both."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: str | None = None
    certificate_pem: str | None = None
    roles: tuple[str, ...] = ALL_APP_ROLES
    redirect_uris: tuple[str, ...] = ()
    """Where sign-in may send a code back; none registered means any loopback address."""
    powerbi: bool = True
    """False: Power BI refuses the app (401), as when the tenant setting for service
    principals leaves it out or it is not a member of the workspace. Entra still issues
    its Power BI token: access is Power BI's decision, not an app role."""
    rbac_mail_send: tuple[str, ...] = ()
    """Mailboxes Exchange's RBAC for Applications lets the app send from ("Application
    Mail.Send" scoped to them). Like the real grant it is not in the token's roles."""


class SandboxConfig(BaseModel):
    """Everything a sandbox process needs; serialisable so a test can start one in a subprocess."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    tls: bool = True
    tls_port: int = Field(default=8766, ge=0, le=65535)
    data_dir: Path = Path("sandbox-data")

    tenant_id: str = DEFAULT_TENANT_ID
    mail_domain: str = "contoso.gov.uk"
    apps: tuple[SandboxApp, ...] = (
        SandboxApp(client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET),
    )
    bot_app_id: str = DEFAULT_BOT_APP_ID
    teams_app_catalog_id: str = DEFAULT_TEAMS_APP_CATALOG_ID
    actionable_originator: str = DEFAULT_ORIGINATOR
    bot_name: str = "Performance returns"
    bot_endpoint: str = "http://127.0.0.1:8080/api/messages"

    sharepoint_host: str = "contoso.sharepoint.com"
    site_path: str = "/sites/performance"
    page_size: int = Field(default=5, ge=1)
    batch_shuffle: bool = True

    throttle: bool = True
    budgets: dict[str, Budget] = Field(default_factory=documented_budgets)
    faults: Faults = Faults()
    rng_seed: int = 20240401

    mail_latency_s: float = Field(
        default=0.0, ge=0, description="How long sendMail takes; lets requests overlap."
    )
    powerbi_refresh_s: float = Field(default=5.0, ge=0)
    powerbi_daily_limit: int = Field(default=8, ge=0)
    token_lifetime_s: int = Field(default=3599, ge=1)
    renderer_dir: Path | None = None
    """Where Microsoft's Adaptive Cards renderer is (``node_modules/adaptivecards/dist``);
    None: the repository's or the working directory's ``node_modules`` (``renderer.py``)."""

    @field_validator("site_path")
    @classmethod
    def _leading_slash(cls, value: str) -> str:
        return "/" + value.strip("/")

    @property
    def http_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def https_base_url(self) -> str | None:
        return f"https://{self.host}:{self.tls_port}" if self.tls else None

    @property
    def issuer(self) -> str:
        """Fixed, not derived from the ports, so tokens stay valid across a restart."""
        return f"https://login.m365perf-sandbox.invalid/{self.tenant_id}/v2.0"

    @property
    def service_url(self) -> str:
        """The Bot Connector serviceUrl the sandbox stamps on activities it sends."""
        return f"{self.http_base_url}/botframework/"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the TLS listener's certificate: give it to clients as ``verify``."""
        return self.data_dir / "tls" / "ca.pem"

    def budget(self, family: str) -> Budget | None:
        return self.budgets.get(family)

    def settings_overrides(self) -> dict[str, str]:
        """Values for ``m365perf.settings.load_settings`` that point the service at this sandbox."""
        app = self.apps[0]
        return {
            "tenant_id": self.tenant_id,
            "client_id": app.client_id,
            "client_secret": app.client_secret or "",
            "bot_app_id": self.bot_app_id,
            "teams_app_catalog_id": self.teams_app_catalog_id,
            "actionable_originator": self.actionable_originator,
            "service_mailbox": f"performance@{self.mail_domain}",
            "graph_base_url": f"{self.http_base_url}/v1.0",
            "powerbi_base_url": f"{self.http_base_url}/powerbi/v1.0/myorg",
            "bot_connector_base_url": self.service_url,
            # Plain http: m365perf.m365.auth shows a loopback http sandbox to MSAL as https.
            # The TLS listener (https_base_url + ca_file) is there for clients that want it.
            "login_base_url": self.http_base_url,
            "openid_metadata_url": (
                f"{self.http_base_url}/botframework/v1/.well-known/openidconfiguration"
            ),
            "bot_token_issuer": "https://api.botframework.com",
        }
