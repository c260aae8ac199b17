"""``/about``: the public page the Teams app's privacy and terms links point at.

Teams shows those links to every officer who installs the app, so they must reach a
page anyone may read. ``/status`` cannot be it: it lists cycles and people and is kept
off the internet. This page says, in plain words, what the service stores and whom to
ask; a council with its own privacy notice points the manifest there instead
(``M365PERF_PRIVACY_URL``, ``M365PERF_TERMS_URL``).
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["ABOUT_PATH", "add_about_page", "render_about"]

ABOUT_PATH = "/about"


def render_about(contact: str) -> str:
    """The page: what is stored, where, for how long, who to contact."""
    ask = (
        f'<a href="mailto:{escape(contact)}">{escape(contact)}</a>'
        if contact
        else "the council's performance team"
    )
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head><meta charset="utf-8"><title>Performance returns: privacy and terms</title></head>
<body><main>
<h1>Performance returns</h1>
<p>The council's performance team uses this service to ask officers for each period's
performance figures, in Teams and by e-mail, and to have them approved.</p>
<h2 id="privacy">What it stores</h2>
<ul>
<li>From the council's directory (Microsoft Entra ID): the name, e-mail address, account
id and line manager of each officer who owns or approves an indicator.</li>
<li>The figures and commentary officers return, each approval or send-back, and who did
what and when (the audit trail the council keeps of its performance data).</li>
<li>Where to reach each officer in Teams, so the reminders arrive in their chat.</li>
</ul>
<p>It does not read anyone's mail, chats or files. It is kept in the council's own
database, and approved figures are written to the council's SharePoint and Power BI.</p>
<h2 id="terms">Terms of use</h2>
<p>For the council's officers and partners returning performance figures to it. The
council's own policies on information and acceptable use apply.</p>
<h2>Contact</h2>
<p>Questions about this service or the data it keeps: {ask}.</p>
</main></body>
</html>
"""


def add_about_page(app: FastAPI, *, contact: str = "") -> None:
    """Serve ``/about`` on ``app``: static, reads nothing, safe to publish."""
    page = render_about(contact)

    @app.get(ABOUT_PATH, response_class=HTMLResponse)
    def about() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "public, max-age=3600"})
