"""What goes in a cycle's exceptions report for SLT and scrutiny: pure selection.

The report answers "what should members look at this month?": figures that are red or
amber, special-cause concerns and improvements (NHS England's Making Data Count), big
changes on last period, returns still missing, and improvement actions past their date.
An indicator may appear in several sections (red *and* a concern); its chart is drawn
once. Everything is handed in (the store is read by :mod:`m365perf.reports.gather`), so
the choice of what is an exception is testable without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from m365perf.domain.kinds import Rag
from m365perf.domain.spc import MIN_POINTS, SpcResult, Variation

__all__ = [
    "ActionLine",
    "ExceptionsReport",
    "IndicatorLine",
    "Section",
    "select_exceptions",
]


class Section(StrEnum):
    """A part of the report, in the order it is printed."""

    RED = "red"
    AMBER = "amber"
    CONCERN = "special_cause_concern"
    IMPROVEMENT = "special_cause_improvement"
    BIG_CHANGE = "big_change"
    MISSING = "missing_return"
    OVERDUE_ACTION = "overdue_action"

    @property
    def heading(self) -> str:
        return _TITLES[self]


_TITLES = {
    Section.RED: "Red: off target",
    Section.AMBER: "Amber: near target",
    Section.CONCERN: "Special cause: concern",
    Section.IMPROVEMENT: "Special cause: improvement",
    Section.BIG_CHANGE: "Big changes on last period",
    Section.MISSING: "Missing returns",
    Section.OVERDUE_ACTION: "Improvement actions past their date",
}

#: The statuses whose figure is in (approved, or still with its approvers).
FIGURE_IN = frozenset({"returned", "approved"})


@dataclass(frozen=True)
class ActionLine:
    """An improvement action, named in people's words, as the report shows it."""

    indicator_key: str
    indicator: str
    period: str
    what: str
    who: str
    due_on: date
    status: str
    note: str | None
    return_id: int

    def days_overdue(self, as_of: date) -> int:
        return max(0, (as_of - self.due_on).days)

    def overdue(self, as_of: date) -> bool:
        return self.status != "done" and self.due_on < as_of


@dataclass(frozen=True)
class IndicatorLine:
    """One indicator's return in the cycle, with everything a section might show."""

    key: str
    name: str
    service: str | None
    owner: str
    unit: str
    status: str
    value: float | None = None
    value_text: str | None = None
    no_data_reason: str | None = None
    target: float | None = None
    comparator: str | None = None
    rag: Rag | None = None
    direction: str | None = None
    change_percent: float | None = None
    chart: SpcResult | None = None
    variation_text: str | None = None
    assurance: str | None = None
    commentary: str | None = None
    data_quality_flag: bool = False
    late: bool = False
    sent_back_reason: str | None = None
    actions: tuple[ActionLine, ...] = ()

    @property
    def figure_in(self) -> bool:
        return self.status in FIGURE_IN

    @property
    def variation(self) -> Variation | None:
        """The latest point's label, once the chart has enough points to judge."""
        if self.chart is None or len(self.chart.points) < MIN_POINTS:
            return None
        return self.chart.latest.label


