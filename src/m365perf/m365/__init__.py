"""Microsoft 365 clients: Graph (SharePoint lists, users, mail), Bot Connector, Power BI.

This layer talks to Microsoft 365 and decides nothing: errors say whether they are
``transient`` and how long the service asked us to wait (``retry_after``); what to
do about it is the dispatcher's call. Start from :func:`clients_from_settings`.
"""

from __future__ import annotations

from m365perf.m365.factory import M365, Tokens, clients_from_settings, tokens_from_settings

__all__ = ["M365", "Tokens", "clients_from_settings", "tokens_from_settings"]
