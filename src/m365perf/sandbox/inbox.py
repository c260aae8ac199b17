"""A plain HTML inbox per user: the Teams cards and mails the service sent them.

For now a card is shown as its JSON, readably; rendering Adaptive Cards properly
(and clicking them) comes with the demo work.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from m365perf.sandbox.core import sandbox_of
from m365perf.sandbox.teams import chats_of

router = APIRouter(prefix="/_sandbox")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.item { border: 1px solid #ccc; border-radius: 6px; padding: .75rem 1rem; margin: .75rem 0; }
.meta { color: #666; font-size: .85rem; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; font-size: .8rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .8rem; text-align: left; }
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en-GB'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _card_block(card: dict[str, Any] | None) -> str:
    if card is None:
        return "<p class='meta'>No card.</p>"
    return f"<details open><summary>Adaptive card</summary><pre>{escape(json.dumps(card, indent=2))}</pre></details>"  # noqa: E501


@router.get("/")
async def index(request: Request) -> Response:
    rows = "".join(
        f"<tr><td><a href='/_sandbox/inbox/{quote(u.upn)}'>{escape(u.display_name)}</a></td>"
        f"<td>{escape(u.job_title)}</td><td>{escape(u.department)}</td>"
        f"<td>{escape(u.upn)}</td></tr>"
        for u in sandbox_of(request).store.users()
    )
    return _page(
        "Sandbox directory",
        "<h1>Sandbox directory</h1><table><tr><th>Name</th><th>Role</th><th>Service</th>"
        f"<th>UPN</th></tr>{rows}</table>",
    )


@router.get("/inbox/{upn}")
async def inbox(upn: str, request: Request) -> Response:
    sandbox = sandbox_of(request)
    user = sandbox.store.user(upn)
    title = user.display_name if user else upn
    parts = [f"<h1>Inbox of {escape(title)}</h1><p><a href='/_sandbox/'>All users</a></p>"]
    parts.append("<h2>Teams chat with the bot</h2>")
    activities = [a for chat in chats_of(sandbox, user) for a in chat["activities"]] if user else []
    if not activities:
        parts.append("<p class='meta'>No Teams messages.</p>")
    for activity in activities:
        parts.append(
            "<div class='item'>"
            f"<div class='meta'>Message {escape(activity['id'])}"
            f" · sent {escape(activity['created'])}"
            f" · updated {escape(activity['updated'])}</div>"
            f"<p>{escape(activity.get('summary') or activity.get('text') or '')}</p>"
            f"{_card_block(activity['card'])}</div>"
        )
    parts.append("<h2>Mail</h2>")
    messages = [
        m for m in sandbox.store.messages(user.mail if user else upn) if m.folder == "inbox"
    ]
    if not messages:
        parts.append("<p class='meta'>No mail.</p>")
    for message in messages:
        sender = message.message.get("from", {}).get("emailAddress", {}).get("address", "")
        body = message.message.get("body", {})
        preview = (
            f"<iframe sandbox srcdoc='{escape(body.get('content', ''), quote=True)}' "
            "style='width:100%;height:12rem;border:1px solid #eee'></iframe>"
            if str(body.get("contentType", "")).lower() == "html"
            else f"<pre>{escape(body.get('content', ''))}</pre>"
        )
        parts.append(
            "<div class='item'>"
            f"<div class='meta'>From {escape(sender)} · {escape(message.received)} · id "
            f"{escape(message.id)}</div><p><strong>{escape(message.message.get('subject', ''))}"
            f"</strong></p>{preview}{_card_block(message.card)}"
            f"<p class='meta'>{escape(message.message.get('cardNote') or '')}</p></div>"
        )
    return _page(f"Inbox of {title}", "".join(parts))
