"""Microsoft's Adaptive Cards renderer (npm ``adaptivecards``), found on disk, served locally.

The inbox draws cards with Microsoft's own JavaScript renderer and the Teams and Outlook
host configs, so what a rehearsal shows is what those clients would draw, not our guess.
``make install`` puts the renderer in the repository's ``node_modules`` (pinned by
``package-lock.json``); the sandbox serves it from there, never from a CDN, so it works
offline. ``SandboxConfig.renderer_dir`` (``m365perf sandbox --renderer-dir``) points
elsewhere, e.g. for an installed package run outside the repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from m365perf.sandbox.core import sandbox_of

router = APIRouter(prefix="/_sandbox/assets")

ASSETS = Path(__file__).resolve().parent / "assets"
#: Where ``npm ci`` puts the renderer, under a folder holding ``node_modules``.
NPM_DIST = Path("node_modules") / "adaptivecards" / "dist"
RENDERER_SCRIPT = "adaptivecards.min.js"
#: The renderer's files the inbox loads, and the sandbox's own.
RENDERER_FILES = {RENDERER_SCRIPT: "text/javascript", "adaptivecards.css": "text/css"}
OWN_FILES = {"inbox.js": "text/javascript", "inbox.css": "text/css"}
#: Microsoft's host configs (``assets/hostconfig/README.md``), by the channel a card came on.
HOST_CONFIGS = {"teams": "microsoft-teams-light.json", "outlook": "outlook-desktop.json"}


@dataclass(frozen=True)
class Renderer:
    """Where the renderer is, or why it is not there (in words a person can act on)."""

    dist: Path | None
    problem: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"dir": str(self.dist) if self.dist else None, "problem": self.problem}


def _searched(configured: Path | None) -> list[Path]:
    if configured is not None:
        return [configured]
    roots = [Path.cwd(), *Path.cwd().parents]
    # An editable install: src/m365perf/sandbox/renderer.py sits three levels under the repo.
    repo = Path(__file__).resolve().parents[3]
    if repo not in roots:
        roots.append(repo)
    return [root / NPM_DIST for root in roots]


def find_renderer(configured: Path | None) -> Renderer:
    """The first folder holding ``adaptivecards.min.js``: the configured one, else the
    ``node_modules`` of the working directory, its parents or the repository."""
    searched = _searched(configured)
    for folder in searched:
        if (folder / RENDERER_SCRIPT).is_file():
            return Renderer(folder, None)
    where = ", ".join(str(f) for f in searched[:3]) + (" …" if len(searched) > 3 else "")
    return Renderer(
        None,
        f"Microsoft's Adaptive Cards renderer is not installed (no {RENDERER_SCRIPT} in "
        f"{where}): run `make install` (it runs `npm ci`) in the repository, or start the "
        "sandbox with --renderer-dir pointing at node_modules/adaptivecards/dist",
    )


@cache
def host_config(channel: str) -> dict[str, Any]:
    """Microsoft's host config for ``teams`` or ``outlook``."""
    loaded: dict[str, Any] = json.loads((ASSETS / "hostconfig" / HOST_CONFIGS[channel]).read_text())
    return loaded


@router.get("/{name}")
async def asset(name: str, request: Request) -> Response:
    """The renderer's script and stylesheet, and the inbox's own; nothing else on disk."""
    if name in OWN_FILES:
        return FileResponse(ASSETS / name, media_type=OWN_FILES[name])
    if name not in RENDERER_FILES:
        return PlainTextResponse(f"no asset {name!r}", status_code=404)
    renderer = find_renderer(sandbox_of(request).config.renderer_dir)
    if renderer.dist is None:
        return PlainTextResponse(renderer.problem or "", status_code=503)
    return FileResponse(renderer.dist / name, media_type=RENDERER_FILES[name])
