"""Build the four clients from :class:`~m365perf.settings.Settings`, sharing one of everything.

One pooled session, one set of budgets, one MSAL app per resource: built once per
process and handed to whoever sends (the dispatcher, the sync step, ``doctor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from m365perf.m365.auth import (
    BOT_CONNECTOR_SCOPE,
    GRAPH_SCOPE,
    POWERBI_SCOPE,
    ClientCredential,
    MsalTokenProvider,
    TokenProvider,
)
from m365perf.m365.graph import GraphClient
from m365perf.m365.http import (
    ApiClient,
    BudgetLedger,
    Budgets,
    Clock,
    HttpCore,
    Limits,
    RetryPolicy,
    new_session,
    sharepoint_band,
)
from m365perf.m365.mail import MailClient
from m365perf.m365.powerbi import PowerBIClient
from m365perf.m365.teams import BotConnectorClient
from m365perf.m365.traffic import Traffic
from m365perf.settings import Settings


@dataclass(frozen=True)
class Tokens:
    """One token provider per resource; a test or the sandbox may pass static ones."""

    graph: TokenProvider
    powerbi: TokenProvider
    bot: TokenProvider


@dataclass
class M365:
    """Everything that talks to Microsoft 365, sharing one session and one set of budgets."""

    graph: GraphClient
    mail: MailClient
    teams: BotConnectorClient
    powerbi: PowerBIClient
    budgets: Budgets
    session: requests.Session
    traffic: Traffic = field(default_factory=Traffic)
    """Requests, 429s and latency by service, for ``/metrics``."""

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()


def tokens_from_settings(
    settings: Settings,
    session: requests.Session,
    *,
    bot_tenant: str | None = None,
    graph_scope: str = GRAPH_SCOPE,
    powerbi_scope: str = POWERBI_SCOPE,
    bot_scope: str = BOT_CONNECTOR_SCOPE,
) -> Tokens:
    """MSAL providers for Graph, Power BI and the Bot Connector.

    The bot's authority is the tenant (single-tenant bot, the only kind Azure still
    creates); pass ``bot_tenant="botframework.com"`` for a legacy multi-tenant bot.
    """
    credential = _credential(settings)
    timeout = (settings.connect_timeout_s, settings.read_timeout_s)

    def make_provider(
        scope: str, tenant: str, share: MsalTokenProvider | None = None
    ) -> MsalTokenProvider:
        return MsalTokenProvider(
            tenant_id=tenant,
            credential=credential,
            scopes=[scope],
            login_base_url=settings.login_base_url,
            session=session,
            timeout=timeout,
            share_app_of=share,
        )

    # One MSAL app per tenant: one OpenID discovery, one token cache for every resource.
    graph = make_provider(graph_scope, settings.tenant_id)
    bot_tenant = bot_tenant or settings.tenant_id
    return Tokens(
        graph=graph,
        powerbi=make_provider(powerbi_scope, settings.tenant_id, graph),
        bot=make_provider(
            bot_scope, bot_tenant, graph if bot_tenant == settings.tenant_id else None
        ),
    )


def limits_from_settings(settings: Settings) -> Limits:
    """The tenant's limits: its SharePoint licence band (or overrides), bot and mailbox rates."""
    per_minute, per_day = sharepoint_band(settings.sharepoint_licences)
    return Limits(
        sharepoint_ru_per_minute=settings.sharepoint_ru_per_minute or per_minute,
        sharepoint_ru_per_day=settings.sharepoint_ru_per_day or per_day,
        mailbox_concurrency=settings.mailbox_concurrency,
        mailbox_per_10_minutes=settings.mailbox_per_10_minutes,
        bot_sends_per_second=settings.bot_sends_per_second,
        bot_conversation_burst=settings.bot_conversation_burst,
        bot_conversation_per_30s=settings.bot_conversation_per_30s,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts),
    )


def clients_from_settings(
    settings: Settings,
    *,
    limits: Limits | None = None,
    tokens: Tokens | None = None,
    clock: Clock | None = None,
    session: requests.Session | None = None,
    ledger: BudgetLedger | None = None,
) -> M365:
    """The four clients, pointed at the configured base URLs (the cloud or the sandbox).

    ``ledger``: where the budgets are kept; None keeps them in this process's memory.
    """
    session = session or new_session(settings.user_agent)
    limits = limits or limits_from_settings(settings)
    budgets = Budgets(limits, clock, ledger=ledger)
    traffic = Traffic()
    core = HttpCore(
        session,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        clock=budgets.clock,
        traffic=traffic,
    )
    tokens = tokens or tokens_from_settings(settings, session)
    retry = budgets.limits.retry
    graph_api = ApiClient(
        core, settings.graph_base_url, tokens=tokens.graph, budget=budgets.graph, retry=retry
    )
    powerbi_api = ApiClient(
        core, settings.powerbi_base_url, tokens=tokens.powerbi, budget=budgets.powerbi, retry=retry
    )
    bot_host = urlsplit(settings.bot_connector_base_url).hostname
    return M365(
        graph=GraphClient(
            graph_api, sharepoint=budgets.sharepoint, batch_rounds=budgets.limits.batch_rounds
        ),
        mail=MailClient(graph_api, budgets, originator=settings.actionable_originator),
        teams=BotConnectorClient(
            core,
            tokens=tokens.bot,
            budget=budgets.bot,
            retry=retry,
            extra_hosts=[bot_host] if bot_host else [],
            conversation_budget=budgets.conversation,
        ),
        powerbi=PowerBIClient(powerbi_api),
        budgets=budgets,
        session=session,
        traffic=traffic,
    )


def credential_from_settings(settings: Settings) -> ClientCredential:
    """The app registration's credential (secret or certificate) from settings."""
    return _credential(settings)


def _credential(settings: Settings) -> ClientCredential:
    if not settings.has_tenant:
        raise ValueError("set M365PERF_TENANT_ID and M365PERF_CLIENT_ID to talk to Microsoft 365")
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    if secret and settings.certificate_path:
        raise ValueError("set a client secret or a certificate, not both")
    if settings.certificate_path:
        return ClientCredential.from_pem_file(
            settings.client_id,
            str(settings.certificate_path),
            thumbprint=settings.certificate_thumbprint,
        )
    return ClientCredential(settings.client_id, secret=secret)
