"""``/metrics``: the process measures and the operational figures, in Prometheus text.

Each scrape reads the store afresh (the same batched reads as the status page, in one
transaction) and adds this process's Microsoft 365 traffic
(:class:`~m365perf.m365.traffic.Traffic`). Store figures are gauges: several ``serve``
instances on one database report the same values, so sum only the traffic counters
across instances.

* ``m365perf_self_return_ratio``, ``m365perf_on_time_ratio``, ``m365perf_rejection_ratio``
  and ``m365perf_time_to_return_hours`` / ``m365perf_time_to_approve_hours`` (``quantile``
  0.5 and 0.9), labelled ``scope`` (flow, cycle, service), ``flow``, ``period`` and
  ``service`` (empty where the scope has none); a measure with nothing to count yet is
  left out rather than reported as zero;
* ``m365perf_outbox_messages`` by ``kind`` and ``status``, ``m365perf_parked_messages``;
* ``m365perf_powerbi_refreshes_today`` and ``m365perf_powerbi_refresh_budget`` by dataset;
* ``m365perf_m365_requests_total``, ``m365perf_m365_throttled_total`` and
  ``m365perf_m365_request_seconds`` by ``service``.

Access (docs/decisions.md): a scraper sends ``Authorization: Bearer`` with
``M365PERF_METRICS_TOKEN``; a person signed in as staff may open it in a browser.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from m365perf.domain.measures import MeasureGroup
from m365perf.flows.model import Flow
from m365perf.m365.traffic import Traffic
from m365perf.store import Store
from m365perf.web.status import StatusReport, gather_status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LABELS = ["scope", "flow", "period", "service"]


def render_metrics(
    store: Store, flows: Mapping[str, Flow], traffic: Traffic | None, *, now: datetime
) -> bytes:
    """The Prometheus text exposition of everything above, read now."""
    report = gather_status(store, flows, now=now)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StoreFigures(report))
    for collector in traffic.collectors() if traffic is not None else []:
        registry.register(collector)
    return generate_latest(registry)


class _StoreFigures(Collector):
    """Gauges of one reading of the store."""

    def __init__(self, report: StatusReport) -> None:
        self._report = report

    def collect(self) -> Iterator[Metric]:
        yield from _measure_families(self._groups())
        outbox = GaugeMetricFamily(
            "m365perf_outbox_messages",
            "Outbox rows by kind and status (pending and in flight: the queue's depth).",
            labels=["kind", "status"],
        )
        for kind, statuses in self._report.outbox_by_kind.items():
            for status, count in statuses.items():
                outbox.add_metric([kind, status], count)
        yield outbox
        yield GaugeMetricFamily(
            "m365perf_parked_messages",
            "Outbox rows the dispatcher gave up on: an operator must look.",
            value=len(self._report.parked),
        )
        asked = GaugeMetricFamily(
            "m365perf_powerbi_refreshes_today",
            "Refreshes used today (London day): asked by the service plus Power BI's own.",
            labels=["dataset", "source"],
        )
        budget = GaugeMetricFamily(
            "m365perf_powerbi_refresh_budget",
            "Refreshes a dataset may have a day (its flow's daily_budget).",
            labels=["dataset"],
        )
        for r in self._report.powerbi:
            asked.add_metric([r.dataset, "service"], r.asked_today)
            asked.add_metric([r.dataset, "scheduled"], r.scheduled_per_day)
            budget.add_metric([r.dataset], r.daily_budget)
        yield asked
        yield budget

    def _groups(self) -> list[MeasureGroup]:
        """Per flow over every cycle, then per open cycle and service (as the page shows)."""
        groups = list(self._report.measures)
        for cycle in self._report.cycles:
            groups.extend(cycle.measures)
        return groups


def _measure_families(groups: list[MeasureGroup]) -> Iterator[Metric]:
    ratios = {
        "self_return": "Returns made before their owner was first chased, of returns made.",
        "on_time": "Returns made by the due date, of returns made or overdue.",
        "rejection": "Decisions that sent a figure back, of decisions taken.",
    }
    families = {
        name: GaugeMetricFamily(f"m365perf_{name}_ratio", text, labels=_LABELS)
        for name, text in ratios.items()
    }
    to_return = GaugeMetricFamily(
        "m365perf_time_to_return_hours",
        "Hours from the request to the first figure (nearest-rank quantile).",
        labels=[*_LABELS, "quantile"],
    )
    to_approve = GaugeMetricFamily(
        "m365perf_time_to_approve_hours",
        "Hours from the approved figure to its approval (nearest-rank quantile).",
        labels=[*_LABELS, "quantile"],
    )
    for g in groups:
        labels = [g.scope, g.flow_id, g.period or "", g.service or ""]
        m = g.measures
        for name, value in (
            ("self_return", m.self_return_rate),
            ("on_time", m.on_time_rate),
            ("rejection", m.rejection_rate),
        ):
            if value is not None:
                families[name].add_metric(labels, value)
        for family, median, p90 in (
            (to_return, m.median_hours_to_return, m.p90_hours_to_return),
            (to_approve, m.median_hours_to_approve, m.p90_hours_to_approve),
        ):
            if median is not None and p90 is not None:
                family.add_metric([*labels, "0.5"], median)
                family.add_metric([*labels, "0.9"], p90)
    yield from families.values()
    yield to_return
    yield to_approve
