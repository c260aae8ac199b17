"""The owner's web form as HTML: the same content as their request card, for a browser.

Drawn from the engine's own views (:class:`~m365perf.cards.OwnerRequestView`,
:class:`~m365perf.cards.ReceiptView`), with the cards' wording, so the form, the card
and the e-mail say the same thing. Plain HTML: no JavaScript, a label for every input,
errors next to the input they are about and summarised at the top, and every value
escaped — indicator names are other people's text, drafts are whatever was typed.

Input names are the card's input ids (``value__{id}``, ``comment__{id}``, ``nodata__{id}``,
``nodatareason__{id}``, ``confirm__{id}``, and the improvement action's ``actionwhat__{id}``,
``actionwho__{id}``, ``actionby__{id}``), plus a hidden ``version__{id}`` per indicator
and hidden ``cycle_id``, ``owner_id`` and ``card_id``, so a posted form reads like a card
click. An open action shown to update has ``actionstatus__{action}``, ``actionnote__{action}``
and a hidden ``actionversion__{action}``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from m365perf.cards import (
    ACTION_MAX_LENGTH,
    ACTION_NOTE_MAX_LENGTH,
    COMMENT_MAX_LENGTH,
    REASON_MAX_LENGTH,
    VALUE_MAX_LENGTH,
    Draft,
    IndicatorRequest,
    OpenAction,
    OwnerRequestView,
    ReceiptView,
    ReturnedIndicator,
    SentBack,
    format_date,
    format_value,
)
from m365perf.cards.formatting import (
    SENT_BACK_REASON_SHOWN,
    commentary_hint,
    direction_word,
    placeholder,
    previous_figure_text,
    rag_word,
    returned_value_text,
    sent_back_heading,
    shortened,
    status_text,
    target_facts,
    tolerance_text,
    unit_name,
)
from m365perf.cards.views import ACTION_STATUSES
from m365perf.domain.kinds import Rag

__all__ = ["STYLE_HASH", "html_page", "render_form", "render_problem", "render_receipt"]

_RECENT_SHOWN = 3

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;
color:#1b1b1b;background:#f6f6f6;line-height:1.45}
main{max-width:46rem;margin:0 auto;padding:1rem 1.25rem 3rem;background:#fff}
h1{font-size:1.6rem;margin:.5rem 0 .25rem}
fieldset,.returned{border:1px solid #b1b4b6;border-radius:4px;margin:1.25rem 0;padding:.75rem 1rem}
legend{font-weight:700;font-size:1.15rem;padding:0 .25rem}
.returned h2{font-size:1.15rem;margin:0 0 .25rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}
dt{color:#505a5f}dd{margin:0}
label{display:block;font-weight:600;margin-top:.75rem}
.check{display:flex;gap:.5rem;align-items:flex-start;margin-top:.75rem}
.check label{margin:0;font-weight:400}
input[type=text],textarea{width:100%;box-sizing:border-box;font:inherit;padding:.4rem;
border:2px solid #0b0c0c;border-radius:0}
input[type=checkbox]{width:1.25rem;height:1.25rem;margin:0}
textarea{min-height:5rem}
input:focus,textarea:focus,button:focus,a:focus{outline:3px solid #fd0;outline-offset:0}
[aria-invalid=true]{border-color:#d4351c}
.errors{color:#d4351c;font-weight:600;margin:.5rem 0 0;padding-left:1.1rem}
.summary{border:4px solid #d4351c;padding:.75rem 1rem;margin:1rem 0}
.summary h2{font-size:1.15rem;margin:0 0 .25rem}
.late,.notice,.sent-back{border-left:6px solid #d4351c;padding:.5rem .75rem;background:#fdf2f0}
.notice{border-color:#1d70b8;background:#eef5fb}
.hint{color:#505a5f}
.rag-green{color:#00703c}.rag-amber{color:#8a5300}.rag-red{color:#d4351c}
button{font:inherit;font-weight:700;color:#fff;background:#00703c;border:0;
padding:.6rem 1.2rem;margin-top:1.25rem;cursor:pointer}
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
"""For the Content-Security-Policy: the page's one inline style, and nothing else, may apply."""

_RAG_CLASSES = {Rag.GREEN: "rag-green", Rag.AMBER: "rag-amber", Rag.RED: "rag-red"}


