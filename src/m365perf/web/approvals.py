"""``/approvals``: the signed-in approver's web page, for clients that show no cards.

What waits for the signed-in person at the current step of each return's chain, in each
open cycle, drawn from the engine's own approval view (the card's content and checks);
each item can be approved, or rejected with a reason, and "approve all items without
flags" approves the unflagged ones. Every decision is :meth:`Engine.handle_action` with
the verbs and data a card click carries, for the signed-in person (never someone named
in the form): the engine refuses exactly what it refuses on a card (not your step, your
own return, a stale version, a second click) and its answer is shown at the top.

Nobody signed in: ``GET`` goes to sign-in and back; ``POST`` is refused (401) and changes
nothing. Every ``POST`` carries the session's CSRF token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from m365perf.cards import ApprovalView, summary_text
from m365perf.engine import ActionError, Caller, Engine
from m365perf.engine.chain import approval_card_id, current_step
from m365perf.engine.views import approval_view
from m365perf.store import CycleStatus, ReturnStatus
from m365perf.web.return_pages import _page, render_problem
from m365perf.web.signin import SignIn, WebSession, read_form

__all__ = ["WaitingItem", "add_approvals", "card_text", "is_flagged", "waiting_for"]

log = logging.getLogger(__name__)

_FRESH = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
_VERBS = ("approve", "reject")
_APPROVE_UNFLAGGED = "approve_unflagged"


@dataclass(frozen=True)
class WaitingItem:
    """One return waiting for the approver, as its approval card would show it."""

    cycle_id: int
    view: ApprovalView


def is_flagged(view: ApprovalView) -> bool:
    """A return an approver should look at on its own: what the card flags."""
    return bool(
        view.outlier_confirmed
        or view.probable_missing_data
        or view.late
        or (view.variation and "concern" in view.variation)
        or view.value is None
    )


def waiting_for(engine: Engine, user_id: str, cycle_id: int | None = None) -> list[WaitingItem]:
    """Returns at a step where ``user_id`` is an approver and it is that step's turn."""
    items: list[WaitingItem] = []
    with engine.store.transaction() as tx:
        cycles = [c for c in tx.list_cycles() if c.status is not CycleStatus.CLOSED]
        for cycle in cycles:
            if cycle_id is not None and cycle.id != cycle_id:
                continue
            if cycle.flow_id not in engine.flows:
                continue
            for ret in tx.list_returns(cycle_id=cycle.id):
                if ret.status is not ReturnStatus.RETURNED:
                    continue
                if user_id in (ret.owner_id, ret.submitted_by):
                    continue
                chain = tx.list_steps(ret.id or 0)
                step = current_step(chain)
                if step is None or user_id not in step.approvers:
                    continue
                card_id = str(approval_card_id(ret, step, user_id))
                view = approval_view(tx, engine.ctx, cycle, ret, chain, step, card_id=card_id)
                items.append(WaitingItem(cycle.id or 0, view))
    return items


def card_text(card: Mapping[str, Any]) -> list[str]:
    """The lines of text a card shows (text blocks, rich text, facts), for the page's notice."""
    lines: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
                lines.append(node["text"])
            if node.get("type") == "RichTextBlock" and isinstance(node.get("inlines"), list):
                lines.append(
                    "".join(
                        str(run.get("text", "")) if isinstance(run, Mapping) else str(run)
                        for run in node["inlines"]
                    )
                )
                return
            for key, value in node.items():
                if key in ("actions", "selectAction"):
                    continue
                if key == "facts" and isinstance(value, list):
                    lines.extend(
                        f"{f.get('title', '')}: {f.get('value', '')}"
                        for f in value
                        if isinstance(f, Mapping)
                    )
                    continue
                walk(value)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(card.get("body", []))
    return [line for line in lines if line.strip()]


