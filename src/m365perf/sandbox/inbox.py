"""A live inbox per user: their Teams chat with the bot and their mailbox, cards drawn.

``/_sandbox/inbox/{user}`` is a page that draws each card with Microsoft's renderer and
the host config of the client it came to (Teams or Outlook, ``renderer.py``). A click on
an ``Action.Execute`` posts to ``/_sandbox/act``, which signs the invoke as the Bot
Framework does and sends it to the service; the page then re-reads
``/_sandbox/inbox/{user}/items`` and redraws every item whose card changed. It re-reads
every few seconds too, so a card the service sends later (an approval, a rejection)
appears without a reload; an item whose card did not change is left alone, so nothing
typed into it is lost.
"""

from __future__ import annotations

import hashlib
import json
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from m365perf.sandbox.core import Sandbox, sandbox_of
from m365perf.sandbox.renderer import HOST_CONFIGS, find_renderer, host_config
from m365perf.sandbox.store import UserRow
from m365perf.sandbox.teams import chats_of

router = APIRouter(prefix="/_sandbox")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .8rem; text-align: left; }
.problem { border: 2px solid #a4262c; padding: 1rem; background: #fde7e9; }
"""


def _page(title: str, body: str, head: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en-GB'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><link rel='icon' href='data:,'>"
        f"<style>{_STYLE}</style>{head}</head>"
        f"<body><main>{body}</main></body></html>"
    )


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


def _version(*parts: Any) -> str:
    """Changes whenever what the item shows changes: the page redraws on that alone."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def inbox_items(sandbox: Sandbox, user: UserRow) -> list[dict[str, Any]]:
    """The user's Teams messages (oldest first, as a chat reads) then mail (newest first)."""
    items: list[dict[str, Any]] = []
    for chat in chats_of(sandbox, user):
        for activity in chat["activities"]:
            items.append(
                {
                    "key": f"teams:{activity['id']}",
                    "channel": "teams",
                    "sent": activity["created"],
                    "updated": activity["updated"],
                    "text": activity.get("summary") or activity.get("text") or "",
                    "card": activity["card"],
                    "target": {
                        "conversation_id": chat["conversationId"],
                        "activity_id": activity["id"],
                    },
                    "version": _version(activity["updated"], activity["card"]),
                }
            )
    mails = [m for m in sandbox.store.messages(user.mail.lower()) if m.folder == "inbox"]
    for message in reversed(mails):
        body = message.message.get("body", {})
        sender = message.message.get("from", {}).get("emailAddress", {})
        items.append(
            {
                "key": f"mail:{message.id}",
                "channel": "outlook",
                "sent": message.received,
                "from": sender.get("name") or sender.get("address") or "",
                "subject": message.message.get("subject", ""),
                "html": str(body.get("contentType", "")).lower() == "html",
                "body": body.get("content", ""),
                "card": message.card,
                "card_note": message.message.get("cardNote") or "",
                "target": {"message_id": message.id},
                "version": _version(message.card),
            }
        )
    return items


@router.get("/inbox/{upn}/items")
async def items(upn: str, request: Request) -> Response:
    sandbox = sandbox_of(request)
    user = sandbox.store.user(upn)
    if user is None:
        return JSONResponse({"error": f"no user {upn!r} in the sandbox directory"}, 404)
    return JSONResponse(
        {"user": user.upn, "name": user.display_name, "items": inbox_items(sandbox, user)}
    )


def _json_script(element_id: str, value: Any) -> str:
    """JSON for the page's script, safe inside ``<script>`` (no ``</script>`` can close it)."""
    text = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<script type='application/json' id='{element_id}'>{text}</script>"


@router.get("/inbox/{upn}")
async def inbox(upn: str, request: Request) -> Response:
    sandbox = sandbox_of(request)
    user = sandbox.store.user(upn)
    if user is None:
        page = _page(
            "No such user",
            f"<h1>No user {escape(upn)}</h1><p><a href='/_sandbox/'>All users</a></p>",
        )
        page.status_code = 404
        return page
    renderer = find_renderer(sandbox.config.renderer_dir)
    if renderer.dist is None:
        return HTMLResponse(
            _page(
                "Renderer missing",
                f"<h1>Inbox of {escape(user.display_name)}</h1>"
                f"<p class='problem' role='alert'>{escape(renderer.problem or '')}</p>",
            ).body,
            status_code=503,
        )
    settings = {
        "user": user.upn,
        "name": user.display_name,
        "items": f"/_sandbox/inbox/{quote(user.upn)}/items",
        "act": "/_sandbox/act",
        "bot": sandbox.config.bot_name,
        "hostConfigs": {channel: host_config(channel) for channel in HOST_CONFIGS},
    }
    head = (
        "<link rel='stylesheet' href='/_sandbox/assets/adaptivecards.css'>"
        "<link rel='stylesheet' href='/_sandbox/assets/inbox.css'>"
        f"{_json_script('inbox-settings', settings)}"
        "<script src='/_sandbox/assets/adaptivecards.min.js' defer></script>"
        "<script src='/_sandbox/assets/inbox.js' defer></script>"
    )
    body = (
        f"<h1>Inbox of {escape(user.display_name)}</h1>"
        f"<p>{escape(user.job_title)}, {escape(user.department)} · {escape(user.upn)} · "
        "<a href='/_sandbox/'>All users</a></p>"
        "<p id='inbox-status' role='status' class='meta'>Loading…</p>"
        "<section aria-labelledby='teams-heading'>"
        f"<h2 id='teams-heading'>Teams: chat with {escape(sandbox.config.bot_name)}</h2>"
        "<div id='teams-items'></div></section>"
        "<section aria-labelledby='mail-heading'><h2 id='mail-heading'>Outlook: inbox</h2>"
        "<div id='mail-items'></div></section>"
        "<noscript><p>The cards are drawn by JavaScript (Microsoft's renderer). "
        f"<a href='/_sandbox/inbox/{quote(user.upn)}/items'>The inbox as JSON</a>.</p>"
        "</noscript>"
    )
    return _page(f"Inbox of {user.display_name}", body, head)
