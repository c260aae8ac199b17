"""Plain-text versions of the cards, for the body of the e-mail.

Outlook on the desktop without actionable messages, phones' mail apps and gateways that
strip cards all still show the body, so it says everything the card says and points to
the web form, whose link the e-mail draws as a button under the text (a raw address is
some 170 characters of noise). The text is plain: whoever puts it into HTML must escape it.
"""

from __future__ import annotations

from datetime import date

from m365perf.cards.formatting import (
    SENT_BACK_REASON_SHOWN,
    direction_word,
    format_date,
    format_moment,
    format_value,
    one_line,
    previous_figure_text,
    rag_word,
    returned_value_text,
    sent_back_heading,
    shortened,
    status_text,
    target_text,
)
from m365perf.cards.views import (
    ApprovalView,
    IndicatorRequest,
    Outcome,
    OutcomeView,
    OwnerRequestView,
    PeriodValue,
    ReceiptView,
    RejectionView,
    ReturnedIndicator,
    SentBack,
)
from m365perf.domain.kinds import Polarity, Unit

__all__ = ["BROWSER_LINE", "request_subject", "summary_text"]

BROWSER_LINE = "Can’t use the card? Open this in your browser with the button below."

View = OwnerRequestView | ReceiptView | ApprovalView | OutcomeView | RejectionView


def summary_text(view: View, link: str | bool | None = None) -> str:
    """The card's content as plain text; with a ``link`` (a page's address, or True for
    the web form, whose signed link is made at send time) it ends by pointing to the
    button the e-mail draws for it (the address is not repeated here)."""
    if isinstance(view, OwnerRequestView):
        lines = _owner_request(view)
    elif isinstance(view, RejectionView):
        lines = _rejection(view)
    elif isinstance(view, ReceiptView):
        lines = _receipt(view)
    elif isinstance(view, ApprovalView):
        lines = _approval(view)
    elif isinstance(view, OutcomeView):
        lines = _outcome(view)
    else:
        raise TypeError(f"no summary for {type(view).__name__}")
    if link:
        lines += ["", BROWSER_LINE]
    return "\n".join(lines) + "\n"


def request_headline(flow_name: str, period_label: str, due: date) -> str:
    """The subject of an owner's request before any "Reminder:" or sent-back prefix."""
    return f"{flow_name} {period_label}: returns due {format_date(due)}"


def overdue_subject(owner_name: str, flow_name: str, period_label: str) -> str:
    """The escalation e-mail's subject; "returns" once, even when the flow is named so."""
    what = flow_name if flow_name.rstrip().lower().endswith("returns") else f"{flow_name} returns"
    return f"Overdue: {owner_name}'s {what} for {period_label}"


def late_notice(view: OwnerRequestView) -> str | None:
    """What is true about a late request: overdue, or asked after its planned due date."""
    return late_wording(view.due, view.planned_due, late=view.late)


def late_wording(due: date, planned_due: date | None, *, late: bool) -> str | None:
    """The late line of an owner's request (also what ``plan --from-now`` shows).

    A cycle opened long after its planned dates (a first start) counts its due date from
    the day the owner was first asked; the request says so rather than pretending.
    """
    if late:
        return f"This return is late: it was due on {format_date(due)}."
    if planned_due is not None and planned_due < due:
        return (
            f"This was due on {format_date(planned_due)}. This request reaches you "
            f"late, so you have until {format_date(due)}."
        )
    return None


def request_subject(view: OwnerRequestView, *, reminder: bool) -> str:
    """The e-mail subject of an owner's request: it says when any return was sent back.

    "Reminder: 1 return sent back to you — Corporate performance 2026/27 Q3: returns due
    Wednesday 13 January 2027"; "reopened for correction" when every one sent back was
    reopened by the performance team. Without any sent back, "[Reminder: ]Corporate
    performance 2026/27 Q3: returns due …". On one line, whatever the names hold.
    """
    sent_back = [
        item.sent_back
        for item in view.indicators
        if isinstance(item, IndicatorRequest) and item.sent_back is not None
    ]
    subject = request_headline(view.flow_name, view.period_label, view.due)
    if sent_back:
        count = len(sent_back)
        returns = "1 return" if count == 1 else f"{count} returns"
        how = (
            "reopened for correction"
            if all(item.correction for item in sent_back)
            else "sent back to you"
        )
        subject = f"{returns} {how} — {subject}"
    if reminder:
        subject = f"Reminder: {subject}"
    return one_line(subject)


