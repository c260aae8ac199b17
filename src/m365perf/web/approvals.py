"""``/approvals``: the signed-in approver's web page, for clients that show no cards.

The page is the approver's digest (:mod:`m365perf.engine.digest`): what waits for the
signed-in person at the current step of each return's chain in a cycle, grouped by
service, each item with its value, RAG, target, direction, variation, flags and
commentary. It acts through the digest's own entry points, the ones the digest card's
buttons call: approve one item, reject one with a reason, approve all items without
flags (the items the page showed; a flag that appeared since leaves the item alone).
Always for the signed-in person, never someone named in the form: the engine refuses
what it refuses on a card (not your step, your own return, a stale version, decided
already) and its notes are shown at the top.

The overview also has an "Away? Name a delegate" section (:mod:`m365perf.web.delegates`):
the person's delegations still to come, a form to name one and a button to end one,
through the engine's delegation calls, as ``m365perf delegate`` makes them.

Nobody signed in: ``GET`` goes to sign-in and back; ``POST`` is refused (401) and changes
nothing. Every ``POST`` carries the session's CSRF token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from html import escape
from typing import Annotated

from fastapi import FastAPI, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from m365perf.cards import format_value
from m365perf.cards.actions import action_text
from m365perf.cards.digest import DigestItem, DigestView
from m365perf.cards.formatting import direction_word, rag_word, target_text
from m365perf.cards.submission import MAX_WHOLE
from m365perf.engine import Caller, Engine
from m365perf.engine.digest import (
    ItemRef,
    approve_item,
    approve_unflagged,
    read_digest,
    reject_item,
)
from m365perf.engine.errors import ActionError
from m365perf.store import CycleStatus
from m365perf.web.delegates import (
    ADD_PATH,
    END_PATH,
    add_from_form,
    delegation_section,
    end_from_form,
    my_delegations,
)
from m365perf.web.return_pages import _page, render_problem
from m365perf.web.signin import SignIn, WebSession, read_form

__all__ = ["add_approvals", "digests_for", "parse_refs", "refs_text"]

log = logging.getLogger(__name__)

CycleId = Annotated[int, Path(ge=1, le=MAX_WHOLE)]
"""A cycle id as the store holds it: a whole number from 1, never beyond its column."""

_FRESH = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
_APPROVE, _REJECT, _APPROVE_UNFLAGGED = "approve", "reject", "approve_unflagged"
_MAX_REFS = 500
_SORRY = (
    "Something went wrong",
    "Something went wrong on our side. Please try again in a few minutes.",
    "Open the approvals page again to see where things stand.",
)


def digests_for(engine: Engine, user_id: str, now: datetime) -> list[DigestView]:
    """The person's digest in every cycle not closed where something waits for them
    (what they cover for an away approver today included)."""
    with engine.store.transaction() as tx:
        cycles = [
            c.id or 0
            for c in tx.list_cycles()
            if c.status is not CycleStatus.CLOSED and c.flow_id in engine.flows
        ]
    views = [
        read_digest(engine.store, engine.ctx, cycle_id, user_id, now=now) for cycle_id in cycles
    ]
    return [v for v in views if v.items]


def refs_text(items: Sequence[DigestItem]) -> str:
    """The items a page showed, as one form field: ``return.version.step`` joined by spaces."""
    return " ".join(f"{i.return_id}.{i.version}.{i.step_index}" for i in items)


def parse_refs(text: str) -> list[ItemRef] | None:
    """The items named by :func:`refs_text`; None for anything else."""
    refs = []
    for part in text.split()[: _MAX_REFS + 1]:
        pieces = part.split(".")
        if len(pieces) != 3 or not all(p.isascii() and p.isdigit() and len(p) < 10 for p in pieces):
            return None
        refs.append(ItemRef(int(pieces[0]), int(pieces[1]), int(pieces[2])))
    return refs if len(refs) <= _MAX_REFS else None


def _ref(form: Mapping[str, str]) -> ItemRef | None:
    found = parse_refs(
        f"{form.get('return_id', '')}.{form.get('version', '')}.{form.get('step_index', '')}"
    )
    return found[0] if found and len(found) == 1 else None


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
        return _html(await run_in_threadpool(_overview_page, engine, session, clock(), ()))

    async def delegate_post(
        request: Request, act: Callable[[Engine, WebSession, Mapping[str, str], datetime], str]
    ) -> Response:
        session = signed_in(request)
        form = await read_form(request)
        if session is None:
            return _html(
                render_problem(
                    "Please sign in",
                    "You are not signed in, so no delegate was named or ended.",
                    f"Sign in at {signin.base_url}/approvals and try again.",
                ),
                401,
            )
        if not signin.csrf_ok(request, session, form.get("csrf")):
            return _html(
                render_problem(
                    "Nothing changed",
                    "This form did not come from your page here, so no delegate was named "
                    "or ended.",
                    "Open the approvals page again and try there.",
                ),
                403,
            )
        status = 200
        try:
            note = await run_in_threadpool(act, engine, session, form, clock())
        except ActionError as refused:
            note, status = f"Nothing changed: {refused.message}", refused.status
        except Exception:  # an engine or store failure must not show a traceback
            log.exception("delegation on the approvals page by %s failed", session.user_id)
            return _html(render_problem(*_SORRY), 503)
        page = await run_in_threadpool(_overview_page, engine, session, clock(), (note,))
        return _html(page, status)

    @app.post(ADD_PATH, response_class=HTMLResponse)
    async def add_delegate(request: Request) -> Response:
        return await delegate_post(request, add_from_form)

    @app.post(END_PATH, response_class=HTMLResponse)
    async def end_delegate(request: Request) -> Response:
        return await delegate_post(request, end_from_form)

    @app.get("/approvals/{cycle_id}", response_class=HTMLResponse)
    async def cycle_page(cycle_id: CycleId, request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return RedirectResponse(signin.signin_url(f"/approvals/{cycle_id}"), status_code=302)
        try:
            view = await run_in_threadpool(
                partial(read_digest, now=clock()),
                engine.store,
                engine.ctx,
                cycle_id,
                session.user_id,
            )
        except ActionError as unknown:
            return _html(render_problem("Not found", unknown.message), 404)
        except Exception:  # the store cannot be read: say so, not a traceback
            log.exception("approvals page for %s could not be drawn", session.user_id)
            return _html(render_problem(*_SORRY), 503)
        return _html(_render(session, view))

    @app.post("/approvals/{cycle_id}", response_class=HTMLResponse)
    async def decide(cycle_id: CycleId, request: Request) -> Response:
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
        try:
            view = await run_in_threadpool(_act, engine, session, cycle_id, form, clock)
        except ActionError as refused:
            return _html(render_problem("Nothing changed", refused.message), refused.status)
        except Exception:  # an engine or store failure must not show a traceback
            log.exception("approvals page decision by %s failed", session.user_id)
            return _html(render_problem(*_SORRY), 503)
        return _html(_render(session, view))


def _act(
    engine: Engine,
    session: WebSession,
    cycle_id: int,
    form: Mapping[str, str],
    clock: Callable[[], datetime],
) -> DigestView:
    """The decision the form asks for, through the digest's entry points; the digest after."""
    who = Caller(session.user_id, session.name)
    store, ctx, verb = engine.store, engine.ctx, form.get("verb", "")
    if verb == _APPROVE_UNFLAGGED:
        refs = parse_refs(form.get("items", ""))
        if refs is not None:
            return approve_unflagged(store, ctx, who, cycle_id, refs, now=clock()).view
    elif verb in (_APPROVE, _REJECT):
        ref = _ref(form)
        if ref is not None and verb == _APPROVE:
            return approve_item(store, ctx, who, cycle_id, ref, now=clock()).view
        if ref is not None:
            reason = form.get("reason", "")
            return reject_item(store, ctx, who, cycle_id, ref, reason, now=clock()).view
    view = read_digest(store, ctx, cycle_id, who.user_id, now=clock())
    return _with_note(view, "That is not something this page can do: nothing changed.")