def render_form(view: OwnerRequestView, *, expires: datetime, notice: str | None = None) -> str:
    """The owner's list: inputs for what is still due, a receipt line for the rest."""
    title = f"{view.flow_name}: {view.period_label}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>Due {_e(format_date(view.due))}</p>",
    ]
    if view.late:
        body.append(
            f'<p class="late"><strong>This return is late: it was due on '
            f"{_e(format_date(view.due))}.</strong></p>"
        )
    for message in (notice, view.notice):
        if message:
            body.append(f'<p class="notice" role="status">{_e(message)}</p>')
    open_items = [
        (n, item)
        for n, item in enumerate(view.indicators, start=1)
        if isinstance(item, IndicatorRequest)
    ]
    with_errors = [(n, item) for n, item in open_items if item.errors]
    if with_errors:
        body += _error_summary(with_errors)
    if open_items:
        body.append(
            f"<p>Hello {_e(view.owner_name)}. Please give a value and commentary for each "
            "indicator, or tick “No data this period” and say why. You can return some "
            "now and the rest later: indicators you leave empty are not sent.</p>"
        )
        body += [
            '<form method="post">',
            _hidden("cycle_id", view.cycle_id),
            _hidden("owner_id", view.owner_id),
            _hidden("card_id", view.card_id),
        ]
    else:
        body.append(f"<p>Hello {_e(view.owner_name)}.</p>")
    for n, item in enumerate(view.indicators, start=1):
        if isinstance(item, ReturnedIndicator):
            body += _returned_section(n, item)
        else:
            body += _request_fieldset(n, item, view.period_label)
    if open_items:
        body += _open_actions(view.actions)
        body += ['<button type="submit">Submit returns</button>', "</form>"]
    else:
        body.append("<p>Everything on this list has been returned. Thank you.</p>")
    body.append(f'<p class="hint">This link works until {_e(format_date(expires))}.</p>')
    return _page(title, body)


def render_receipt(view: ReceiptView, *, form_url: str, notice: str | None = None) -> str:
    """What the submit was accepted as, and what is still to come.

    With a ``notice`` (the page was out of date) it says where things stand instead of
    thanking for figures this submit did not bring.
    """
    title = f"{view.flow_name}: {view.period_label}"
    count = len(view.returned)
    body = [f"<h1>{_e(title)}</h1>"]
    if notice:
        body.append(f'<p class="notice" role="status">{_e(notice)}</p>')
        body.append(f"<p>Where your returns stand, {_e(view.owner_name)}:</p>")
    else:
        body.append(
            f'<p role="status">Thank you, {_e(view.owner_name)}. '
            f"{count} {'return was' if count == 1 else 'returns were'} received.</p>"
        )
    for n, item in enumerate(view.returned, start=1):
        body += _returned_section(n, item, detailed=True)
    if view.outstanding:
        body.append(f"<h2>Still to return by {_e(format_date(view.due))}</h2>")
        body.append("<ul>" + "".join(f"<li>{_e(name)}</li>" for name in view.outstanding))
        body[-1] += "</ul>"
        body.append(f'<p><a href="{_e(form_url)}">Return the remaining indicators</a></p>')
    else:
        body.append("<p>Everything due from you for this period has been returned.</p>")
    return _page(title, body)


def render_problem(title: str, message: str, hint: str | None = None) -> str:
    """A refusal as a page a person can read: what is wrong and what to do."""
    body = [f"<h1>{_e(title)}</h1>", f"<p>{_e(message)}</p>"]
    if hint:
        body.append(f"<p>{_e(hint)}</p>")
    return _page(title, body)


# --- the parts ------------------------------------------------------------------------


def _error_summary(items: Sequence[tuple[int, IndicatorRequest]]) -> list[str]:
    count = len(items)
    heading = (
        "1 indicator needs your attention"
        if count == 1
        else f"{count} indicators need your attention"
    )
    links = "".join(
        f'<li><a href="#i{n}-value">{_e(item.name)}: {_e(item.errors[0])}</a></li>'
        for n, item in items
    )
    return [
        '<div class="summary" role="alert" aria-labelledby="error-summary">',
        f'<h2 id="error-summary">{heading}</h2>',
        "<p>Nothing was saved for these indicators: correct them and submit again.</p>",
        f"<ul>{links}</ul>",
        "</div>",
    ]


