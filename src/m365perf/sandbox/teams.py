"""The Bot Connector's proactive-messaging surface for Teams 1:1 chats (facts §6.1).

Conversation ids are stable per user and bot, as in Teams: creating the 1:1
conversation twice gives the same id, so a service that lost its cached reference
finds the same chat again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from m365perf.sandbox.core import Sandbox, sandbox_of
from m365perf.sandbox.replies import Reply, bot_error
from m365perf.sandbox.store import ActivityRow, UserRow, iso

router = APIRouter()

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def teams_user_id(bot_app_id: str, object_id: str) -> str:
    """A ``29:`` id: unique per bot and user, like the ids Teams hands each bot."""
    digest = hashlib.sha256(f"{bot_app_id}|{object_id}".encode()).digest()
    return "29:1" + base64.urlsafe_b64encode(digest).decode().rstrip("=")[:42]


def _conversation_id(bot_app_id: str, object_id: str) -> str:
    digest = hashlib.sha256(f"conv|{bot_app_id}|{object_id}".encode()).digest()
    return "a:1" + base64.urlsafe_b64encode(digest).decode().rstrip("=")[:60]


def _member_user(sandbox: Sandbox, member: Any) -> UserRow | None:
    """Teams takes the ``29:`` id; the AAD object id (bare or ``8:orgid:``) is accepted too."""
    if not isinstance(member, dict):
        return None
    for key in (member.get("id"), member.get("aadObjectId")):
        if not isinstance(key, str):
            continue
        key = key.removeprefix("8:orgid:")
        if key.startswith("29:") or _GUID.match(key):
            user = sandbox.store.user(key)
            if user is not None:
                return user
    return None


def card_of(activity: dict[str, Any]) -> dict[str, Any] | None:
    for attachment in activity.get("attachments") or []:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_CONTENT_TYPE:
            continue
        content = attachment.get("content")
        if isinstance(content, str):
            try:
                content = json.loads(content)
            except json.JSONDecodeError:
                return None
        return content if isinstance(content, dict) else None
    return None


def with_card(activity: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
    """The activity with its adaptive-card attachment replaced (what an invoke reply does)."""
    attachments = [
        {"contentType": CARD_CONTENT_TYPE, "content": card}
        if isinstance(a, dict) and a.get("contentType") == CARD_CONTENT_TYPE
        else a
        for a in activity.get("attachments") or []
    ]
    return {**activity, "attachments": attachments}


def _new_activity_id(sandbox: Sandbox, cid: str) -> str:
    """Teams message ids are millisecond timestamps."""
    candidate = int(time.time() * 1000)
    while sandbox.store.activity(cid, str(candidate)) is not None:
        candidate += 1
    return str(candidate)


def _validate_activity(payload: Any) -> dict[str, Any] | Reply:
    if not isinstance(payload, dict):
        return bot_error(400, "BadArgument", "Activity body is missing or not JSON.")
    if payload.get("type", "message") != "message":
        return bot_error(400, "BadArgument", "Only message activities can be sent proactively.")
    attachments = payload.get("attachments", [])
    if not isinstance(attachments, list):
        return bot_error(400, "BadArgument", "attachments must be an array.")
    if not payload.get("text") and not attachments:
        return bot_error(400, "BadArgument", "Activity has neither text nor attachments.")
    return payload


def _store_activity(sandbox: Sandbox, cid: str, aid: str, payload: dict[str, Any]) -> None:
    now = iso()
    existing = sandbox.store.activity(cid, aid)
    stored = {**payload, "id": aid, "conversation": {"id": cid}, "timestamp": now}
    sandbox.store.put_activity(
        ActivityRow(cid, aid, stored, card_of(payload), existing.created if existing else now, now)
    )


def create_conversation(sandbox: Sandbox, payload: Any) -> Reply:
    config = sandbox.config
    if not isinstance(payload, dict):
        return bot_error(400, "BadArgument", "Conversation parameters are missing or not JSON.")
    tenant = (payload.get("channelData") or {}).get("tenant", {}).get("id") or payload.get(
        "tenantId"
    )
    if tenant != config.tenant_id:
        return bot_error(400, "BadArgument", "Incorrect conversation creation parameters: tenant.")
    bot_id = str((payload.get("bot") or {}).get("id", ""))
    if bot_id.removeprefix("28:") != config.bot_app_id:
        return bot_error(403, "Forbidden", "The bot id does not match the authenticated bot.")
    if payload.get("isGroup"):
        return bot_error(400, "BadArgument", "Group conversations are not emulated.")
    members = payload.get("members")
    if not isinstance(members, list) or len(members) != 1:
        return bot_error(400, "BadArgument", "A 1:1 conversation needs exactly one member.")
    user = _member_user(sandbox, members[0])
    if user is None:
        return bot_error(404, "MemberNotFound", "The member is not a user of this tenant.")
    if not sandbox.store.bot_installed_for(user.id):
        return bot_error(
            403, "BotNotInConversationRoster", "The bot is not installed for this user."
        )
    cid = _conversation_id(config.bot_app_id, user.id)
    sandbox.store.put_conversation(cid, user.id, config.bot_app_id, config.tenant_id)
    body: dict[str, Any] = {"id": cid}
    initial = payload.get("activity")
    if initial is not None:
        activity = _validate_activity(initial)
        if isinstance(activity, Reply):
            return activity
        aid = _new_activity_id(sandbox, cid)
        _store_activity(sandbox, cid, aid, activity)
        body["activityId"] = aid
    return Reply(201, body)


def send_activity(sandbox: Sandbox, cid: str, payload: Any, reply_to: str | None) -> Reply:
    if sandbox.store.conversation(cid) is None:
        return bot_error(404, "ConversationNotFound", "Conversation not found.")
    activity = _validate_activity(payload)
    if isinstance(activity, Reply):
        return activity
    if reply_to is not None:
        activity = {**activity, "replyToId": reply_to}
    aid = _new_activity_id(sandbox, cid)
    _store_activity(sandbox, cid, aid, activity)
    return Reply(201, {"id": aid})


def update_activity(sandbox: Sandbox, cid: str, aid: str, payload: Any) -> Reply:
    if sandbox.store.conversation(cid) is None:
        return bot_error(404, "ConversationNotFound", "Conversation not found.")
    if sandbox.store.activity(cid, aid) is None:
        return bot_error(404, "ActivityNotFound", "The activity was not found.")
    activity = _validate_activity(payload)
    if isinstance(activity, Reply):
        return activity
    _store_activity(sandbox, cid, aid, activity)
    return Reply(200, {"id": aid})


def members(sandbox: Sandbox, cid: str) -> Reply:
    conversation = sandbox.store.conversation(cid)
    if conversation is None:
        return bot_error(404, "ConversationNotFound", "Conversation not found.")
    user = sandbox.store.user(conversation["user_id"])
    if user is None:
        return Reply(200, [])
    return Reply(
        200,
        [
            {
                "id": user.teams_id,
                "name": user.display_name,
                "aadObjectId": user.id,
                "givenName": user.given_name,
                "surname": user.surname,
                "email": user.mail,
                "userPrincipalName": user.upn,
                "tenantId": sandbox.config.tenant_id,
                "userRole": "user",
            }
        ],
    )


async def _payload(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError:
        return None


@router.post("/botframework/v3/conversations")
async def post_conversation(request: Request) -> Response:
    return create_conversation(sandbox_of(request), await _payload(request)).response()


@router.post("/botframework/v3/conversations/{cid}/activities")
async def post_activity(cid: str, request: Request) -> Response:
    return send_activity(sandbox_of(request), cid, await _payload(request), None).response()


@router.post("/botframework/v3/conversations/{cid}/activities/{aid}")
async def reply_activity(cid: str, aid: str, request: Request) -> Response:
    return send_activity(sandbox_of(request), cid, await _payload(request), aid).response()


@router.put("/botframework/v3/conversations/{cid}/activities/{aid}")
async def put_activity(cid: str, aid: str, request: Request) -> Response:
    return update_activity(sandbox_of(request), cid, aid, await _payload(request)).response()


@router.get("/botframework/v3/conversations/{cid}/members")
async def get_members(cid: str, request: Request) -> Response:
    return members(sandbox_of(request), cid).response()


def chats_of(sandbox: Sandbox, user: UserRow) -> list[dict[str, Any]]:
    """The user's 1:1 chats with the bot, oldest message first (the inbox page reads this)."""
    return [
        {
            "conversationId": conv["id"],
            "activities": [
                {
                    "id": a.id,
                    "created": a.created,
                    "updated": a.updated,
                    "text": a.activity.get("text"),
                    "summary": a.activity.get("summary"),
                    "card": a.card,
                    "activity": a.activity,
                }
                for a in sandbox.store.activities(conv["id"])
            ],
        }
        for conv in sandbox.store.conversations_of(user.id)
    ]
