"""Signed, expiring, single-purpose links to an owner's web form.

For a partner without a council account the link in the e-mail is the only proof of
who they are, so it names one purpose, one owner and one cycle, stops working on a
set date, and cannot be edited into anything else. A token is

    base64url(JSON claims) "." base64url(HMAC-SHA256(key, first part))

without padding; the claims are ``purpose``, ``iat`` and ``exp`` (Unix seconds) and the
subject (``cycle_id`` and ``owner_id`` for a return link). Links are signed when the
e-mail is sent and never stored; ``iat`` lets ``m365perf links revoke`` end every link
of a person or cycle issued up to a moment. The signature is checked, in
constant time, before a byte of the claims is believed. Pure: no clock, no I/O —
``now`` comes in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from m365perf.errors import M365PerfError
from m365perf.settings import MIN_LINK_SECRET_CHARS, Settings

__all__ = [
    "DEFAULT_LIFETIME",
    "RETURN_PURPOSE",
    "BadSignature",
    "ExpiredLink",
    "LinkError",
    "LinkSigner",
    "MalformedLink",
    "ReturnLink",
    "WrongPurpose",
    "links_from_settings",
]

RETURN_PURPOSE = "return"
DEFAULT_LIFETIME = timedelta(days=30)
MAX_TOKEN_CHARS = 2048
"""A return link's token is about 150 characters; anything this long is not ours."""

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class LinkError(M365PerfError):
    """A link that opens nothing; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedLink(LinkError):
    """Not a link we make: cut short, mangled by a mail client, or made up."""

    status = 400


class BadSignature(LinkError):
    """Well formed, but not signed with our key: altered, or signed with an old key."""

    status = 403


class WrongPurpose(LinkError):
    """Genuine, but made for something else."""

    status = 403


class ExpiredLink(LinkError):
    """Genuine, but past its date."""

    status = 410

    def __init__(self, message: str, expired_at: datetime) -> None:
        super().__init__(message)
        self.expired_at = expired_at


@dataclass(frozen=True)
class ReturnLink:
    """What a verified return link lets its holder do: return one owner's figures in one cycle."""

    cycle_id: int
    owner_id: str
    expires: datetime
    issued: datetime | None = None
    """When it was signed (None for a link made before links said so)."""


class LinkSigner:
    """Makes and checks links with one key; every ``serve`` instance must share the key."""

    def __init__(self, secret: str, *, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        if len(secret) < MIN_LINK_SECRET_CHARS:
            raise ValueError(
                f"the link key must be at least {MIN_LINK_SECRET_CHARS} characters "
                f"(M365PERF_LINK_SECRET), got {len(secret)}"
            )
        if lifetime <= timedelta(0):
            raise ValueError(f"a link's lifetime must be positive, got {lifetime}")
        self._key = secret.encode("utf-8")
        self.lifetime = lifetime

    def __repr__(self) -> str:  # never show the key in a log or a traceback
        return f"LinkSigner(lifetime={self.lifetime})"

    # --- any purpose ---------------------------------------------------------------

    def sign(self, purpose: str, subject: Mapping[str, str | int], *, now: datetime) -> str:
        """A token for ``purpose`` and ``subject`` that works until ``now`` + lifetime."""
        if not purpose:
            raise ValueError("a link needs a purpose")
        if "purpose" in subject or "exp" in subject or "iat" in subject:
            raise ValueError("'purpose', 'iat' and 'exp' are set by the signer, not the subject")
        expires = _aware(now, "now") + self.lifetime
        claims = {
            "purpose": purpose,
            **subject,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        body = _encode(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, *, purpose: str, now: datetime) -> dict[str, Any]:
        """The claims of a genuine, unexpired token made for ``purpose``; else a LinkError."""
        _aware(now, "now")
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise MalformedLink("This link is not one of ours: it is far too long.")
        body, dot, mac = token.partition(".")
        if not dot or not _B64URL.fullmatch(body) or not _B64URL.fullmatch(mac):
            raise MalformedLink(
                "This link is incomplete or damaged. Copy the whole link from the e-mail "
                "into your browser, or click it there."
            )
        if not hmac.compare_digest(mac, self._mac(body)):
            raise BadSignature(
                "This link is not valid: it has been changed, or it was made before the "
                "service's key was changed. Use the link in the latest e-mail."
            )
        try:
            claims = json.loads(_decode(body))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            claims = None
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if not isinstance(claims, dict) or isinstance(exp, bool) or not isinstance(exp, int):
            raise MalformedLink("This link is damaged: what it says cannot be read.")
        if claims.get("purpose") != purpose:
            raise WrongPurpose("This link is genuine, but it is not for this page.")
        try:
            expires = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            raise MalformedLink("This link is damaged: its expiry date cannot be read.") from None
        if now >= expires:
            raise ExpiredLink("This link has expired.", expires)
        return claims

    # --- return links ----------------------------------------------------------------

    def sign_return(self, cycle_id: int, owner_id: str, *, now: datetime) -> str:
        """The token of ``owner_id``'s web form for their returns in cycle ``cycle_id``."""
        if isinstance(cycle_id, bool) or not isinstance(cycle_id, int) or cycle_id < 1:
            raise ValueError(f"cycle_id must be a positive whole number, got {cycle_id!r}")
        if not owner_id:
            raise ValueError("a return link needs the owner's id")
        return self.sign(RETURN_PURPOSE, {"cycle_id": cycle_id, "owner_id": owner_id}, now=now)

    def verify_return(self, token: str, *, now: datetime) -> ReturnLink:
        """Who may return figures for which cycle, from a genuine, unexpired return link."""
        claims = self.verify(token, purpose=RETURN_PURPOSE, now=now)
        cycle_id, owner_id = claims.get("cycle_id"), claims.get("owner_id")
        if (
            isinstance(cycle_id, bool)
            or not isinstance(cycle_id, int)
            or not isinstance(owner_id, str)
            or not owner_id
        ):
            raise MalformedLink("This link is damaged: it does not say whose returns it opens.")
        iat = claims.get("iat")
        issued = None
        if isinstance(iat, int) and not isinstance(iat, bool) and 0 <= iat <= claims["exp"]:
            issued = datetime.fromtimestamp(iat, UTC)
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        return ReturnLink(cycle_id, owner_id, expires, issued)

    def return_url(self, base_url: str, cycle_id: int, owner_id: str, *, now: datetime) -> str:
        """The address of ``owner_id``'s web form for cycle ``cycle_id``, signed ``now``.

        Made by the dispatcher as it sends the e-mail; never stored.
        """
        return f"{base_url.rstrip('/')}/returns/{self.sign_return(cycle_id, owner_id, now=now)}"

    def _mac(self, body: str) -> str:
        return _encode(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())


def links_from_settings(settings: Settings) -> LinkSigner | None:
    """The web-form link signer, or None (no links sent) when no key is configured."""
    if settings.link_secret is None:
        return None
    return LinkSigner(
        settings.link_secret.get_secret_value(),
        lifetime=timedelta(days=settings.link_lifetime_days),
    )


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone, got {moment.isoformat()}")
    return moment