def _request_fieldset(n: int, item: IndicatorRequest, period_label: str) -> list[str]:
    iid = item.indicator_id
    draft = item.draft or Draft()
    pre = f"i{n}"
    described = f' aria-describedby="{pre}-errors" aria-invalid="true"' if item.errors else ""
    facts = [("Unit", unit_name(item.unit))]
    facts += target_facts(item.target, item.annual_target, item.unit, item.polarity, period_label)
    tolerance = tolerance_text(item.target, item.tolerance, item.unit, item.polarity)
    if tolerance:
        facts.append(("Tolerance", tolerance))
    if item.comparator:
        facts.append(("Comparator", item.comparator))
    recent = item.recent[-_RECENT_SHOWN:]
    history = [(p.label, format_value(p.value, item.unit)) for p in recent]
    if item.last_year is not None and item.last_year.label not in {p.label for p in recent}:
        history.append(
            (
                f"{item.last_year.label} (same period last year)",
                format_value(item.last_year.value, item.unit),
            )
        )
    hint = commentary_hint(item.commentary_rule.rags, item.commentary_rule.special_cause_concern)
    out = [
        f'<fieldset id="{pre}">',
        f"<legend>{_e(item.name)}</legend>",
        _hidden(f"version__{iid}", str(item.version)),
    ]
    if item.sent_back is not None:
        out.append(_sent_back(item.sent_back, item))
    out.append(_facts(facts, "About this indicator"))
    if history:
        out.append("<p><strong>Recent periods</strong></p>")
        out.append(_facts(history, "Recent periods"))
    if item.errors:
        out.append(
            f'<ul class="errors" id="{pre}-errors">'
            + "".join(f"<li>{_e(error)}</li>" for error in item.errors)
            + "</ul>"
        )
    out += [
        f'<label for="{pre}-value">Value for {_e(period_label)}</label>',
        f'<input type="text" id="{pre}-value" name="value__{_e(iid)}" inputmode="decimal" '
        f'autocomplete="off" maxlength="{VALUE_MAX_LENGTH}" '
        f'placeholder="{_e(placeholder(item.unit))}" value="{_e(draft.value)}"{described}>',
        f'<label for="{pre}-comment">Commentary</label>',
        f'<textarea id="{pre}-comment" name="comment__{_e(iid)}" rows="4" '
        f'maxlength="{COMMENT_MAX_LENGTH}" '
        f'placeholder="{_e(hint)}"{described}>{_e(draft.comment)}</textarea>',
        _checkbox(f"{pre}-nodata", f"nodata__{iid}", "No data this period", draft.no_data),
        f'<label for="{pre}-nodatareason">Reason for no data</label>',
        f'<input type="text" id="{pre}-nodatareason" name="nodatareason__{_e(iid)}" '
        f'maxlength="{REASON_MAX_LENGTH}" placeholder="Only if there is no data this period" '
        f'value="{_e(draft.no_data_reason)}">',
    ]
    if item.needs_confirmation:
        out.append(
            _checkbox(
                f"{pre}-confirm",
                f"confirm__{iid}",
                "I confirm this value is correct",
                draft.confirmed,
            )
        )
    if item.action_hint:
        out += _action_inputs(pre, item, draft)
    out.append("</fieldset>")
    return out


def _action_inputs(pre: str, item: IndicatorRequest, draft: Draft) -> list[str]:
    """What will be done, by whom, by when; the action's errors right after its inputs."""
    iid = _e(item.indicator_id)
    out = [
        "<p><strong>Improvement action</strong></p>",
        f'<p class="hint">{_e(item.action_hint or "")}</p>',
        f'<label for="{pre}-actionwhat">What will be done</label>',
        f'<textarea id="{pre}-actionwhat" name="actionwhat__{iid}" rows="3" '
        f'maxlength="{ACTION_MAX_LENGTH}">{_e(draft.action_what)}</textarea>',
        f'<label for="{pre}-actionwho">By whom (e-mail address; blank: you)</label>',
        f'<input type="email" id="{pre}-actionwho" name="actionwho__{iid}" '
        f'maxlength="254" value="{_e(draft.action_who)}">',
        f'<label for="{pre}-actionby">By when</label>',
        f'<input type="date" id="{pre}-actionby" name="actionby__{iid}" '
        f'value="{_e(draft.action_by)}">',
    ]
    if item.action_errors:
        out.append(
            f'<ul class="errors" id="{pre}-action-errors">'
            + "".join(f"<li>{_e(error)}</li>" for error in item.action_errors)
            + "</ul>"
        )
    return out


