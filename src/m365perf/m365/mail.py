"""E-mail through Graph ``sendMail``, including Outlook actionable messages.

An actionable message is an HTML e-mail whose ``<head>`` carries the adaptive card
as ``<script type="application/adaptivecard+json">``; Outlook drops the card unless
its ``originator`` is the provider id registered on the Actionable Email Developer
Dashboard. The body always carries a plain summary and a link, because many clients
(and every forwarded copy) show the body, not the card. The card sets
``hideOriginalBody`` so that Outlook, when it shows the card, does not show that body
under it as well; the link is a button (its address in ``href`` only, never as a long
line of text).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from m365perf.m365.http import ApiClient, Budgets

MAX_RECIPIENTS = 500


def actionable_html(
    card: Mapping[str, Any],
    *,
    originator: str,
    subject: str,
    summary: str,
    link: str = "",
    link_text: str = "Open in your browser",
) -> str:
    """The HTML of an actionable e-mail: card in the head, summary and link in the body.

    ``summary`` is plain text (escaped here; blank lines separate paragraphs). The link
    is drawn as a button (a styled table cell, which every mail client lays out).
    Without a ``link`` (no web form for this card, or no link key configured) the body
    is the summary alone.
    """
    if not originator:
        raise ValueError(
            "the actionable-message originator is empty (M365PERF_ACTIONABLE_ORIGINATOR); "
            "Outlook would strip the card"
        )
    if link and not link.startswith(("https://", "http://")):
        raise ValueError(f"the fallback link must be an http(s) URL, got {link!r}")
    if card.get("type") != "AdaptiveCard":
        raise ValueError("the card must be an AdaptiveCard")
    embedded = dict(card)
    embedded["originator"] = originator
    embedded["hideOriginalBody"] = True
    # "</" inside the JSON would end the script element early; "<\/" is the same JSON.
    card_json = json.dumps(embedded, ensure_ascii=False).replace("</", "<\\/")
    paragraphs = [p.strip() for p in summary.split("\n\n") if p.strip()]
    body = "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    anchor = _button(link, link_text) if link else ""
    return (
        "<html>\n<head>\n"
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        f"<title>{html.escape(subject)}</title>\n"
        f'<script type="application/adaptivecard+json">{card_json}</script>\n'
        "</head>\n<body>\n"
        f"{body}\n"
        f"{anchor}"
        "</body>\n</html>\n"
    )


_BUTTON_CELL = "border-radius:4px;background-color:#0f6cbd"
_BUTTON_LINK = (
    "display:inline-block;padding:10px 20px;border-radius:4px;color:#ffffff;"
    "background-color:#0f6cbd;font-family:'Segoe UI',Arial,sans-serif;font-size:15px;"
    "font-weight:600;text-decoration:none"
)


def _button(link: str, text: str) -> str:
    """A link that looks like a button in Outlook, Gmail and phone mail apps alike."""
    return (
        '<table role="presentation" border="0" cellspacing="0" cellpadding="0" '
        'style="margin:16px 0"><tr>'
        f'<td style="{_BUTTON_CELL}">'
        f'<a href="{html.escape(link, quote=True)}" style="{_BUTTON_LINK}">'
        f"{html.escape(text)}</a></td></tr></table>\n"
    )


class MailClient:
    """Sends mail from a service mailbox (app-only ``Mail.Send``)."""

    def __init__(self, api: ApiClient, budgets: Budgets, *, originator: str = "") -> None:
        self._api = api
        self._budgets = budgets
        self.originator = originator

    def send_mail(
        self,
        from_mailbox: str,
        to: Sequence[str],
        subject: str,
        html_body: str,
        *,
        cc: Sequence[str] = (),
        save_to_sent_items: bool = True,
        internet_headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue an HTML e-mail (Graph answers 202: accepted, not yet delivered).

        Spends from the sending mailbox's budget: at most four requests in flight per
        mailbox, and a 429 there pauses that mailbox only. Not retried after a timeout
        (that could send it twice); the dispatcher decides.
        """
        if not from_mailbox:
            raise ValueError("from_mailbox is empty (M365PERF_SERVICE_MAILBOX)")
        if not to:
            raise ValueError("an e-mail needs at least one recipient")
        if len(to) + len(cc) > MAX_RECIPIENTS:
            raise ValueError(f"more than {MAX_RECIPIENTS} recipients in one message")
        for name in internet_headers or {}:
            if not name.lower().startswith("x-"):
                raise ValueError(f"custom e-mail headers must start with 'x-': {name!r}")
        message: dict[str, Any] = {
            "subject": subject,
            "body": {"contentType": "HTML", "content": html_body},
            "toRecipients": [_recipient(a) for a in to],
        }
        if cc:
            message["ccRecipients"] = [_recipient(a) for a in cc]
        if internet_headers:
            message["internetMessageHeaders"] = [
                {"name": k, "value": v} for k, v in internet_headers.items()
            ]
        self._api.request(
            "POST",
            f"users/{quote(from_mailbox, safe='@')}/sendMail",
            json={"message": message, "saveToSentItems": save_to_sent_items},
            budget=self._budgets.mailbox(from_mailbox),
        )

    def send_card(
        self,
        from_mailbox: str,
        to: Sequence[str],
        subject: str,
        card: Mapping[str, Any],
        *,
        summary: str,
        link: str = "",
    ) -> None:
        """Send an actionable message with this client's registered originator."""
        body = actionable_html(
            card, originator=self.originator, subject=subject, summary=summary, link=link
        )
        self.send_mail(from_mailbox, to, subject, body)


def _recipient(address: str) -> dict[str, dict[str, str]]:
    if "@" not in address:
        raise ValueError(f"not an e-mail address: {address!r}")
    return {"emailAddress": {"address": address}}