def _owner_request(view: OwnerRequestView) -> list[str]:
    due = f"Due {format_date(view.due)}"
    if view.reminder is not None:
        due = f"Reminder {view.reminder} — due {format_date(view.due)}"
    lines = [f"{view.flow_name}: {view.period_label}", due]
    if view.notice:
        lines.append(view.notice)
    late = late_notice(view)
    if late:
        lines.append(late)
    lines += ["", f"Hello {view.owner_name}. Please return these indicators:"]
    for item in view.indicators:
        lines.append("")
        lines += (
            _returned_lines(item) if isinstance(item, ReturnedIndicator) else _request_lines(item)
        )
    if view.actions:
        lines += ["", "Your improvement actions (say where each stands on the card):"]
        for action in view.actions:
            overdue = ", overdue" if action.overdue else ""
            status = action.status.replace("_", " ")
            lines.append(
                f"- {action.raised_for}: {action.what} ({action.who_name}, by "
                f"{format_date(action.due)}; {status}{overdue})"
            )
    return lines


def _rejection(view: RejectionView) -> list[str]:
    when = format_moment(view.rejected_at)
    previous = previous_figure_text(
        view.previous_value, view.previous_no_data_reason, view.indicator.unit
    )
    if view.correction:
        what = f"Reopened for correction by {view.rejected_by} at {when}."
        figure = f"  Figure being corrected: {previous}"
    else:
        what = f"Returned to you: rejected by {view.rejected_by} at {when}."
        figure = f"  Your previous value: {previous}"
    return [
        f"{view.flow_name}: {view.period_label}",
        f"Due {format_date(view.due)}",
        "",
        what,
        f"Reason: {view.reason}",
        "",
        *_request_lines(view.indicator),
        figure,
    ]


def _request_lines(item: IndicatorRequest) -> list[str]:
    lines = [f"- {item.name}"]
    if item.sent_back is not None:
        lines += _sent_back_lines(item.sent_back, item.unit)
    lines += _target_lines(item.target, item.annual_target, item.unit, item.polarity, "  ")
    if item.comparator:
        lines.append(f"  Comparator: {item.comparator}")
    shown = item.recent[-3:]
    recent = [_period(p, item.unit) for p in shown]
    if item.last_year is not None and item.last_year.label not in {p.label for p in shown}:
        recent.append(f"{_period(item.last_year, item.unit)} (same period last year)")
    if recent:
        lines.append("  Recent: " + "; ".join(recent))
    lines += [f"  ! {error}" for error in item.errors]
    return lines


def _sent_back_lines(sent_back: SentBack, unit: Unit) -> list[str]:
    heading = sent_back_heading(
        by_name=sent_back.by_name, at=sent_back.at, correction=sent_back.correction
    )
    lines = [f"  {heading}: {shortened(sent_back.reason, SENT_BACK_REASON_SHOWN)}"]
    if sent_back.has_previous:
        previous = previous_figure_text(
            sent_back.previous_value, sent_back.previous_no_data_reason, unit
        )
        lines.append(f"  Previously returned: {previous}")
    return lines


def _returned_lines(item: ReturnedIndicator) -> list[str]:
    value = returned_value_text(item.value, item.no_data_reason, item.unit)
    parts = [value]
    if item.value is not None:
        parts.append(rag_word(item.rag))
    if item.late:
        parts.append("late")
    status = status_text(approved=item.approved, awaiting_approval_by=item.awaiting_approval_by)
    lines = [f"- {item.name}", "  Returned: " + ", ".join(parts), f"  {status}"]
    travel = []
    if item.direction_vs_previous:
        travel.append(f"{direction_word(item.direction_vs_previous)} on the previous period")
    if item.direction_vs_last_year:
        travel.append(f"{direction_word(item.direction_vs_last_year)} on the same period last year")
    if travel:
        lines.append("  Direction of travel: " + "; ".join(travel))
    return lines


def _receipt(view: ReceiptView) -> list[str]:
    lines = [
        f"{view.flow_name}: {view.period_label}",
        "",
        f"Thank you, {view.owner_name}. These returns were received:",
    ]
    for item in view.returned:
        lines.append("")
        lines += _returned_lines(item)
    lines.append("")
    if view.outstanding:
        lines.append(f"Still to return by {format_date(view.due)}:")
        lines += [f"- {name}" for name in view.outstanding]
    else:
        lines.append("Everything due from you for this period has been returned.")
    return lines


