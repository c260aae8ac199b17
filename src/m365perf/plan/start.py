"""What a start of the service at a given moment would send: ``m365perf plan --from-now``.

It decides with the same rules as the service and the engine (``plan.catchup``): which
period each flow opens, the dates a late opening gets, and which reminders it skips, so
the plan shows what a first start on an empty database would send. Nothing is sent
and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from m365perf.cards.summary import late_wording, overdue_subject, request_headline
from m365perf.domain.approvers import Directory
from m365perf.flows.model import Flow
from m365perf.plan import Plan, build_plan
from m365perf.plan.catchup import Ladder, Opening, ladder_at_opening, local_day, opening_now
from m365perf.plan.register import Row


@dataclass(frozen=True)
class Message:
    """One message a start would send: when, to whom, what kind and its headline."""

    at: datetime
    to: str
    kind: str
    wording: str
    about: str = ""


@dataclass(frozen=True)
class StartPlan:
    """One flow at a start at ``now``: the period it opens (or why none) and the messages."""

    flow: Flow
    now: datetime
    opening: Opening
    ladder: Ladder | None
    plan: Plan | None
    messages: tuple[Message, ...]

    def to_dict(self) -> dict[str, Any]:
        """The start plan as one JSON-ready document."""
        ladder = self.ladder
        people: dict[str, list[dict[str, str]]] = {}
        for m in self.messages:
            people.setdefault(m.to, []).append(
                {"at": m.at.isoformat(), "kind": m.kind, "wording": m.wording, "about": m.about}
            )
        return {
            "flow": self.flow.id,
            "flow_name": self.flow.name,
            "now": self.now.isoformat(),
            "collect_from": self.flow.collect_from,
            "period": self.opening.period.label,
            "opens": self.opening.opens,
            "reason": self.opening.reason,
            "planned_due": self.opening.planned.due.isoformat(),
            "due": ladder.timetable.due.isoformat() if ladder else None,
            "late": ladder.late if ladder else False,
            "skipped_reminders": [c.kind for c in ladder.skipped] if ladder else [],
            "people": people,
        }


def start_plan(flow: Flow, rows: Sequence[Row], directory: Directory, now: datetime) -> StartPlan:
    """What a start of the service at ``now`` on an empty database would send for ``flow``."""
    opening = opening_now(flow, now)
    if not opening.opens:
        return StartPlan(flow, now, opening, None, None, ())
    period = opening.period
    ladder = ladder_at_opening(flow, period, now)
    plan = build_plan(flow, period, rows, directory)
    due = ladder.timetable.due
    planned_due = ladder.planned.due if ladder.late else None
    headline = request_headline(flow.name, period.label, due)
    messages: list[Message] = []
    for request in plan.requests:
        email = request.owner.email
        notice = late_wording(due, planned_due, late=local_day(now) > due)
        names = ", ".join(p.indicator.name for p in request.indicators)
        messages.append(
            Message(now, email, "request", headline + (f". {notice}" if notice else ""), names)
        )
        for chaser in ladder.reminders:
            notice = late_wording(due, planned_due, late=local_day(chaser.at) > due)
            wording = f"Reminder: {headline}" + (f". {notice}" if notice else "")
            messages.append(Message(chaser.at, email, f"reminder ({chaser.kind})", wording))
        if ladder.escalates_at is not None and flow.reminders.escalate is not None:
            to = _escalation_to(flow, request.line_manager.email if request.line_manager else None)
            for address in to:
                messages.append(
                    Message(
                        ladder.escalates_at,
                        address,
                        "escalation",
                        f"{overdue_subject(request.owner.name, flow.name, period.label)}, "
                        f"due {due.isoformat()} (if still not returned)",
                    )
                )
    if plan.unroutable:
        for address in flow.performance_team:
            messages.append(
                Message(
                    now,
                    address,
                    "cannot be routed",
                    f"{flow.name} {period.label}: {len(plan.unroutable)} indicator(s) "
                    "cannot be routed",
                )
            )
    messages.sort(key=lambda m: (m.to, m.at))
    return StartPlan(flow, now, opening, ladder, plan, tuple(messages))


def _escalation_to(flow: Flow, line_manager: str | None) -> list[str]:
    escalate = flow.reminders.escalate
    if escalate is not None and escalate.to == "line_manager" and line_manager:
        return [line_manager]
    return list(flow.performance_team)