def add_approvals(
    app: FastAPI, engine: Engine, signin: SignIn, *, clock: Callable[[], datetime]
) -> None:
    """Serve ``/approvals`` and ``/approvals/{cycle_id}`` on ``app``."""

    def signed_in(request: Request) -> WebSession | None:
        return signin.current(request)

    @app.get("/approvals", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return RedirectResponse(signin.signin_url("/approvals"), status_code=302)
        items = await run_in_threadpool(waiting_for, engine, session.user_id)
        return _html(_render(session, items, None, []))

    @app.get("/approvals/{cycle_id}", response_class=HTMLResponse)
    async def cycle_page(cycle_id: int, request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return RedirectResponse(signin.signin_url(f"/approvals/{cycle_id}"), status_code=302)
        items = await run_in_threadpool(waiting_for, engine, session.user_id, cycle_id)
        return _html(_render(session, items, cycle_id, []))

    @app.post("/approvals/{cycle_id}", response_class=HTMLResponse)
    async def decide(cycle_id: int, request: Request) -> Response:
        session = signed_in(request)
        form = await read_form(request)
        if session is None:
            return _html(
                render_problem(
                    "Please sign in",
                    "You are not signed in, so nothing was approved or rejected.",
                    f"Sign in at {signin.base_url}/approvals/{cycle_id} and decide again.",
                ),
                401,
            )
        if not signin.csrf_ok(request, session, form.get("csrf")):
            return _html(
                render_problem(
                    "Nothing changed",
                    "This form did not come from your page here, so nothing was approved or "
                    "rejected.",
                    "Open the approvals page again and decide there.",
                ),
                403,
            )
        notices = await run_in_threadpool(_act, engine, session, cycle_id, form, clock)
        items = await run_in_threadpool(waiting_for, engine, session.user_id, cycle_id)
        return _html(_render(session, items, cycle_id, notices))


def _act(
    engine: Engine,
    session: WebSession,
    cycle_id: int,
    form: Mapping[str, str],
    clock: Callable[[], datetime],
) -> list[str]:
    """The decisions the form asks for, through the card's entry point; what each said."""
    who = Caller(session.user_id, session.name)
    verb = form.get("verb", "")
    if verb == _APPROVE_UNFLAGGED:
        targets = [
            item.view
            for item in waiting_for(engine, session.user_id, cycle_id)
            if not is_flagged(item.view)
        ]
        if not targets:
            return ["Nothing without flags waits for you here: nothing changed."]
        notices = []
        for view in targets:
            data = {
                "return_id": view.return_id,
                "version": str(view.version),
                "step_index": str(view.step_index),
                "card_id": view.card_id,
            }
            notices.append(_one(engine, who, "approve", data, clock))
        return notices
    if verb not in _VERBS:
        return ["That is not something this page can do: nothing changed."]
    data = {name: form.get(name, "") for name in ("return_id", "version", "step_index", "card_id")}
    if verb == "reject":
        data["reason"] = form.get("reason", "")
    return [_one(engine, who, verb, data, clock)]


def _one(
    engine: Engine, who: Caller, verb: str, data: Mapping[str, str], clock: Callable[[], datetime]
) -> str:
    try:
        card = engine.handle_action(who, verb, dict(data), now=clock())
    except ActionError as refused:
        return refused.message
    except Exception:  # an engine bug must not show a traceback; nothing is half-done
        log.exception("web decision %r by %s failed", verb, who.user_id)
        return "Something went wrong on our side. Please try again in a few minutes."
    return " ".join(card_text(card))


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_FRESH)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _render(
    session: WebSession,
    items: Sequence[WaitingItem],
    cycle_id: int | None,
    notices: Iterable[str],
) -> str:
    title = "Approvals waiting for you"
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>Signed in as {_e(session.name)} ({_e(session.username)}).</p>",
        '<form method="post" action="/signout">'
        f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
        '<button type="submit">Sign out</button></form>',
    ]
    for notice in notices:
        body.append(f'<p class="notice" role="status">{_e(notice)}</p>')
    if not items:
        body.append("<p>Nothing is waiting for your approval here.</p>")
        return _page(title, body)
    if cycle_id is None:
        cycles = sorted({item.cycle_id for item in items})
        body.append("<ul>")
        for cid in cycles:
            mine = [i for i in items if i.cycle_id == cid]
            label = mine[0].view.period_label
            body.append(f'<li><a href="/approvals/{cid}">{_e(label)}: {len(mine)} waiting</a></li>')
        body.append("</ul>")
        return _page(title, body)
    unflagged = [i for i in items if not is_flagged(i.view)]
    if unflagged:
        body.append(
            f'<form method="post" action="/approvals/{cycle_id}">'
            f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
            f'<input type="hidden" name="verb" value="{_APPROVE_UNFLAGGED}">'
            f'<button type="submit">Approve all {len(unflagged)} items without flags'
            "</button></form>"
        )
    for n, item in enumerate(items):
        body.extend(_item(n, item, cycle_id, session))
    return _page(title, body)


def _item(n: int, item: WaitingItem, cycle_id: int, session: WebSession) -> list[str]:
    view = item.view
    lines = [line for line in summary_text(view).splitlines()]
    heading = f"{view.indicator_name} ({view.owner_name})"
    out = [f'<section class="returned" aria-labelledby="item-{n}">']
    out.append(f'<h2 id="item-{n}">{_e(heading)}</h2>')
    out.extend(f"<p>{_e(line)}</p>" for line in lines if line.strip())
    if is_flagged(view):
        out.append('<p class="notice">Flagged: look at this one before approving.</p>')
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{_e(v)}">'
        for k, v in (
            ("csrf", session.csrf),
            ("return_id", view.return_id),
            ("version", view.version),
            ("step_index", view.step_index),
            ("card_id", view.card_id),
        )
    )
    out.append(
        f'<form method="post" action="/approvals/{cycle_id}">{hidden}'
        '<input type="hidden" name="verb" value="approve">'
        f'<button type="submit" aria-describedby="item-{n}">Approve</button></form>'
    )
    out.append(
        f'<form method="post" action="/approvals/{cycle_id}">{hidden}'
        '<input type="hidden" name="verb" value="reject">'
        f'<label for="reason-{n}">Reason for rejecting {_e(view.indicator_name)}</label>'
        f'<textarea id="reason-{n}" name="reason"></textarea>'
        f'<button type="submit" aria-describedby="item-{n}">Reject</button></form>'
    )
    out.append("</section>")
    return out
