"""The columns of the SharePoint lists a flow writes to: one list of names and kinds.

Write-back builds its results row from :data:`RESULT_COLUMNS` and ``provision`` /
``doctor`` create and check the list from it, so a new field cannot reach one side only.
Kinds are Microsoft Graph column kinds (``text``, ``number``, ``boolean``, ``dateTime``).
"""

from __future__ import annotations

from dataclasses import dataclass

from m365perf.flows.model import WriteBack

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_KEY",
    "HISTORY_COLUMNS",
    "HISTORY_KEY",
    "RESULT_COLUMNS",
    "ResultColumn",
    "result_key",
]


@dataclass(frozen=True)
class ResultColumn:
    """One column a row is written to; ``multiline`` text may pass 255 characters."""

    name: str
    kind: str = "text"
    multiline: bool = False


RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("Title"),
    ResultColumn("Flow"),
    ResultColumn("CycleId"),
    ResultColumn("PeriodStart"),
    ResultColumn("Value", "number"),
    ResultColumn("ValueText"),
    ResultColumn("NoDataReason", multiline=True),
    ResultColumn("Unit"),
    ResultColumn("Target"),
    ResultColumn("Comparator"),
    ResultColumn("Rag"),
    ResultColumn("DirectionPrevious"),
    ResultColumn("DirectionLastYear"),
    ResultColumn("DirectionLongTrend"),
    ResultColumn("Variation"),
    ResultColumn("Assurance"),
    ResultColumn("VariationColour"),
    ResultColumn("Commentary", multiline=True),
    ResultColumn("DataQualityFlag", "boolean"),
    ResultColumn("Late", "boolean"),
    ResultColumn("ReturnedBy"),
    ResultColumn("ReturnedAt", "dateTime"),
    ResultColumn("ApprovedBy"),
    ResultColumn("ApprovedAt", "dateTime"),
    ResultColumn("Version", "number"),
)
"""Every column of a results row but the two key columns (see :func:`result_key`)."""

HISTORY_KEY: tuple[str, ...] = ("IndicatorId", "Period", "Series")
"""The history list's key: one value per indicator, period and series (council, England…)."""

HISTORY_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("Title"),
    ResultColumn("IndicatorId"),
    ResultColumn("Period"),
    ResultColumn("Series"),
    ResultColumn("Value", "number"),
    ResultColumn("ValueText"),
    ResultColumn("Scope"),
    ResultColumn("DataDate"),
)
"""Past values by indicator, period and series, as the demo and history import read them."""


ACTION_KEY = "ActionId"
"""The actions list's key: one item per improvement action, updated in place."""

ACTION_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("Title"),
    ResultColumn(ACTION_KEY),
    ResultColumn("Flow"),
    ResultColumn("IndicatorId"),
    ResultColumn("Indicator"),
    ResultColumn("Period"),
    ResultColumn("RaisedFor"),
    ResultColumn("Action", multiline=True),
    ResultColumn("ActionBy"),
    ResultColumn("ActionByEmail"),
    ResultColumn("DueDate"),
    ResultColumn("Status"),
    ResultColumn("Note", multiline=True),
    ResultColumn("Owner"),
    ResultColumn("RaisedAt", "dateTime"),
    ResultColumn("UpdatedBy"),
    ResultColumn("UpdatedAt", "dateTime"),
    ResultColumn("Version", "number"),
)
"""Every column of an actions row, its key (`ActionId`) included."""


def result_key(writeback: WriteBack) -> tuple[str, str]:
    """The results list's (indicator, period) key columns: the flow's ``key``, padded.

    Write-back filters on these columns to find the row it updates, so they must be
    indexed. A key of one column names the indicator column; the period then goes to
    ``Period`` (never into the indicator's own column).
    """
    key_id = writeback.key[0]
    key_period = writeback.key[1] if len(writeback.key) > 1 else "Period"
    return key_id, key_period
