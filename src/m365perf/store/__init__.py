"""Workflow state: one interface (:class:`Store`), one SQL store for SQLite and PostgreSQL.

The engine is the only writer; it changes state, queues side effects (the outbox) and
appends audit events in one :meth:`Store.transaction`. See ``docs/store.md``.
"""

from m365perf.store.base import DEFAULT_LEASE, Store, Transaction
from m365perf.store.errors import (
    AlreadyDecided,
    NestedTransaction,
    NotFound,
    StaleVersion,
    StoreError,
    TransitionRefused,
)
from m365perf.store.factory import SchemaOutOfDate, create_store
from m365perf.store.sql import SqlStore
from m365perf.store.tables import (
    APPROVED_SOURCE,
    ApprovalStep,
    AuditEvent,
    CardChannel,
    CardDelivery,
    ConversationRef,
    Cycle,
    CycleStatus,
    HistoryPoint,
    Indicator,
    IndicatorSpec,
    IndicatorTarget,
    NewReturn,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonSpec,
    Return,
    ReturnFigure,
    ReturnStatus,
    SnapshotResult,
    StepSpec,
    StepStatus,
    Timer,
    TimerStatus,
)

__all__ = [
    "APPROVED_SOURCE",
    "DEFAULT_LEASE",
    "AlreadyDecided",
    "ApprovalStep",
    "AuditEvent",
    "CardChannel",
    "CardDelivery",
    "ConversationRef",
    "Cycle",
    "CycleStatus",
    "HistoryPoint",
    "Indicator",
    "IndicatorSpec",
    "IndicatorTarget",
    "NestedTransaction",
    "NewReturn",
    "NotFound",
    "OutboxMessage",
    "OutboxStatus",
    "Person",
    "PersonSpec",
    "Return",
    "ReturnFigure",
    "ReturnStatus",
    "SchemaOutOfDate",
    "SnapshotResult",
    "SqlStore",
    "StaleVersion",
    "StepSpec",
    "StepStatus",
    "Store",
    "StoreError",
    "Timer",
    "TimerStatus",
    "Transaction",
    "TransitionRefused",
    "create_store",
]