def _approval(view: ApprovalView) -> list[str]:
    value = (
        format_value(view.value, view.unit)
        if view.value is not None
        else f"no data this period ({view.no_data_reason or 'no reason given'})"
    )
    lines = [
        f"Step {view.step_index + 1} of {view.step_count}: {view.step_name}",
        f"Approval needed: {view.indicator_name}, {view.period_label}",
        f"Returned by {view.owner_name}",
    ]
    if view.resubmission is not None:
        earlier = view.resubmission
        heading = sent_back_heading(
            by_name=earlier.by_name, at=earlier.at, correction=earlier.correction
        )
        lines.append(f"Resubmitted: {heading[0].lower()}{heading[1:]}.")
        lines.append(f"Reason: {shortened(earlier.reason, SENT_BACK_REASON_SHOWN)}")
        if earlier.has_previous:
            previous = previous_figure_text(
                earlier.previous_value, earlier.previous_no_data_reason, view.unit
            )
            lines.append(f"Previously returned: {previous}")
    lines += [
        "",
        f"Value: {value}" + (f" ({rag_word(view.rag)})" if view.value is not None else ""),
    ]
    if view.target is not None:
        lines += _target_lines(view.target, view.annual_target, view.unit, view.polarity, "")
    comparisons = [
        ("previous period", view.direction_vs_previous, view.previous),
        ("same period last year", view.direction_vs_last_year, view.last_year),
    ]
    previous_period, last_year = view.previous, view.last_year
    if previous_period and last_year and previous_period.label == last_year.label:
        # annual: the previous period is the same period last year; compare once
        comparisons = [("previous year", view.direction_vs_previous, view.previous)]
    for label, direction, against in comparisons:
        if direction is not None:
            where = f" ({_period(against, view.unit)})" if against is not None else ""
            lines.append(f"Compared with {label}: {direction_word(direction)}{where}")
    if view.long_trend is not None:
        lines.append(f"Long trend: {direction_word(view.long_trend)}")
    if view.comparator:
        lines.append(f"Comparator: {view.comparator}")
    if view.variation:
        lines.append(f"Variation: {view.variation}")
    if view.assurance:
        lines.append(f"Target assurance: {view.assurance}")
    if view.late:
        lines.append("Late return.")
    if view.outlier_confirmed:
        lines.append("Unusual value: the officer confirmed it is correct.")
    if view.probable_missing_data:
        lines.append("Probable missing data: check before approving.")
    if view.history:
        recent = "; ".join(_period(p, view.unit) for p in view.history[-6:])
        lines.append(f"Recent periods: {recent}")
    lines += ["", "Commentary:", (view.commentary or "").strip() or "(none given)"]
    return lines


def _outcome(view: OutcomeView) -> list[str]:
    when = format_moment(view.at)
    lines = [f"{view.indicator_name}, {view.period_label} (returned by {view.owner_name})"]
    if view.value is not None and view.unit is not None:
        lines.append(f"Value: {format_value(view.value, view.unit)}")
    if view.outcome is Outcome.APPROVED:
        lines.append(f"Approved by {view.by} at {when}.")
        if view.next_step:
            lines.append(f"Passed on to: {view.next_step}")
    elif view.outcome is Outcome.REJECTED:
        lines.append(f"Rejected by {view.by} at {when} — reason: {view.reason}")
    else:
        by = f" by {view.by}" if view.by else ""
        lines.append(f"This card is out of date: a newer version was submitted at {when}{by}.")
    return lines


def _target_lines(
    target: float | None, annual: float | None, unit: Unit, polarity: Polarity, indent: str
) -> list[str]:
    """The target judged against; a year-to-date one with the year's beside it."""
    if annual is None:
        return [f"{indent}Target: {target_text(target, unit, polarity)}"]
    return [
        f"{indent}Target (year to date): {target_text(target, unit, polarity)}",
        f"{indent}Annual target: {format_value(annual, unit)}",
    ]


def _period(period: PeriodValue, unit: Unit) -> str:
    return f"{period.label}: {format_value(period.value, unit)}"
