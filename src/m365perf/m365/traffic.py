"""What this process has asked of Microsoft 365: requests, 429s and latency, by service.

Observation only, for ``/metrics``: every HTTP attempt :class:`~m365perf.m365.http.HttpCore`
makes is counted here (a retried request counts each try, since each one spends the
tenant's allowance). The service is the budget the request spent from (``sharepoint``,
``graph``, ``mail``, ``bot``, ``powerbi``); mailboxes share the one label ``mail`` so
no address ends up in a metric.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds; Graph answers most calls well under a second, batches and sends take longer."""


def service_label(budget_name: str) -> str:
    """The metric label of a budget: ``mailbox:someone@…`` is ``mail``, ``bot:<conversation>``
    is ``bot`` (one label per service, not per mailbox or chat)."""
    family = budget_name.split(":", 1)[0]
    return "mail" if family == "mailbox" else family


class Traffic:
    """Counters of one process's Microsoft 365 requests (registered by ``/metrics``)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "m365perf_m365_requests",
            "HTTP attempts made to Microsoft 365, by service and status code.",
            ["service", "code"],
            registry=None,
        )
        self.throttled = Counter(
            "m365perf_m365_throttled",
            "Microsoft 365 answers of 429 Too Many Requests, by service.",
            ["service"],
            registry=None,
        )
        self.latency = Histogram(
            "m365perf_m365_request_seconds",
            "Time to an answer from Microsoft 365, by service.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )

    def record(self, budget_name: str, status: int | None, seconds: float) -> None:
        """One attempt: its status (None: no answer, a timeout or dropped connection)."""
        service = service_label(budget_name)
        self.requests.labels(service, str(status) if status is not None else "none").inc()
        if status == 429:
            self.throttled.labels(service).inc()
        self.latency.labels(service).observe(max(0.0, seconds))

    def collectors(self) -> list[Collector]:
        return [self.requests, self.throttled, self.latency]
