"""Service settings, read from the environment (prefix ``M365PERF_``) and a ``.env`` file.

Every Microsoft 365 base URL is a setting so the same client code talks to a tenant
or to the local sandbox; only URLs and trusted token issuers differ.

A setting left blank (``M365PERF_CERTIFICATE_PATH=``, as ``config/.env.example`` leaves
several) is unset: its default applies. A bad value is a pydantic ``ValidationError``;
:func:`settings_problems` words it as one line per variable, which the command line prints
instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "M365PERF_"

MIN_LINK_SECRET_CHARS = 32
"""A link key shorter than this is guessable; 32 URL-safe characters carry 192 bits."""


_URL_SETTINGS = (
    "public_base_url",
    "graph_base_url",
    "powerbi_base_url",
    "bot_connector_base_url",
    "login_base_url",
    "openid_metadata_url",
    "bot_token_issuer",
    "staff_base_url",
)


class Settings(BaseSettings):
    """What the service needs to know about its tenant, its store and its endpoints."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    # Tenant and app registration
    tenant_id: str = Field("", description="Entra ID tenant (directory) id.")
    client_id: str = Field("", description="Application (client) id of the app registration.")
    client_secret: SecretStr | None = Field(None, description="Client secret, or use a cert.")
    certificate_path: Path | None = Field(None, description="PEM with private key and cert.")
    certificate_thumbprint: str = Field("", description="SHA-1 thumbprint of that cert.")
    service_mailbox: str = Field("", description="Mailbox that sends requests and chasers.")
    bot_app_id: str = Field("", description="Microsoft App ID of the bot (token audience).")
    teams_app_catalog_id: str = Field(
        "",
        description="The Teams app's id in the org app catalog: installed for a user whose "
        "1:1 chat cannot be opened; blank: never installed, such cards go by e-mail.",
    )
    actionable_originator: str = Field("", description="Actionable Messages originator id.")
    public_base_url: str = Field(
        "http://127.0.0.1:8080", description="Where officers' clients reach this service."
    )
    privacy_url: str = Field(
        "", description="The Teams app's privacy link; blank: this service's public /about."
    )
    terms_url: str = Field(
        "", description="The Teams app's terms-of-use link; blank: this service's /about."
    )

    # Web-form links (partners without a council account, clients without cards)
    link_secret: SecretStr | None = Field(
        None, description="HMAC key signing web-form links; none set means no links are sent."
    )
    link_lifetime_days: int = Field(
        30, ge=1, le=366, description="Days a web-form link works after it is sent."
    )

    # Sign-in on the web (Entra ID) and the staff listener
    session_secret: SecretStr | None = Field(
        None, description="Key sealing sign-in cookies; none set means no sign-in, no staff pages."
    )
    session_hours: int = Field(8, ge=1, le=24, description="Hours a web sign-in lasts.")
    staff_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve sign-in, approvals and status on this second port only.",
    )
    staff_host: str = Field("127.0.0.1", description="Address the staff listener binds.")
    staff_base_url: str | None = Field(
        None, description="Where staff reach the staff listener (default: public_base_url)."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a Prometheus scraper sends for /metrics; none set means "
        "only signed-in staff may read it.",
    )

    # Store
    database_url: str = Field(
        "sqlite:///m365perf.db", description="SQLAlchemy URL; PostgreSQL in production."
    )
    migrate_on_start: bool = Field(
        True, description="`serve` upgrades the schema first; false when `db upgrade` does."
    )

    # Running several instances, and logs
    clock_takeover_s: float = Field(
        15.0,
        gt=0,
        le=60,
        description="Seconds between an instance's tries to take the scheduler clock.",
    )
    outage_retry_cap_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Longest wait between tries while Microsoft 365 cannot be reached at all.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or one JSON object a line for a collector."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="The least serious log record written."
    )

    # Microsoft 365 endpoints (point them at the sandbox for a rehearsal)
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    powerbi_base_url: str = "https://api.powerbi.com/v1.0/myorg"
    bot_connector_base_url: str = "https://smba.trafficmanager.net/uk/"
    login_base_url: str = "https://login.microsoftonline.com"
    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    bot_token_issuer: str = "https://api.botframework.com"

    # Client behaviour
    user_agent: str = "ISV|m365perf|m365perf/0.1"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    http_max_attempts: int = Field(
        5,
        ge=1,
        le=10,
        description="Tries of one Microsoft 365 request (throttled, busy, dropped) before "
        "its error reaches the caller; the outbox then tries the whole send again later.",
    )

    # The tenant's Microsoft 365 limits (facts §3, §9): defaults are the documented figures
    sharepoint_licences: int = Field(
        1000,
        ge=0,
        description="Licences in the tenant: picks SharePoint's resource units per app a "
        "minute and a day (up to 1,000: 1,250 and 1.2 million; 5,000: 2,500 and 2.4 "
        "million; 15,000: 3,750; 50,000: 5,000; more: 6,250 and 6 million).",
    )
    sharepoint_ru_per_minute: float | None = Field(
        None, gt=0, description="Override the licence band's resource units a minute."
    )
    sharepoint_ru_per_day: float | None = Field(
        None, gt=0, description="Override the licence band's resource units a day."
    )
    bot_sends_per_second: float = Field(
        50, gt=0, le=50, description="Bot Connector requests a second for the app (≤ 50)."
    )
    bot_conversation_burst: int = Field(
        5,
        ge=1,
        le=7,
        description="Bot sends to one conversation at once (Teams allows 7 a second).",
    )
    bot_conversation_per_30s: float = Field(
        60, gt=0, le=60, description="Bot sends to one conversation in 30 seconds (≤ 60)."
    )
    mailbox_concurrency: int = Field(
        4, ge=1, le=4, description="Requests in flight per mailbox (Outlook allows 4)."
    )
    mailbox_per_10_minutes: float = Field(
        10_000,
        gt=0,
        le=10_000,
        description="Requests per mailbox in ten minutes (Outlook allows 10,000).",
    )
    shared_budgets: bool | None = Field(
        None,
        description="Keep budgets and Retry-After pauses in the database, so every serve "
        "process on it spends from one allowance. Default: on for PostgreSQL, off for "
        "SQLite (one process).",
    )
    outbox_idle_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="Seconds serve waits before looking at the outbox again once nothing "
        "is due; while rows are due it drains without pause.",
    )

    # Work in progress (outbox rows, timers)
    worker_lease_s: float = Field(
        300,
        gt=0,
        description="Seconds a worker's claim on an outbox row or timer lasts; after a "
        "crash its work waits this long before another worker takes it.",
    )
    outbox_give_up_s: float = Field(
        3600,
        gt=0,
        description="A row failing for a passing reason (throttled, busy, not yet) is "
        "parked only after 8 attempts and this long since it was queued; longer than "
        "the lease.",
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """A blank value, from the environment, a ``.env`` file or a keyword, means unset.

        Without this a blank ``M365PERF_CERTIFICATE_PATH`` is ``Path("")``, the current
        folder, and a blank secret is a secret.
        """
        if isinstance(data, dict):
            return {
                key: value
                for key, value in data.items()
                if not (isinstance(value, str) and not value.strip())
            }
        return data

    @field_validator(*_URL_SETTINGS)
    @classmethod
    def _an_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as https://host/path, not {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, value: str) -> str:
        scheme, found, _ = value.partition("://")
        if not found or scheme.split("+")[0] not in ("sqlite", "postgresql"):
            raise ValueError(
                "must be sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DATABASE"
            )
        return value

    @field_validator("certificate_path")
    @classmethod
    def _certificate_is_a_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file at {value}: give the PEM holding the key and certificate")
        return value

    @field_validator("link_secret", "session_secret", "metrics_token")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_LINK_SECRET_CHARS:
            raise ValueError(
                f"must be at least {MIN_LINK_SECRET_CHARS} characters: a short key can be "
                "guessed, and with it anyone could make links. Make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> Settings:
        if self.client_secret is not None and self.certificate_path is not None:
            raise ValueError(
                f"{ENV_PREFIX}CLIENT_SECRET and {ENV_PREFIX}CERTIFICATE_PATH are both set: "
                "the app signs in with one of them, so leave the other blank"
            )
        return self

    @model_validator(mode="after")
    def _give_up_after_the_lease(self) -> Settings:
        if self.outbox_give_up_s <= self.worker_lease_s:
            raise ValueError(
                f"{ENV_PREFIX}OUTBOX_GIVE_UP_S must be longer than {ENV_PREFIX}WORKER_LEASE_S: "
                "a card update waiting on a crashed worker's send would be given up before "
                "that worker's lease lapses"
            )
        return self

    @model_validator(mode="after")
    def _conversation_burst_fits(self) -> Settings:
        if self.bot_conversation_burst >= self.bot_conversation_per_30s:
            raise ValueError(
                f"{ENV_PREFIX}BOT_CONVERSATION_BURST must be less than "
                f"{ENV_PREFIX}BOT_CONVERSATION_PER_30S: the burst is part of the 30 seconds"
            )
        return self

    @property
    def uses_shared_budgets(self) -> bool:
        """True when budgets live in the database (explicitly, or PostgreSQL by default)."""
        if self.shared_budgets is not None:
            return self.shared_budgets
        return self.database_url.startswith("postgresql")

    @property
    def staff_url(self) -> str:
        """Where staff open the sign-in, approvals and status pages."""
        return (self.staff_base_url or self.public_base_url).rstrip("/")

    @property
    def has_web_signin(self) -> bool:
        """True when people can sign in on the web: a session key and an app credential."""
        credential = self.client_secret is not None or self.certificate_path is not None
        return self.session_secret is not None and self.has_tenant and credential

    @property
    def has_tenant(self) -> bool:
        """True when credentials for a tenant (or the sandbox) are configured."""
        return bool(self.tenant_id and self.client_id)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, applying explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def settings_problems(error: ValidationError) -> list[str]:
    """One line per bad setting, naming its variable and never echoing its value."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        names = [str(part) for part in problem["loc"] if isinstance(part, str)]
        field = names[0] if names else ""
        lines.append(f"{ENV_PREFIX}{field.upper()}: {message}" if field else message)
    return lines


def is_settings_error(error: BaseException) -> bool:
    """True for the error :func:`load_settings` raises on a bad setting."""
    return isinstance(error, ValidationError) and error.title == Settings.__name__
