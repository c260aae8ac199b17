"""A rehearsal under injected faults, checked against the same rehearsal without them.

What must come out the same (the exactly-once part of the service, ``docs/reliability.md``):
the SharePoint results list, the audit trail and the Power BI refresh history. What may
differ is *how* it got there: retries, a card sent twice after a dropped connection.

The comparison leaves out what is different on every run whatever happens: SharePoint
item ids and timestamps, Power BI request ids and times, and when each audit event
happened (a retried send lands on a later tick of the simulated clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from m365perf.flows.model import Flow
from m365perf.flows.results import RESULT_COLUMNS
from m365perf.m365.factory import M365
from m365perf.store.base import Store

_RESULT_FIELDS = frozenset({"IndicatorId", "Period", *(c.name for c in RESULT_COLUMNS)})
WALL_CLOCK_FIELDS = frozenset({"ReturnedAt", "ApprovedAt"})
"""Result columns that say when on the wall clock: equal across runs on a simulated clock."""


def comparable_result(
    fields: Mapping[str, Any], leave_out: frozenset[str] = frozenset()
) -> tuple[tuple[str, str], ...]:
    """A results row as the service wrote it, without SharePoint's own item fields."""
    return tuple(sorted((k, str(v)) for k, v in fields.items() if k in _RESULT_FIELDS - leave_out))


@dataclass(frozen=True)
class FinalState:
    """What a cycle leaves behind that the council and the public see."""

    results: tuple[tuple[tuple[str, str], ...], ...]
    audit: tuple[tuple[Any, ...], ...]
    powerbi: tuple[tuple[str, str], ...]

    def differences(self, other: FinalState) -> list[str]:
        """Lines saying how ``other`` differs from this run's state (empty: the same)."""
        lines: list[str] = []
        for name in ("results", "audit", "powerbi"):
            mine: Counter[Any] = Counter(getattr(self, name))
            theirs: Counter[Any] = Counter(getattr(other, name))
            missing, extra = mine - theirs, theirs - mine
            lines += [f"{name}: missing {item!r}" for item in sorted(missing, key=repr)[:5]]
            lines += [f"{name}: extra {item!r}" for item in sorted(extra, key=repr)[:5]]
        return lines


def final_state(store: Store, clients: M365, flows: list[Flow]) -> FinalState:
    """Read the results list (over Graph), the audit trail and the Power BI history."""
    graph = clients.graph
    results: list[tuple[tuple[str, str], ...]] = []
    for target in sorted({(f.writeback.site, f.writeback.list_title) for f in flows}):
        host, _, path = target[0].partition(":")
        site = graph.get_site_id(host, path)
        for item in graph.list_items(site, graph.get_list_id(site, target[1])):
            results.append(comparable_result(item.fields))
    with store.transaction() as tx:
        audit = [
            (e.cycle_id, e.action, e.subject_type, e.subject_id, e.actor) for e in tx.list_audit()
        ]
    powerbi: list[tuple[str, str]] = []
    for dataset in sorted({(f.powerbi.workspace, f.powerbi.dataset) for f in flows if f.powerbi}):
        powerbi += [(r.refresh_type, r.status) for r in clients.powerbi.refresh_history(*dataset)]
    return FinalState(tuple(sorted(results)), tuple(sorted(audit, key=repr)), tuple(powerbi))


@dataclass(frozen=True)
class Injected:
    """What the sandbox broke, from its request log: fault or status -> requests."""

    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def text(self) -> str:
        parts = ", ".join(f"{n} {name}" for name, n in sorted(self.counts.items()))
        return f"{self.total} of {self.requests} requests broken ({parts or 'none'})"


def injected(sandbox_url: str) -> Injected:
    """Count the faults in the sandbox's request log (each ``$batch`` part counts)."""
    answer = requests.get(f"{sandbox_url}/_sandbox/requests", timeout=60)
    answer.raise_for_status()
    rows = answer.json().get("value", [])
    counts: Counter[str] = Counter()
    for row in rows:
        fault = row.get("fault")
        if fault == "drop":
            counts["dropped after the write"] += 1
        elif fault == "slow":
            counts["slow (beyond the client timeout)"] += 1
        elif fault in ("503", "429"):
            counts[f"{fault} with Retry-After"] += 1
    return Injected(dict(counts), len(rows))
