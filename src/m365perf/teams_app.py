"""The Teams app package for this council's bot: a manifest and two icons in one zip.

Teams admins upload the zip (Teams admin centre → Teams apps → Manage apps → Upload) and
install it for the officers, so the bot can message them. The manifest names the bot
by its Microsoft App ID and allows the service's public host; the icons are drawn here
with the standard library (zlib and struct), so the package needs no image library.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from m365perf import __version__

__all__ = [
    "COLOR_ICON",
    "MANIFEST",
    "MANIFEST_VERSION",
    "OUTLINE_ICON",
    "TeamsApp",
    "png",
    "png_size",
]

MANIFEST_VERSION = "1.23"
"""The current GA app manifest schema (learn.microsoft.com: "App manifest schema")."""
MANIFEST = "manifest.json"
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
COLOR_SIZE = 192
OUTLINE_SIZE = 32
ACCENT = (0x1F, 0x5F, 0x8B)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

Rgba = tuple[int, int, int, int]


@dataclass(frozen=True)
class TeamsApp:
    """What the manifest says: the bot, the public address, and who publishes it."""

    bot_app_id: str
    public_base_url: str
    developer_name: str = "m365perf"
    short_name: str = "Performance returns"
    app_version: str = __version__
    privacy_url: str = ""
    """The council's privacy notice; blank: the service's public ``/about`` page."""
    terms_url: str = ""
    """The council's terms of use; blank: the service's public ``/about`` page."""

    def problems(self) -> list[str]:
        """Why Teams would refuse this package, in words an admin can act on."""
        found = []
        if not _GUID.match(self.bot_app_id):
            found.append(
                "M365PERF_BOT_APP_ID must be the bot's Microsoft App ID (a GUID, from Azure "
                f"Bot → Configuration), not {self.bot_app_id!r}"
            )
        parts = urlsplit(self.public_base_url)
        if parts.scheme != "https" or not parts.hostname:
            found.append(
                "M365PERF_PUBLIC_BASE_URL must be the https address Teams reaches this service "
                f"at, not {self.public_base_url!r}"
            )
        for setting, url in (("PRIVACY_URL", self.privacy_url), ("TERMS_URL", self.terms_url)):
            if url and urlsplit(url).scheme != "https":
                found.append(f"M365PERF_{setting} must be an https address, not {url!r}")
        if not 1 <= len(self.short_name) <= 30:
            found.append("the app's short name must be 1 to 30 characters")
        return found

    @property
    def domain(self) -> str:
        return urlsplit(self.public_base_url).hostname or ""

    def manifest(self) -> dict[str, Any]:
        """The app manifest: one personal-scope bot that sends cards and takes their clicks."""
        site = self.public_base_url.rstrip("/")
        return {
            "$schema": (
                "https://developer.microsoft.com/json-schemas/teams/"
                f"v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
            ),
            "manifestVersion": MANIFEST_VERSION,
            "version": self.app_version,
            "id": self.bot_app_id,
            "developer": {
                "name": self.developer_name,
                # /about is public; /status lists people and stays internal.
                "websiteUrl": f"{site}/about",
                "privacyUrl": self.privacy_url or f"{site}/about#privacy",
                "termsOfUseUrl": self.terms_url or f"{site}/about#terms",
            },
            "name": {"short": self.short_name, "full": f"{self.short_name} (m365perf)"},
            "description": {
                "short": "Return your performance figures and approve them, in Teams.",
                "full": (
                    "The council's performance team asks for each period's indicator values "
                    "here. Owners return their figures on a card; approvers approve or send "
                    "back; reminders come on working days. Run by m365perf."
                ),
            },
            "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
            "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
            "bots": [
                {
                    "botId": self.bot_app_id,
                    "scopes": ["personal"],
                    "supportsFiles": False,
                    "isNotificationOnly": False,
                }
            ],
            "validDomains": [self.domain],
        }

    def package(self) -> bytes:
        """The zip Teams takes: manifest.json, color.png and outline.png at its root."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(self.manifest(), indent=2) + "\n")
            archive.writestr(COLOR_ICON, color_icon())
            archive.writestr(OUTLINE_ICON, outline_icon())
        return buffer.getvalue()


def color_icon() -> bytes:
    """192×192, full colour: a white bar chart on the accent colour."""
    background: Rgba = (*ACCENT, 255)
    return png(COLOR_SIZE, COLOR_SIZE, _chart(COLOR_SIZE, (255, 255, 255, 255), background))


def outline_icon() -> bytes:
    """32×32, white on transparent, as Teams requires for the outline icon."""
    return png(OUTLINE_SIZE, OUTLINE_SIZE, _chart(OUTLINE_SIZE, (255, 255, 255, 255), (0, 0, 0, 0)))


def _chart(size: int, ink: Rgba, paper: Rgba) -> list[list[Rgba]]:
    """Three rising bars on a base line, scaled to ``size``."""
    unit = size / 32
    bars = [(7, 19), (14, 13), (21, 7)]  # (left, top) in a 32-unit grid; each 5 wide
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            gx, gy = x / unit, y / unit
            on_bar = any(left <= gx < left + 5 and top <= gy < 25 for left, top in bars)
            on_base = 5 <= gx < 28 and 25 <= gy < 27
            row.append(ink if on_bar or on_base else paper)
        rows.append(row)
    return rows


def png(width: int, height: int, rows: list[list[Rgba]]) -> bytes:
    """An 8-bit RGBA PNG of ``rows`` (each a list of ``width`` pixels)."""
    if len(rows) != height or any(len(row) != width for row in rows):
        raise ValueError(f"pixels do not make a {width}×{height} image")
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's (width, height), read from its header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