def _open_actions(actions: Sequence[OpenAction]) -> list[str]:
    """The owner's open improvement actions, each to update with the submit."""
    if not actions:
        return []
    out = [
        '<fieldset id="actions">',
        "<legend>Your improvement actions</legend>",
        "<p>Say where each action stands; they are updated when you submit.</p>",
    ]
    for action in actions:
        aid = str(action.action_id)
        pre = f"a{aid}"
        overdue = " · <strong>Overdue</strong>" if action.overdue else ""
        options = "".join(
            f'<option value="{value}"{" selected" if value == action.status else ""}>'
            f"{_e(words)}</option>"
            for value, words in ACTION_STATUSES
        )
        out += [
            f"<p><strong>{_e(action.raised_for)}</strong><br>{_e(action.what)}<br>"
            f"{_e(action.who_name)}, by {_e(format_date(action.due))}{overdue}</p>",
            _hidden(f"actionversion__{aid}", str(action.version)),
            f'<label for="{pre}-status">Status</label>',
            f'<select id="{pre}-status" name="actionstatus__{aid}">{options}</select>',
            f'<label for="{pre}-note">Progress note</label>',
            f'<textarea id="{pre}-note" name="actionnote__{aid}" rows="2" '
            f'maxlength="{ACTION_NOTE_MAX_LENGTH}">{_e(action.note)}</textarea>',
        ]
        if action.errors:
            out.append(
                '<ul class="errors">'
                + "".join(f"<li>{_e(error)}</li>" for error in action.errors)
                + "</ul>"
            )
    out.append("</fieldset>")
    return out


def _sent_back(sent_back: SentBack, item: IndicatorRequest) -> str:
    heading = sent_back_heading(
        by_name=sent_back.by_name, at=sent_back.at, correction=sent_back.correction
    )
    reason = shortened(sent_back.reason, SENT_BACK_REASON_SHOWN)
    lines = [f"<strong>{_e(heading)}:</strong> {_e(reason)}"]
    if sent_back.has_previous:
        previous = previous_figure_text(
            sent_back.previous_value, sent_back.previous_no_data_reason, item.unit
        )
        lines.append(f"Previously returned: <strong>{_e(previous)}</strong>")
    return f'<p class="sent-back">{"<br>".join(lines)}</p>'


def _returned_section(n: int, item: ReturnedIndicator, *, detailed: bool = False) -> list[str]:
    value = returned_value_text(item.value, item.no_data_reason, item.unit)
    parts = [f"Returned: <strong>{_e(value)}</strong>"]
    if item.value is not None:
        parts.append(_rag(item.rag))
    if item.late:
        parts.append("<strong>Late</strong>")
    status = status_text(approved=item.approved, awaiting_approval_by=item.awaiting_approval_by)
    parts.append(_e(status))
    out = [
        f'<section class="returned" aria-labelledby="r{n}">',
        f'<h2 id="r{n}">{_e(item.name)}</h2>',
        f"<p>{' · '.join(parts)}</p>",
    ]
    if detailed:
        travel = [
            f"{direction_word(direction)} on the {against}"
            for direction, against in (
                (item.direction_vs_previous, "previous period"),
                (item.direction_vs_last_year, "same period last year"),
            )
            if direction is not None
        ]
        if travel:
            out.append(f"<p>Direction of travel: {_e('; '.join(travel))}</p>")
    out.append("</section>")
    return out


def _rag(rag: Rag) -> str:
    css = _RAG_CLASSES.get(rag)
    word = _e(rag_word(rag))
    return f'<strong class="{css}">{word}</strong>' if css else word


def _facts(pairs: Iterable[tuple[str, str]], label: str) -> str:
    rows = "".join(f"<dt>{_e(title)}</dt><dd>{_e(value)}</dd>" for title, value in pairs)
    return f'<dl aria-label="{_e(label)}">{rows}</dl>'


def _checkbox(input_id: str, name: str, label: str, checked: bool) -> str:
    on = " checked" if checked else ""
    return (
        f'<div class="check"><input type="checkbox" id="{input_id}" name="{_e(name)}" '
        f'value="true"{on}><label for="{input_id}">{_e(label)}</label></div>'
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">'


def _page(title: str, body: Sequence[str]) -> str:
    return html_page(title, body, style=_STYLE)


def html_page(title: str, body: Sequence[str], *, style: str) -> str:
    """The shell every server-rendered page shares: English, phone-width, not indexed,
    no referrer sent with its links (some carry a signed link's token), one inline style."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en-GB">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="robots" content="noindex, nofollow">',
            f"<title>{_e(title)}</title>",
            f"<style>{style}</style>",
            "</head>",
            "<body>",
            "<main>",
            *body,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _e(text: object) -> str:
    return escape(str(text), quote=True)
