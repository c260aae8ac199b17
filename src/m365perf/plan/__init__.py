"""A dry run of one cycle: who would be asked for what, when, and who would approve.

``m365perf plan`` prints it; the engine opens a cycle from the same pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from m365perf.domain.approvers import (
    Directory,
    Person,
    ResolvedStep,
    Unroutable,
    describe_condition,
)
from m365perf.domain.periods import Period
from m365perf.flows.model import Flow
from m365perf.plan.register import Indicator, Row, RowProblem, read_indicators
from m365perf.plan.routing import Route, route
from m365perf.plan.timetable import Timetable, timetable


@dataclass(frozen=True)
class PlannedIndicator:
    indicator: Indicator
    chain: tuple[ResolvedStep, ...]


@dataclass(frozen=True)
class Request:
    """One owner's request: all their due indicators on one card."""

    owner: Person
    line_manager: Person | None
    indicators: tuple[PlannedIndicator, ...]


@dataclass(frozen=True)
class Plan:
    flow: Flow
    timetable: Timetable
    requests: tuple[Request, ...]
    unroutable: tuple[RowProblem, ...]

    def to_dict(self) -> dict[str, Any]:
        """The plan as one JSON-ready document."""
        t = self.timetable
        reminders = [{"on": r.on.isoformat(), "kind": r.kind} for r in t.reminders]
        return {
            "flow": self.flow.id,
            "flow_name": self.flow.name,
            "period": t.period.label,
            "period_start": t.period.start.isoformat(),
            "period_end": t.period.end.isoformat(),
            "opens": t.opens.isoformat(),
            "opens_at": self.flow.schedule.opens_at,
            "due": t.due.isoformat(),
            "reminders": reminders,
            "escalates_on": _iso(t.escalates_on),
            "closes_on": _iso(t.closes_on),
            "closes_when_all_approved": self.flow.close.all_approved,
            "late_returns": self.flow.close.late_returns,
            "channels": list(self.flow.channels),
            "requests": [
                {
                    "owner": _person(r.owner),
                    "channels": list(self.flow.channels),
                    "due": t.due.isoformat(),
                    "reminders": reminders,
                    "escalate_to": _escalate_to(self.flow, r),
                    "escalates_on": _iso(t.escalates_on),
                    "indicators": [_indicator(p, t.period) for p in r.indicators],
                }
                for r in self.requests
            ],
            "unroutable": [
                {"indicator_id": u.indicator_id, "name": u.name, "reason": u.reason}
                for u in self.unroutable
            ],
            "counts": {
                "requests": len(self.requests),
                "indicators": sum(len(r.indicators) for r in self.requests),
                "unroutable": len(self.unroutable),
            },
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _person(person: Person | None) -> dict[str, str] | None:
    if person is None:
        return None
    return {"id": person.id, "name": person.name, "email": person.email}


def _escalate_to(flow: Flow, request: Request) -> Any:
    escalate = flow.reminders.escalate
    if escalate is None:
        return None
    if escalate.to == "performance_team":
        return {"performance_team": list(flow.performance_team)}
    return _person(request.line_manager)


def _indicator(planned: PlannedIndicator, period: Period) -> dict[str, Any]:
    indicator = planned.indicator
    target = indicator.target_for(period)
    tolerance = target.tolerance if target else None
    return {
        "id": indicator.id,
        "name": indicator.name,
        "unit": indicator.unit.value,
        "polarity": indicator.polarity.value,
        "target": target.value if target else None,
        "tolerance": ({"kind": tolerance.kind, "amount": tolerance.amount} if tolerance else None),
        "comparator": indicator.comparator,
        "service": indicator.service,
        "approval_chain": [_step(step) for step in planned.chain],
    }


def _step(step: ResolvedStep) -> dict[str, Any]:
    condition = step.rule.condition
    when: dict[str, Any] | None = None
    if condition is not None:
        when = {
            "rag": sorted(r.value for r in condition.rag_in) if condition.rag_in else None,
            "direction": sorted(condition.direction_in) if condition.direction_in else None,
            "change_over_percent": condition.change_over_percent,
        }
        when = {k: v for k, v in when.items() if v is not None}
    return {
        "step": step.rule.name,
        "approvers": [_person(p) for p in step.approvers],
        "any_of": step.any_of,
        "when": when,
        "condition": describe_condition(condition),
        "note": step.note,
    }


def build_plan(flow: Flow, period: Period, rows: Sequence[Row], directory: Directory) -> Plan:
    """Plan the cycle for ``period``: requests per owner, and what cannot be routed."""
    indicators, problems = read_indicators(flow, rows)
    by_owner: dict[str, list[PlannedIndicator]] = {}
    owners: dict[str, Person] = {}
    unroutable = list(problems)
    for indicator in indicators:
        routed = route(flow, directory, indicator.owner, indicator.row)
        if isinstance(routed, Unroutable):
            unroutable.append(RowProblem(indicator.id, indicator.name, routed.reason))
            continue
        assert isinstance(routed, Route)
        owners[routed.owner.id] = routed.owner
        by_owner.setdefault(routed.owner.id, []).append(PlannedIndicator(indicator, routed.chain))
    requests = tuple(
        Request(owners[key], directory.line_manager(owners[key]), tuple(items))
        for key, items in sorted(by_owner.items(), key=lambda kv: owners[kv[0]].name.lower())
    )
    return Plan(flow, timetable(flow, period), requests, tuple(unroutable))
