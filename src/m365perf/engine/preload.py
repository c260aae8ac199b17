"""Reads for a batch of returns done once, so the views built per owner cost no queries.

Opening a cycle builds every owner's request card with the same views a click uses
(``views.owner_request``), and those read the indicator, its target and its history one
return at a time. ``PreloadedReads`` reads them for the whole batch in three statements
first and answers those reads from memory; every other call goes to the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.flows.model import Flow
from m365perf.store import Cycle, HistoryPoint, Indicator, IndicatorTarget, Transaction


class PreloadedReads:
    """A read-through view of ``tx`` with one batch's indicators, targets and history.

    Only reads the batch cannot change are served from memory (the snapshot, its targets
    and the history before the period); any other read or write goes to ``tx``.
    """

    def __init__(
        self, tx: Transaction, flow: Flow, cycle: Cycle, period: Period, keys: Sequence[str]
    ) -> None:
        self._tx = tx
        self._flow_id = flow.id
        self._cycle = cycle
        self._period = period
        self._indicators = tx.find_indicators(flow.id, keys)
        self._targets = tx.targets_for(flow.id, keys, period.start)
        self._history = tx.histories(keys, period.frequency, before=period.start)

    @property
    def transaction(self) -> Transaction:
        """This, typed as the transaction it stands in for."""
        return cast(Transaction, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def get_cycle(self, cycle_id: int) -> Cycle:
        if cycle_id == self._cycle.id:
            return self._cycle
        return self._tx.get_cycle(cycle_id)

    def find_indicator(self, flow_id: str, indicator_key: str) -> Indicator | None:
        if flow_id == self._flow_id and indicator_key in self._indicators:
            return self._indicators[indicator_key]
        return self._tx.find_indicator(flow_id, indicator_key)

    def target_for(
        self, flow_id: str, indicator_key: str, period_start: date
    ) -> IndicatorTarget | None:
        if (
            flow_id == self._flow_id
            and period_start == self._period.start
            and indicator_key in self._indicators
        ):
            return self._targets.get(indicator_key)
        return self._tx.target_for(flow_id, indicator_key, period_start)

    def history(
        self, indicator_key: str, frequency: Frequency, *, before: date | None = None
    ) -> list[HistoryPoint]:
        if (
            Frequency(frequency) == self._period.frequency
            and before == self._period.start
            and indicator_key in self._history
        ):
            return list(self._history[indicator_key])
        return self._tx.history(indicator_key, frequency, before=before)
