"""The outbox dispatcher: sends what the engine queued, through the Microsoft 365 clients.

The engine writes outbox rows with its state changes; :class:`Dispatcher` claims the due
ones, sends them concurrently within each budget and tells the engine about every
success with ``on_sent``. It decides nothing about the workflow. The rows it reads and
the outcomes it reports are the models of ``m365perf.messages`` (``docs/outbox.md``).
"""

from __future__ import annotations

from m365perf.dispatch._sends import Delivery, FindDelivery
from m365perf.dispatch.dispatcher import (
    DEFAULT_CONCURRENCY,
    Dispatcher,
    DrainReport,
    OnParked,
    OnSent,
    Outage,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Delivery",
    "Dispatcher",
    "DrainReport",
    "FindDelivery",
    "OnParked",
    "OnSent",
    "Outage",
]
