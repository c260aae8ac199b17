"""Process measures: how well the cycle itself runs, per flow, cycle and service.

Maidstone's headline was that 90% of updates came back without chasing; these are the
figures behind it. Pure computation over :class:`ReturnHistory` records (the engine
gathers them from the store); no clock, no I/O.

Definitions (docs/decisions.md):

* **self-return rate** — of the returns made, the share whose first figure came in before
  its owner was first chased in that cycle;
* **on-time rate** — of the returns made or overdue, the share whose first figure came
  in on or before the due date;
* **time to return** — from the request (the return's creation) to its first figure;
* **time to approve** — from the figure that was approved to its approval;
* **rejection rate** — of the decisions taken on figures (approved or sent back), the
  share sent back.

Medians and 90th percentiles are by the nearest-rank method: always a time some return
actually took, never an interpolation between two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class ReturnHistory:
    """What the measures need of one return: when it was asked for, returned, decided."""

    flow_id: str
    cycle_id: int
    period: str
    service: str
    due_date: date
    asked_at: datetime
    first_returned_at: datetime | None
    first_returned_on: date | None
    """The London day of the first figure (lateness is judged by the council's day)."""
    first_chased_at: datetime | None
    """When the owner was first chased for the cycle's returns (None: never)."""
    approved_submission_at: datetime | None
    """When the figure that was approved came in (None: not approved)."""
    approved_at: datetime | None
    approvals: int
    rejections: int


@dataclass(frozen=True, slots=True)
class Measures:
    """The process measures of a set of returns; a rate is None when nothing counts yet."""

    returns: int
    returned: int
    self_returned: int
    self_return_rate: float | None
    due: int
    on_time: int
    on_time_rate: float | None
    median_hours_to_return: float | None
    p90_hours_to_return: float | None
    approved: int
    median_hours_to_approve: float | None
    p90_hours_to_approve: float | None
    decisions: int
    rejections: int
    rejection_rate: float | None


@dataclass(frozen=True, slots=True)
class MeasureGroup:
    """The measures of one flow, one cycle, or one service within a cycle."""

    scope: str
    """``flow``, ``cycle`` or ``service``."""
    flow_id: str
    period: str | None
    service: str | None
    measures: Measures


def returned_before_chase(item: ReturnHistory) -> bool:
    """The owner made this return before anyone chased them for it."""
    if item.first_returned_at is None:
        return False
    return item.first_chased_at is None or item.first_returned_at < item.first_chased_at


def measure(items: Iterable[ReturnHistory], *, today: date) -> Measures:
    """The measures of ``items``; ``today`` (a London day) decides which are overdue."""
    items = list(items)
    returned = [i for i in items if i.first_returned_at is not None]
    self_returned = sum(1 for i in returned if returned_before_chase(i))
    due = [i for i in items if i.first_returned_on is not None or today > i.due_date]
    on_time = sum(
        1 for i in due if i.first_returned_on is not None and i.first_returned_on <= i.due_date
    )
    to_return = [_hours(i.asked_at, i.first_returned_at) for i in returned]
    approved = [i for i in items if i.approved_at is not None]
    to_approve = [_hours(i.approved_submission_at, i.approved_at) for i in approved]
    decisions = sum(i.approvals + i.rejections for i in items)
    rejections = sum(i.rejections for i in items)
    return Measures(
        returns=len(items),
        returned=len(returned),
        self_returned=self_returned,
        self_return_rate=_rate(self_returned, len(returned)),
        due=len(due),
        on_time=on_time,
        on_time_rate=_rate(on_time, len(due)),
        median_hours_to_return=nearest_rank(to_return, 50),
        p90_hours_to_return=nearest_rank(to_return, 90),
        approved=len(approved),
        median_hours_to_approve=nearest_rank(to_approve, 50),
        p90_hours_to_approve=nearest_rank(to_approve, 90),
        decisions=decisions,
        rejections=rejections,
        rejection_rate=_rate(rejections, decisions),
    )


def measure_groups(items: Sequence[ReturnHistory], *, today: date) -> list[MeasureGroup]:
    """Measures per flow, per cycle and per service within each cycle, in that order."""
    out: list[MeasureGroup] = []
    for scope in ("flow", "cycle", "service"):
        groups: dict[tuple[str, int, str], list[ReturnHistory]] = {}
        for item in items:
            key = (
                item.flow_id,
                item.cycle_id if scope != "flow" else 0,
                item.service if scope == "service" else "",
            )
            groups.setdefault(key, []).append(item)
        for (flow_id, _cycle, service), members in sorted(groups.items(), key=lambda g: g[0]):
            out.append(
                MeasureGroup(
                    scope,
                    flow_id,
                    members[0].period if scope != "flow" else None,
                    service if scope == "service" else None,
                    measure(members, today=today),
                )
            )
    return out


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None for none): a value from the list."""
    if not values:
        return None
    if not 0 < percentile <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {percentile}")
    ordered = sorted(values)
    rank = math.ceil(percentile / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def _hours(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        raise ValueError("a duration needs both its start and its end")
    return max(0.0, (end - start).total_seconds() / 3600)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
