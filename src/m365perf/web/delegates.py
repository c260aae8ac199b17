"""The "Away? Name a delegate" part of ``/approvals``: an approver names who acts for them.

The page lists the signed-in person's delegations that still apply (today or later, not
ended), lets them add one (delegate, first and last London day, optionally one flow) and
end one. It acts through the engine's own delegation calls, the ones
``m365perf delegate add|end`` makes, so the same checks refuse a bad delegate (not in
the directory, themselves, an overlapping range, a day passed) and the same audit
entries are written. The approver and the person recording are always the signed-in
user, never a form field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from html import escape

from m365perf.engine import ActionError, Engine
from m365perf.engine.context import local_day
from m365perf.engine.delegation import DelegationView
from m365perf.web.signin import WebSession

__all__ = [
    "ADD_PATH",
    "END_PATH",
    "add_from_form",
    "delegation_section",
    "end_from_form",
    "my_delegations",
]

ADD_PATH = "/approvals/delegates/add"
END_PATH = "/approvals/delegates/end"


def my_delegations(engine: Engine, user_id: str, now: datetime) -> list[DelegationView]:
    """The person's own delegations (as the approver away) that apply today or later."""
    today = local_day(now)
    try:
        views = engine.delegations(person=user_id)
    except ActionError:  # not in the directory: nothing of theirs is recorded
        return []
    return [v for v in views if v.approver.id == user_id and v.ends_on >= today and not v.ended]


def add_from_form(
    engine: Engine, session: WebSession, form: Mapping[str, str], now: datetime
) -> str:
    """Record the delegation the form asks for, for the signed-in person; a note to show.

    Raises :class:`ActionError` with the engine's message when it is refused.
    """
    delegate = form.get("delegate", "").strip()
    if not delegate:
        raise ActionError("Give the e-mail address of who will approve for you.")
    starts, ends = _day(form.get("starts_on", "")), _day(form.get("ends_on", ""))
    if starts is None or ends is None:
        raise ActionError("Give the first and last day as dates, for example 2026-11-02.")
    flow_id = form.get("flow_id", "").strip() or None
    row = engine.add_delegation(
        approver=session.user_id,
        delegate=delegate,
        starts_on=starts,
        ends_on=ends,
        flow_id=flow_id,
        by=session.user_id,
        now=now,
    )
    (view,) = [v for v in engine.delegations(person=session.user_id) if v.id == row.id]
    who = view.delegate.name if view.delegate else "nobody"
    return f"{who} will approve for you from {view.starts_on} to {view.ends_on}."


def end_from_form(
    engine: Engine, session: WebSession, form: Mapping[str, str], now: datetime
) -> str:
    """End the delegation the form names, as the signed-in person; a note to show."""
    text = form.get("delegation_id", "")
    if not (text.isascii() and text.isdigit() and len(text) < 10):
        raise ActionError("That is not a delegation this page showed: nothing changed.")
    ended = engine.end_delegation(int(text), by=session.user_id, now=now)
    return f"Delegation {ended.id} ended: from now on you approve alone."


def delegation_section(
    session: WebSession,
    views: Sequence[DelegationView],
    flows: Sequence[tuple[str, str]],
) -> list[str]:
    """The section's HTML: the person's delegations, an end button each, the add form."""
    csrf = f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
    out = ['<section class="delegates" aria-labelledby="delegates">']
    out.append('<h2 id="delegates">Away? Name a delegate</h2>')
    if not views:
        out.append("<p>Nobody is named to approve for you.</p>")
    else:
        out.append("<ul>")
        for view in views:
            who = view.delegate.name if view.delegate else "nobody named"
            email = f" ({view.delegate.email})" if view.delegate else ""
            flow = dict(flows).get(view.flow_id, view.flow_id) if view.flow_id else "every flow"
            out.append(
                f"<li>{_e(who)}{_e(email)} approves for you from {_e(view.starts_on)} to "
                f"{_e(view.ends_on)}, {_e(flow)}."
                f'<form method="post" action="{END_PATH}">{csrf}'
                f'<input type="hidden" name="delegation_id" value="{view.id}">'
                f'<button type="submit">End delegation {view.id}</button></form></li>'
            )
        out.append("</ul>")
    options = '<option value="">Every flow</option>' + "".join(
        f'<option value="{_e(fid)}">{_e(name)}</option>' for fid, name in flows
    )
    out.append(
        f'<form method="post" action="{ADD_PATH}">{csrf}'
        '<label for="delegate">Delegate\'s e-mail</label>'
        '<input id="delegate" name="delegate" type="email" required>'
        '<label for="starts_on">From</label>'
        '<input id="starts_on" name="starts_on" type="date" required>'
        '<label for="ends_on">To (included)</label>'
        '<input id="ends_on" name="ends_on" type="date" required>'
        '<label for="flow_id">Flow</label>'
        f'<select id="flow_id" name="flow_id">{options}</select>'
        '<button type="submit">Name delegate</button></form>'
    )
    out.append("</section>")
    return out


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _e(text: object) -> str:
    return escape(str(text), quote=True)
