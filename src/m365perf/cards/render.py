"""Drawing the cards, as data, with the builders in ``m365perf.cards.build``.

Python decides what each line says (formatted numbers, dates, words) and which card
elements show it; no JSON text is templated, so an officer's text can never end a
string or add an element. Cards are not re-validated on the way out (that costs more
than the rest of the render): the card tests render every card kind across many views
and check each against the Adaptive Cards 1.5 schema. The size limit is checked here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from m365perf.cards import build as b
from m365perf.cards.actions import (
    action_inputs,
    action_versions,
    approver_actions_block,
    open_actions_block,
)
from m365perf.cards.build import Style
from m365perf.cards.build import text_run as _run
from m365perf.cards.formatting import (
    SENT_BACK_REASON_SHOWN,
    commentary_hint,
    direction_colour,
    direction_word,
    format_date,
    format_moment,
    format_value,
    placeholder,
    plain_number,
    previous_figure_text,
    rag_colour,
    rag_word,
    returned_value_text,
    sent_back_heading,
    shortened,
    status_text,
    target_facts,
    tolerance_text,
    unit_name,
)
from m365perf.cards.summary import late_notice
from m365perf.cards.views import (
    ApprovalView,
    Draft,
    IndicatorRequest,
    InputError,
    InputField,
    Outcome,
    OutcomeView,
    OwnerRequestView,
    PeriodValue,
    ReceiptView,
    RejectionView,
    ReturnedIndicator,
    SentBack,
)
from m365perf.domain.kinds import Unit
from m365perf.errors import M365PerfError

__all__ = [
    "COMMENT_MAX_LENGTH",
    "DEFAULT_MAX_BYTES",
    "REASON_MAX_LENGTH",
    "SHOW_REQUEST_VERB",
    "VALUE_MAX_LENGTH",
    "CardTooLargeError",
    "card_size",
    "outlook_card",
    "render_approval",
    "render_outcome",
    "render_owner_requests",
    "render_receipt",
    "render_rejection",
]

SHOW_REQUEST_VERB = "showRequest"
"""A receipt's "Return the remaining indicators": answered with the owner's open request."""

DEFAULT_MAX_BYTES = 28_000
"""Teams refuses a message over about 28 KB; a card must leave room for the envelope."""

_RECENT_SHOWN = 3
_HISTORY_SHOWN = 6
VALUE_MAX_LENGTH = 64
"""The most characters a value input takes (the card's ``maxLength``, and the web form's)."""
COMMENT_MAX_LENGTH = 4000
"""The most characters a commentary input takes."""
REASON_MAX_LENGTH = 1000
"""The most characters a reason takes: for no data, or for rejecting a return."""

Json = dict[str, Any]
_T = TypeVar("_T")


class CardTooLargeError(M365PerfError, ValueError):
    """A card (or one indicator of an owner's list on its own) is over the size limit."""


def card_size(card: Mapping[str, Any]) -> int:
    """Bytes of ``card`` as ``json.dumps`` writes it by default (as ``requests`` sends it).

    That spelling is the longest of the usual ones (non-ASCII as \\u escapes), so a
    card under the limit by this measure is under it however the sender serialises it.
    """
    return len(json.dumps(card).encode("utf-8"))


def outlook_card(
    card: Mapping[str, Any], *, originator: str, correlation_id: str | None = None
) -> Json:
    """A copy of ``card`` for an Outlook actionable e-mail.

    ``originator`` is the provider id from the Actionable Email Developer Dashboard;
    Outlook removes a card without it when sending to anyone but yourself.
    ``hideOriginalBody`` is set: the body is for clients that show no card.
    """
    if not originator.strip():
        raise ValueError("originator must be the actionable-message provider id, not empty")
    result = dict(card)
    result["originator"] = originator
    result["hideOriginalBody"] = True
    if correlation_id is not None:
        result["correlationId"] = correlation_id
    return result


# --- owner request -----------------------------------------------------------------


def render_owner_requests(
    view: OwnerRequestView, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Json]:
    """One owner's request as one card, or as several when one would be too large.

    Every indicator appears on exactly one card, in the owner's order; each card of a
    split says "part 1 of 3" and carries ``part`` and ``parts`` in its submit data
    besides ``cycle_id``, ``owner_id``, ``card_id`` and ``versions`` (indicator id to
    the return version shown, for the indicators that have inputs on that card).
    """
    items = [_indicator_context(item, view.period_label) for item in view.indicators]
    whole = _owner_card(view, items, None)
    if card_size(whole) <= max_bytes:
        return [whole]

    chunks = _split(view, items, max_bytes)
    total = len(chunks)
    cards = []
    for number, chunk in enumerate(chunks, start=1):
        card = _owner_card(view, chunk, (number, total))
        if card_size(card) > max_bytes:  # only past 999 parts, where labels grow
            raise CardTooLargeError(f"part {number} of {total} is over {max_bytes} bytes")
        cards.append(card)
    return cards


def render_rejection(view: RejectionView, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Json:
    """A rejected return sent back to its owner: a request for that one indicator again."""
    indicator = view.indicator
    if indicator.draft is None:
        no_data = view.previous_value is None and bool(view.previous_no_data_reason)
        draft = Draft(
            value="" if view.previous_value is None else plain_number(view.previous_value),
            comment=view.previous_commentary,
            no_data=no_data,
            no_data_reason=view.previous_no_data_reason or "",
        )
        indicator = replace(indicator, draft=draft)
    owner_view = OwnerRequestView(
        cycle_id=view.cycle_id,
        owner_id=view.owner_id,
        card_id=view.card_id,
        owner_name=view.owner_name,
        flow_name=view.flow_name,
        period_label=view.period_label,
        due=view.due,
        indicators=(indicator,),
        late=view.late,
    )
    reason = view.reason
    if len(reason) > SENT_BACK_REASON_SHOWN:  # a correction asked for from the command line
        reason = shortened(reason, SENT_BACK_REASON_SHOWN)
    when = format_moment(view.rejected_at)
    previous = previous_figure_text(
        view.previous_value, view.previous_no_data_reason, view.indicator.unit
    )
    if view.correction:
        rejection = [
            [
                _run("Reopened for correction: ", weight="bolder"),
                _run(f"by {view.rejected_by} at {when}"),
            ],
            [_run("Reason: ", weight="bolder"), _run(reason)],
            [_run("Figure being corrected: ", weight="bolder"), _run(previous)],
            [_run("Please give the corrected figure below and submit it again.")],
        ]
    else:
        rejection = [
            [
                _run("Returned to you: ", weight="bolder"),
                _run(f"rejected by {view.rejected_by} at {when}"),
            ],
            [_run("Reason: ", weight="bolder"), _run(reason)],
            [_run("Previously returned: ", weight="bolder"), _run(previous)],
            [_run("Please correct the return below and submit it again.")],
        ]

    def card_for(item: IndicatorRequest) -> Json:
        context = _indicator_context(item, view.period_label)
        return _owner_card(owner_view, [context], None, rejection=rejection)

    card = card_for(indicator)
    if card_size(card) > max_bytes:
        card = card_for(_fit_draft(indicator, lambda item: card_size(card_for(item)) <= max_bytes))
    return _sized(card, max_bytes)


def _owner_card(
    view: OwnerRequestView,
    items: Sequence[Json],
    part: tuple[int, int] | None,
    *,
    rejection: list[list[Json]] | None = None,
) -> Json:
    versions = {item["id"]: item["version"] for item in items if not item["returned"]}
    errors = sum(1 for item in items if item["errors"])
    title = f"{view.flow_name}: {view.period_label}"
    data: Json = {
        "cycle_id": view.cycle_id,
        "owner_id": view.owner_id,
        "card_id": view.card_id,
        "versions": versions,
    }
    # Open improvement actions ride on the first part (updated with its submit).
    open_actions = view.actions if part is None or part[0] == 1 else ()
    if open_actions and versions:
        data["action_versions"] = action_versions(open_actions)
    part_line = None
    if part is not None:
        data["part"], data["parts"] = part
        part_line = (
            f"This is part {part[0]} of {part[1]} of your list: each part is submitted on its own."
        )
    body: list[Json] = [b.heading(title, size="large")]
    if view.reminder is not None:
        body.append(
            b.text_block(
                f"Reminder {view.reminder} — due {format_date(view.due)}",
                weight="bolder",
                color="warning",
                spacing="none",
            )
        )
    else:
        body.append(b.text_block(f"Due {format_date(view.due)}", subtle=True, spacing="none"))
    late_line = late_notice(view)
    if late_line:
        body.append(_banner([[_run(late_line, weight="bolder")]], "attention"))
    if rejection:
        body.append(_banner(rejection, "attention"))
    if part_line:
        body.append(b.text_block(part_line, weight="bolder"))
    body.append(
        b.rich_text(
            [
                f"Hello {view.owner_name}. Please give a value and commentary for each "
                "indicator, or tick “No data this period” and say why."
            ]
        )
    )
    if view.notice:
        body.append(b.text_block(view.notice, color="attention", weight="bolder"))
    if errors:
        body.append(
            b.text_block(
                f"{_count(errors, 'indicator needs', 'indicators need')} your attention: "
                "see the messages in red below.",
                color="attention",
                weight="bolder",
            )
        )
    body += [item["element"] for item in items]
    if versions:
        body += open_actions_block(open_actions)
    actions = []
    if versions:
        actions.append(b.execute("Submit returns", "submitReturns", data, style="positive"))
    else:
        body.append(
            b.text_block(
                "Everything on this card has been returned. Thank you.",
                subtle=True,
                separator=True,
            )
        )
    return b.card(
        body,
        actions=actions,
        fallback_text=(
            f"{'' if view.reminder is None else f'Reminder {view.reminder}: '}{title}. "
            f"Your performance returns are due {format_date(view.due)}."
        ),
    )


def _indicator_context(item: IndicatorRequest | ReturnedIndicator, period_label: str) -> Json:
    heading = b.rich_text([_run(item.name, weight="bolder")])
    if isinstance(item, ReturnedIndicator):
        element = b.container(
            [heading, b.rich_text(_receipt_runs(item))], separator=True, spacing="large"
        )
        return {
            "id": item.indicator_id,
            "version": None,
            "returned": True,
            "name": item.name,
            "errors": False,
            "element": element,
        }
    draft = item.draft or Draft()
    iid = item.indicator_id
    facts = [("Unit", unit_name(item.unit))]
    facts += target_facts(item.target, item.annual_target, item.unit, item.polarity, period_label)
    tolerance = tolerance_text(item.target, item.tolerance, item.unit, item.polarity)
    if tolerance:
        facts.append(("Tolerance", tolerance))
    recent = item.recent[-_RECENT_SHOWN:]
    history = [(p.label, format_value(p.value, item.unit)) for p in recent]
    if item.last_year is not None and item.last_year.label not in {p.label for p in recent}:
        # an annual return's previous period is the same period last year: shown once
        history.append(
            (
                f"{item.last_year.label} (same period last year)",
                format_value(item.last_year.value, item.unit),
            )
        )
    parts: list[Json] = [heading]
    if item.sent_back:
        parts.append(_banner(_sent_back_lines(item.sent_back, item.unit), "attention"))
    parts.append(b.fact_set(facts, spacing="small"))
    if item.comparator:
        parts.append(b.rich_text([_run("Comparator: ", subtle=True), _run(item.comparator)]))
    if history:
        parts.append(b.text_block("Recent periods", weight="bolder", size="small", spacing="small"))
        parts.append(b.fact_set(history, spacing="none"))
    rule = item.commentary_rule

    def errors_on(field: InputField) -> list[Json]:
        """The messages about one input, to sit right under it (plain ones under the value)."""
        return [
            b.text_block(str(error), color="attention", spacing="small")
            for error in item.errors
            if (error.field if isinstance(error, InputError) else InputField.VALUE) is field
        ]

    parts += [
        b.text_input(
            f"value__{iid}",
            label=f"Value for {period_label}",
            placeholder=placeholder(item.unit),
            value=draft.value,
            max_length=VALUE_MAX_LENGTH,
        ),
        *errors_on(InputField.VALUE),
        b.text_input(
            f"comment__{iid}",
            label="Commentary",
            placeholder=commentary_hint(rule.rags, rule.special_cause_concern),
            value=draft.comment,
            multiline=True,
            max_length=COMMENT_MAX_LENGTH,
        ),
        *errors_on(InputField.COMMENT),
        b.toggle(f"nodata__{iid}", "No data this period", on=draft.no_data),
        b.text_input(
            f"nodatareason__{iid}",
            label="Reason for no data",
            placeholder="Only if there is no data this period",
            value=draft.no_data_reason,
            max_length=REASON_MAX_LENGTH,
        ),
        *errors_on(InputField.NO_DATA_REASON),
    ]
    if item.needs_confirmation:
        parts.append(
            b.toggle(f"confirm__{iid}", "I confirm this value is correct", on=draft.confirmed)
        )
    parts += errors_on(InputField.CONFIRM)
    if item.action_hint:
        parts += action_inputs(iid, item.action_hint, draft, item.action_errors)
    return {
        "id": iid,
        "version": item.version,
        "returned": False,
        "name": item.name,
        "errors": bool(item.errors or item.action_errors),
        "element": b.container(parts, separator=True, spacing="large"),
    }


def _sent_back_lines(sent_back: SentBack, unit: Unit) -> list[list[Json]]:
    """Who sent the return back, when and why; and the figure sent back, if known."""
    heading = sent_back_heading(
        by_name=sent_back.by_name, at=sent_back.at, correction=sent_back.correction
    )
    lines = [
        [
            _run(f"{heading}: ", weight="bolder"),
            _run(shortened(sent_back.reason, SENT_BACK_REASON_SHOWN)),
        ]
    ]
    if sent_back.has_previous:
        previous = previous_figure_text(
            sent_back.previous_value, sent_back.previous_no_data_reason, unit
        )
        lines.append([_run("Previously returned: ", subtle=True), _run(previous, weight="bolder")])
    return lines


def _resubmission_lines(earlier: SentBack, unit: Unit) -> list[list[Json]]:
    """On an approver's card: this return was sent back before, by whom and why, and what
    it said then (so the approver sees what changed)."""
    what = "Resubmitted after a correction was asked for" if earlier.correction else "Resubmitted"
    heading = sent_back_heading(
        by_name=earlier.by_name, at=earlier.at, correction=earlier.correction
    )
    lines = [
        [
            _run(f"{what}: ", weight="bolder"),
            _run(heading[0].lower() + heading[1:]),
        ],
        [
            _run("Reason: ", weight="bolder"),
            _run(shortened(earlier.reason, SENT_BACK_REASON_SHOWN)),
        ],
    ]
    if earlier.has_previous:
        previous = previous_figure_text(
            earlier.previous_value, earlier.previous_no_data_reason, unit
        )
        label = "Figure before the correction: " if earlier.correction else "Previously returned: "
        lines.append([_run(label, subtle=True), _run(previous, weight="bolder")])
    return lines


def _receipt_runs(item: ReturnedIndicator) -> list[Json]:
    runs = [
        _run("Returned: ", subtle=True),
        _run(returned_value_text(item.value, item.no_data_reason, item.unit), weight="bolder"),
    ]
    if item.value is not None:
        runs += [_run(" · "), _run(rag_word(item.rag), color=rag_colour(item.rag))]
    if item.late:
        runs += [_run(" · "), _run("Late", color="attention", weight="bolder")]
    runs += [
        _run(" · "),
        _run(status_text(approved=item.approved, awaiting_approval_by=item.awaiting_approval_by)),
    ]
    return runs


def _split(view: OwnerRequestView, items: list[Json], max_bytes: int) -> list[list[Json]]:
    """Cut the list, in the owner's order, into parts that each fit in ``max_bytes``.

    Each part takes as many indicators as fit, found by doubling and then halving,
    measured on real renders with the widest part label ("part 999 of 999") so that
    the final labels can only make a card shorter.
    """

    def fits(start: int, count: int) -> bool:
        # The first part also carries the open improvement actions.
        card = _owner_card(view, items[start : start + count], (1 if start == 0 else 999, 999))
        return card_size(card) <= max_bytes

    chunks: list[list[Json]] = []
    start = 0
    while start < len(items):
        remaining = len(items) - start
        if not fits(start, 1):
            item = view.indicators[start]
            if isinstance(item, IndicatorRequest) and item.draft is not None:
                items[start] = _indicator_context(
                    _fit_draft(
                        item,
                        lambda cut: (
                            card_size(
                                _owner_card(
                                    view, [_indicator_context(cut, view.period_label)], (999, 999)
                                )
                            )
                            <= max_bytes
                        ),
                    ),
                    view.period_label,
                )
        if not fits(start, 1):
            name = items[start]["name"]
            raise CardTooLargeError(
                f"indicator {name!r} on its own makes a card over the limit of {max_bytes} bytes"
            )
        good, bad = 1, None  # ``good`` indicators fit; ``bad`` do not
        while bad is None and good < remaining:
            trial = min(good * 2, remaining)
            if fits(start, trial):
                good = trial
            else:
                bad = trial
        while bad is not None and bad - good > 1:
            middle = (good + bad) // 2
            if fits(start, middle):
                good = middle
            else:
                bad = middle
        chunks.append(items[start : start + good])
        start += good
    return chunks


# --- receipt -----------------------------------------------------------------------


def render_receipt(view: ReceiptView, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Json:
    """What an owner's submit was accepted as, and what is still to come."""
    title = f"{view.flow_name}: {view.period_label}"
    returned: list[Json] = []
    for item in view.returned:
        lines = [
            [
                _run("Value: ", subtle=True),
                _run(
                    returned_value_text(item.value, item.no_data_reason, item.unit), weight="bolder"
                ),
            ]
        ]
        if item.value is not None:
            lines.append(
                [
                    _run("RAG: ", subtle=True),
                    _run(rag_word(item.rag), color=rag_colour(item.rag), weight="bolder"),
                ]
            )
        travel = _travel_runs(item.direction_vs_previous, item.direction_vs_last_year)
        if travel:
            lines.append([_run("Direction of travel: ", subtle=True), *travel])
        if item.late:
            lines.append([_run("Returned late", color="attention", weight="bolder")])
        lines.append(
            [
                _run(
                    status_text(
                        approved=item.approved, awaiting_approval_by=item.awaiting_approval_by
                    )
                )
            ]
        )
        returned.append(
            b.container(
                [
                    b.rich_text([_run(item.name, weight="bolder")]),
                    *(b.rich_text(line, spacing="none") for line in lines),
                ],
                separator=True,
            )
        )
    body: list[Json] = [
        b.heading(title, size="large"),
        b.text_block(f"Due {format_date(view.due)}", subtle=True, spacing="none"),
        b.rich_text(
            [
                _run(
                    f"Thank you, {view.owner_name}. "
                    f"{_count(len(view.returned), 'return was', 'returns were')} received.",
                    color="good",
                    weight="bolder",
                )
            ]
        ),
        *returned,
    ]
    actions = []
    if view.outstanding:
        body.append(
            b.text_block(
                f"Still to return by {format_date(view.due)} "
                f"({_count(len(view.outstanding), 'indicator', 'indicators')}):",
                weight="bolder",
                separator=True,
                spacing="large",
            )
        )
        body += [b.rich_text(["• ", name], spacing="none") for name in view.outstanding]
        data = {"cycle_id": view.cycle_id, "owner_id": view.owner_id, "card_id": view.card_id}
        actions.append(
            b.execute("Return the remaining indicators", SHOW_REQUEST_VERB, data, inputs="none")
        )
    else:
        body.append(
            b.text_block(
                "Everything due from you for this period has been returned.",
                separator=True,
                spacing="large",
            )
        )
    card = b.card(body, actions=actions, fallback_text=f"{title}: your returns were received.")
    return _sized(card, max_bytes)


# --- approval ----------------------------------------------------------------------


def render_approval(view: ApprovalView, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Json:
    """An approver's card: Approve, or Reject with a reason (required only to reject)."""
    unit = view.unit
    value_text = (
        format_value(view.value, unit)
        if view.value is not None
        else f"No data this period — {view.no_data_reason or 'no reason given'}"
    )
    value_line = [_run(value_text, weight="bolder", size="extraLarge")]
    if view.value is not None:
        value_line += [
            _run("  "),
            _run(rag_word(view.rag), color=rag_colour(view.rag), weight="bolder", size="medium"),
        ]
    facts = [("Period", view.period_label), ("Unit", unit_name(unit))]
    facts += target_facts(view.target, view.annual_target, unit, view.polarity, view.period_label)
    tolerance = tolerance_text(view.target, view.tolerance, unit, view.polarity)
    if tolerance:
        facts.append(("Tolerance", tolerance))
    same_period = (
        view.previous is not None
        and view.last_year is not None
        and view.previous.label == view.last_year.label
    )
    if same_period:  # an annual return: the previous period is last year; say it once
        facts.append(
            (
                "Compared with previous year",
                _compared(view.direction_vs_previous, view.previous, unit),
            )
        )
    else:
        facts.append(
            (
                "Compared with previous period",
                _compared(view.direction_vs_previous, view.previous, unit),
            )
        )
        facts.append(
            (
                "Compared with same period last year",
                _compared(view.direction_vs_last_year, view.last_year, unit),
            )
        )
    if view.long_trend is not None:
        facts.append(
            (
                "Long trend (against the mean of recent periods)",
                direction_word(view.long_trend).capitalize(),
            )
        )
    if view.comparator:
        facts.append(("Comparator", view.comparator))
    if view.submitted_at is not None:
        facts.append(("Submitted", format_moment(view.submitted_at)))
    flags = []
    if view.late:
        flags.append(
            [_run("Late return: ", weight="bolder"), _run("submitted after the due date.")]
        )
    if view.outlier_confirmed:
        flags.append(
            [
                _run("Unusual value: ", weight="bolder"),
                _run("the officer confirmed an unusual value is correct."),
            ]
        )
    if view.probable_missing_data:
        flags.append(
            [
                _run("Probable missing data: ", weight="bolder"),
                _run("the value looks incomplete; check before approving."),
            ]
        )
    variation_lines = []
    if view.variation:
        variation_lines.append([_run("Variation: ", subtle=True), _run(view.variation)])
    if view.assurance:
        variation_lines.append([_run("Target assurance: ", subtle=True), _run(view.assurance)])
    data = {
        "return_id": view.return_id,
        "version": view.version,
        "step_index": view.step_index,
        "card_id": view.card_id,
    }
    history = [(p.label, format_value(p.value, unit)) for p in view.history[-_HISTORY_SHOWN:]]

    def draw(commentary: list[Json]) -> Json:
        body: list[Json] = [
            b.rich_text(
                [
                    _run(
                        f"Step {view.step_index + 1} of {view.step_count}: ",
                        weight="bolder",
                        color="accent",
                    ),
                    _run(view.step_name, color="accent"),
                ]
            ),
            b.heading(view.indicator_name, size="large"),
            b.rich_text(
                [
                    _run(f"{view.period_label} · returned by ", subtle=True),
                    _run(view.owner_name, subtle=True),
                ],
                spacing="none",
            ),
        ]
        if view.error:
            body.append(b.text_block(view.error, color="attention", weight="bolder"))
        if view.resubmission is not None:
            body.append(_banner(_resubmission_lines(view.resubmission, unit), "attention"))
        body += [b.rich_text(value_line, spacing="medium"), b.fact_set(facts)]
        if flags:
            body.append(_banner(flags, "warning"))
        if variation_lines:
            body.append(b.text_block("Statistical variation", weight="bolder", separator=True))
            body += [b.rich_text(line, spacing="none") for line in variation_lines]
        if history:
            body.append(b.text_block("Recent periods", weight="bolder", separator=True))
            body.append(b.fact_set(history, spacing="none"))
        body += [
            b.text_block("Commentary", weight="bolder", separator=True),
            b.rich_text(commentary, spacing="none"),
            *approver_actions_block(view.actions),
            b.text_input(
                "reason",
                label="Reason for rejecting (needed only to reject)",
                placeholder="What should the officer correct?",
                multiline=True,
                max_length=REASON_MAX_LENGTH,
                required_message="Give a reason so the officer knows what to correct.",
            ),
        ]
        actions = [
            b.execute("Approve", "approve", data, inputs="none", style="positive"),
            b.execute("Reject", "reject", data, inputs="auto", style="destructive"),
        ]
        if view.web_link:
            # For a client that cannot run the buttons: the approver's signed-in web page.
            actions.append(b.open_url("Open in your browser", view.web_link))
        return b.card(
            body,
            actions=actions,
            fallback_text=f"Approval needed: {view.indicator_name}, {view.period_label}.",
        )

    commentary = view.commentary or ""
    card = draw(
        [_run(commentary)]
        if commentary.strip()
        else [_run("No commentary given.", subtle=True, italic=True)]
    )
    if card_size(card) > max_bytes and commentary:
        # commentary within its input's limit can still be ~24 kB once JSON-escaped
        card = _cut_to_fit(
            commentary,
            lambda text: draw(
                [
                    _run(text),
                    _run(_cut_note("commentary", text, commentary), subtle=True, italic=True),
                ]
            ),
            lambda drawn: card_size(drawn) <= max_bytes,
        )
    return _sized(card, max_bytes)


# --- outcome -----------------------------------------------------------------------


def render_outcome(view: OutcomeView, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Json:
    """The decided (or out-of-date) approval card: who did what and when; no buttons."""
    when = format_moment(view.at)
    lines: list[list[Json]]
    style: Style
    if view.outcome is Outcome.APPROVED:
        style = "good"
        lines = [
            [
                _run("Approved by ", weight="bolder"),
                _run(view.by or "", weight="bolder"),
                _run(f" at {when}"),
            ]
        ]
        if view.next_step:
            lines.append([_run("Passed on to: ", subtle=True), _run(view.next_step)])
    elif view.outcome is Outcome.REJECTED:
        style = "attention"
        lines = [
            [
                _run("Rejected by ", weight="bolder"),
                _run(view.by or "", weight="bolder"),
                _run(f" at {when}"),
            ],
            [_run("Reason: ", weight="bolder"), _run(view.reason or "")],
            [_run("The return has gone back to its owner.", subtle=True)],
        ]
    else:
        style = "warning"
        first = [_run(f"This card is out of date: a newer version was submitted at {when}")]
        if view.by:
            first += [_run(" by "), _run(view.by)]
        lines = [[*first, _run(".")], [_run("Use the newest card for this return.", subtle=True)]]
    value_line = None
    if view.value is not None and view.unit is not None:
        value_line = [
            _run("Value: ", subtle=True),
            _run(format_value(view.value, view.unit), weight="bolder"),
        ]
    body = [
        b.heading(view.indicator_name, size="large"),
        b.rich_text(
            [
                _run(f"{view.period_label} · returned by ", subtle=True),
                _run(view.owner_name, subtle=True),
            ],
            spacing="none",
        ),
    ]
    if value_line is not None:
        body.append(b.rich_text(value_line))
    body.append(_banner(lines, style))
    fallback = f"{view.indicator_name}, {view.period_label}: {_outcome_sentence(view)}"
    return _sized(b.card(body, fallback_text=fallback), max_bytes)


def render_notice(title: str, message: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Json:
    """A card that only says why a click changed nothing (no figures, no buttons).

    For a caller who may not see the return (a stranger, a tampered card): it names no
    value, owner or indicator beyond what the caller's own card already showed.
    """
    body = [
        b.heading(title, size="large"),
        b.rich_text([_run("m365perf", subtle=True)], spacing="none"),
        _banner([[_run(message)], [_run("Nothing was changed.", subtle=True)]], "attention"),
    ]
    return _sized(b.card(body, fallback_text=f"{title}: {message}"), max_bytes)


def _outcome_sentence(view: OutcomeView) -> str:
    when = format_moment(view.at)
    if view.outcome is Outcome.APPROVED:
        return f"Approved by {view.by} at {when}."
    if view.outcome is Outcome.REJECTED:
        return f"Rejected by {view.by} at {when} — reason: {view.reason}"
    by = f" by {view.by}" if view.by else ""
    return f"This card is out of date: a newer version was submitted at {when}{by}."


# --- shared pieces -----------------------------------------------------------------


def _banner(lines: Sequence[Sequence[Json]], style: Style) -> Json:
    """A coloured box of lines, each a list of runs.

    Its text keeps the default colour: red text on the red box fails WCAG contrast
    (axe-core, in Teams' and Outlook's host configs), and the box already says it.
    """
    return b.container([b.rich_text(line) for line in lines], style=style)


def _compared(direction: str | None, against: PeriodValue | None, unit: Unit) -> str:
    word = direction_word(direction).capitalize() if direction else "Not comparable"
    if against is None:
        return word
    return f"{word} ({against.label}: {format_value(against.value, unit)})"


def _travel_runs(vs_previous: str | None, vs_last_year: str | None) -> list[Json]:
    runs: list[Json] = []
    for direction, against in (
        (vs_previous, "previous period"),
        (vs_last_year, "same period last year"),
    ):
        if direction is None:
            continue
        if runs:
            runs.append(_run("; "))
        runs += [
            _run(direction_word(direction), color=direction_colour(direction), weight="bolder"),
            _run(f" on the {against}"),
        ]
    return runs


def _count(n: int, one: str, many: str) -> str:
    return f"1 {one}" if n == 1 else f"{n} {many}"


def _cut_to_fit(text: str, draw: Callable[[str], _T], fits: Callable[[_T], bool]) -> _T:
    """``draw`` of the longest start of ``text`` that ``fits`` (of none of it, at worst).

    Free text within its input's limit can still overflow a card: JSON writes every
    character outside ASCII as six bytes. Such a card is sent with most of the text
    and says so, rather than not at all.
    """
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(draw(text[:middle])):
            low = middle
        else:
            high = middle - 1
    return draw(text[:low])


def _cut_note(what: str, shown: str, whole: str) -> str:
    return (
        f" (the {what} is shortened to fit the card: {len(shown):,} of "
        f"{len(whole):,} characters shown)"
    )


def _fit_draft(
    item: IndicatorRequest, fits: Callable[[IndicatorRequest], bool]
) -> IndicatorRequest:
    """``item`` with its typed (or pre-filled) commentary cut so that its card fits."""
    draft = item.draft or Draft()
    whole = draft.comment

    def cut(text: str) -> IndicatorRequest:
        note = (
            f"Your commentary is too long to show whole on this card: its first "
            f"{len(text):,} of {len(whole):,} characters are below. Check it before submitting."
        )
        return replace(item, draft=replace(draft, comment=text), errors=(*item.errors, note))

    return _cut_to_fit(whole, cut, fits) if whole else item


def _sized(card: Json, max_bytes: int) -> Json:
    size = card_size(card)
    if size > max_bytes:
        raise CardTooLargeError(f"the card is {size} bytes, over the limit of {max_bytes}")
    return card
