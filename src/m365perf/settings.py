"""Service settings, read from the environment (prefix ``M365PERF_``) and a ``.env`` file.

Every Microsoft 365 base URL is a setting so the same client code talks to a tenant
or to the local sandbox; only URLs and trusted token issuers differ.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_LINK_SECRET_CHARS = 32
"""A link key shorter than this is guessable; 32 URL-safe characters carry 192 bits."""


class Settings(BaseSettings):
    """What the service needs to know about its tenant, its store and its endpoints."""

    model_config = SettingsConfigDict(
        env_prefix="M365PERF_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Tenant and app registration
    tenant_id: str = Field("", description="Entra ID tenant (directory) id.")
    client_id: str = Field("", description="Application (client) id of the app registration.")
    client_secret: SecretStr | None = Field(None, description="Client secret, or use a cert.")
    certificate_path: Path | None = Field(None, description="PEM with private key and cert.")
    certificate_thumbprint: str = Field("", description="SHA-1 thumbprint of that cert.")
    service_mailbox: str = Field("", description="Mailbox that sends requests and chasers.")
    bot_app_id: str = Field("", description="Microsoft App ID of the bot (token audience).")
    actionable_originator: str = Field("", description="Actionable Messages originator id.")
    public_base_url: str = Field(
        "http://127.0.0.1:8080", description="Where officers' clients reach this service."
    )

    # Web-form links (partners without a council account, clients without cards)
    link_secret: SecretStr | None = Field(
        None, description="HMAC key signing web-form links; none set means no links are sent."
    )
    link_lifetime_days: int = Field(
        30, ge=1, le=366, description="Days a web-form link works after it is sent."
    )

    # Store
    database_url: str = Field(
        "sqlite:///m365perf.db", description="SQLAlchemy URL; PostgreSQL in production."
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

    @field_validator("link_secret", mode="before")
    @classmethod
    def _blank_secret_is_none(cls, value: object) -> object:
        """``M365PERF_LINK_SECRET=`` (left empty, as in .env.example) means no links."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("link_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_LINK_SECRET_CHARS:
            raise ValueError(
                f"must be at least {MIN_LINK_SECRET_CHARS} characters: a short key can be "
                "guessed, and with it anyone could make links. Make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @property
    def has_tenant(self) -> bool:
        """True when credentials for a tenant (or the sandbox) are configured."""
        return bool(self.tenant_id and self.client_id)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, applying explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