@dataclass(frozen=True)
class ExceptionsReport:
    """The sections of one cycle's report, and the facts its heading states."""

    flow_id: str
    flow_name: str
    period: str
    cycle_id: int
    due_date: date
    as_of: date
    big_change_percent: float
    returns: int
    figures_in: int
    sections: dict[Section, tuple[IndicatorLine, ...]]
    overdue_actions: tuple[ActionLine, ...]
    charted: tuple[IndicatorLine, ...] = field(default=())

    def count(self, section: Section) -> int:
        if section is Section.OVERDUE_ACTION:
            return len(self.overdue_actions)
        return len(self.sections.get(section, ()))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready document (``m365perf report exceptions --format json``)."""
        return {
            "flow": self.flow_id,
            "flow_name": self.flow_name,
            "period": self.period,
            "cycle_id": self.cycle_id,
            "due_date": self.due_date.isoformat(),
            "as_of": self.as_of.isoformat(),
            "big_change_percent": self.big_change_percent,
            "returns": self.returns,
            "figures_in": self.figures_in,
            "counts": {s.value: self.count(s) for s in Section},
            "sections": {
                s.value: [_line_dict(line) for line in self.sections.get(s, ())]
                for s in Section
                if s is not Section.OVERDUE_ACTION
            }
            | {
                Section.OVERDUE_ACTION.value: [
                    _action_dict(a, self.as_of) for a in self.overdue_actions
                ]
            },
            "charts": {line.key: line.chart.as_dict() for line in self.charted if line.chart},
        }


def select_exceptions(
    lines: Sequence[IndicatorLine],
    actions: Sequence[ActionLine],
    *,
    flow_id: str,
    flow_name: str,
    period: str,
    cycle_id: int,
    due_date: date,
    as_of: date,
    big_change_percent: float,
) -> ExceptionsReport:
    """Sort the cycle's returns and the flow's open actions into the report's sections.

    ``big_change_percent``: a change on last period of at least this much is a big
    change. Returns are in the order given (the register's); actions by due date.
    """
    if big_change_percent <= 0:
        raise ValueError(f"a big change must be a positive percentage, got {big_change_percent}")
    rules: dict[Section, Callable[[IndicatorLine], bool]] = {
        Section.RED: lambda x: x.figure_in and x.rag is Rag.RED,
        Section.AMBER: lambda x: x.figure_in and x.rag is Rag.AMBER,
        Section.CONCERN: lambda x: x.figure_in and x.variation is Variation.CONCERN,
        Section.IMPROVEMENT: lambda x: x.figure_in and x.variation is Variation.IMPROVEMENT,
        Section.BIG_CHANGE: lambda x: (
            x.figure_in and x.change_percent is not None and x.change_percent >= big_change_percent
        ),
        # A figure that could not be given (approved or not) is as missing to SLT as
        # one never returned: it is listed here with its reason.
        Section.MISSING: lambda x: not x.figure_in or x.value is None,
    }
    sections = {s: tuple(x for x in lines if rule(x)) for s, rule in rules.items()}
    listed = {x.key for s, chosen in sections.items() if s is not Section.MISSING for x in chosen}
    overdue = tuple(sorted((a for a in actions if a.overdue(as_of)), key=lambda a: a.due_on))
    return ExceptionsReport(
        flow_id=flow_id,
        flow_name=flow_name,
        period=period,
        cycle_id=cycle_id,
        due_date=due_date,
        as_of=as_of,
        big_change_percent=big_change_percent,
        returns=len(lines),
        figures_in=sum(x.figure_in for x in lines),
        sections=sections,
        overdue_actions=overdue,
        charted=tuple(x for x in lines if x.key in listed and x.chart is not None),
    )


def _line_dict(line: IndicatorLine) -> dict[str, Any]:
    variation = line.variation
    return {
        "indicator_id": line.key,
        "indicator": line.name,
        "service": line.service,
        "owner": line.owner,
        "status": line.status,
        "value": line.value,
        "value_text": line.value_text,
        "no_data_reason": line.no_data_reason,
        "unit": line.unit,
        "target": line.target,
        "comparator": line.comparator,
        "rag": line.rag.value if line.rag else None,
        "direction": line.direction,
        "change_percent": line.change_percent,
        "variation": variation.value if variation else None,
        "variation_text": line.variation_text,
        "assurance": line.assurance,
        "commentary": line.commentary,
        "data_quality_flag": line.data_quality_flag,
        "late": line.late,
        "sent_back_reason": line.sent_back_reason,
        "actions": [
            {"what": a.what, "who": a.who, "due_on": a.due_on.isoformat(), "status": a.status}
            for a in line.actions
        ],
    }


def _action_dict(action: ActionLine, as_of: date) -> dict[str, Any]:
    return {
        "indicator_id": action.indicator_key,
        "indicator": action.indicator,
        "period": action.period,
        "what": action.what,
        "who": action.who,
        "due_on": action.due_on.isoformat(),
        "days_overdue": action.days_overdue(as_of),
        "status": action.status,
        "note": action.note,
    }