def _with_note(view: DigestView, note: str) -> DigestView:
    return replace(view, notes=(*view.notes, note))


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_FRESH)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _header(session: WebSession, title: str) -> list[str]:
    return [
        f"<h1>{_e(title)}</h1>",
        f"<p>Signed in as {_e(session.name)} ({_e(session.username)}).</p>",
        '<form method="post" action="/signout">'
        f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
        '<button type="submit">Sign out</button></form>',
    ]


def _overview_page(engine: Engine, session: WebSession, now: datetime, notes: Sequence[str]) -> str:
    """The overview with the delegation section, read afresh (after any change)."""
    views = digests_for(engine, session.user_id, now)
    mine = my_delegations(engine, session.user_id, now)
    flows = [(f.id, f.name) for f in engine.flows.values()]
    return _overview(session, views, delegation_section(session, mine, flows), notes)


def _overview(
    session: WebSession,
    views: Sequence[DigestView],
    delegates: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> str:
    title = "Approvals waiting for you"
    body = _header(session, title)
    for note in notes:
        body.append(f'<p class="notice" role="status">{_e(note)}</p>')
    if not views:
        body.append("<p>Nothing is waiting for your approval.</p>")
    else:
        body.append("<ul>")
        for view in views:
            count = len(view.items)
            body.append(
                f'<li><a href="/approvals/{view.cycle_id}">{_e(view.flow_name)} '
                f"{_e(view.period_label)}: {count} {'item' if count == 1 else 'items'} waiting"
                "</a></li>"
            )
        body.append("</ul>")
    body.extend(delegates)
    return _page(title, body)


def _render(session: WebSession, view: DigestView) -> str:
    title = f"Approvals waiting: {view.flow_name}, {view.period_label}"
    body = _header(session, title)
    for note in view.notes:
        body.append(f'<p class="notice" role="status">{_e(note)}</p>')
    items = view.items
    if not items:
        body.append("<p>Nothing is waiting for your approval here.</p>")
        return _page(title, body)
    count = len(items)
    body.append(f"<p>{count} {'item' if count == 1 else 'items'} waiting for you.</p>")
    unflagged = [i for i in items if not i.flagged]
    if unflagged:
        body.append(
            f'<form method="post" action="/approvals/{view.cycle_id}">'
            f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
            f'<input type="hidden" name="verb" value="{_APPROVE_UNFLAGGED}">'
            f'<input type="hidden" name="items" value="{_e(refs_text(unflagged))}">'
            f'<button type="submit">Approve all {len(unflagged)} without flags'
            "</button></form>"
        )
    n = 0
    for service in view.services:
        body.append(f"<h2>{_e(service.name)}</h2>")
        for item in service.items:
            body.extend(_item(n, item, view.cycle_id, session))
            n += 1
    return _page(title, body)


def _item_lines(item: DigestItem) -> list[str]:
    if item.value is None:
        value = f"No data — {item.no_data_reason or 'no reason given'}"
    else:
        value = f"{format_value(item.value, item.unit)} ({rag_word(item.rag)})"
    lines = [
        f"Step {item.step_index + 1} of {item.step_count}: {item.step_name}"
        + (f", for {item.acting_for}" if item.acting_for else "")
    ]
    lines.append(f"Value: {value}")
    if item.target is not None:
        lines.append(f"Target: {target_text(item.target, item.unit, item.polarity)}")
    if item.direction:
        lines.append(f"{direction_word(item.direction)} on the previous period")
    if item.variation:
        lines.append(f"Variation: {item.variation}")
    if item.flags:
        lines.append(f"Flags: {'; '.join(item.flags)}")
    commentary = (item.commentary or "").strip()
    lines.append(f"Commentary: {commentary or 'none given'}")
    lines += [f"Improvement action: {action_text(a, limit=1000)}" for a in item.actions]
    return lines


def _item(n: int, item: DigestItem, cycle_id: int, session: WebSession) -> list[str]:
    heading = f"{item.indicator_name} ({item.owner_name})"
    out = [f'<section class="returned" aria-labelledby="item-{n}">']
    out.append(f'<h3 id="item-{n}">{_e(heading)}</h3>')
    out.extend(f"<p>{_e(line)}</p>" for line in _item_lines(item))
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{_e(v)}">'
        for k, v in (
            ("csrf", session.csrf),
            ("return_id", item.return_id),
            ("version", item.version),
            ("step_index", item.step_index),
        )
    )
    out.append(
        f'<form method="post" action="/approvals/{cycle_id}">{hidden}'
        f'<input type="hidden" name="verb" value="{_APPROVE}">'
        '<button type="submit">Approve</button></form>'
    )
    out.append(
        f'<form method="post" action="/approvals/{cycle_id}">{hidden}'
        f'<input type="hidden" name="verb" value="{_REJECT}">'
        f'<label for="reason-{n}">Reason for rejecting {_e(item.indicator_name)}</label>'
        f'<textarea id="reason-{n}" name="reason"></textarea>'
        '<button type="submit">Reject</button></form>'
    )
    out.append("</section>")
    return out
