"""Bring a council's past approved values in as history, per indicator, with an audit row.

An import is planned first (every row accepted or rejected with why, every clash with a
value already held), and written only when asked. It never overwrites: a different value
already in the store (approved in m365perf or imported before) wins and is reported, the
same value is "unchanged", so running an import again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from m365perf.domain.exports import ExportValueError, read_number, read_period
from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import APPROVED_SOURCE, HistoryPoint, Store, Transaction

LONDON = ZoneInfo("Europe/London")
NOT_IN_REGISTER = (
    "not in the register: kept for when it is added (check the id if it should be there)"
)
"""What the report says of an indicator id no register snapshot holds. Its rows are
imported, not rejected: a council often loads history before a new indicator's first
cycle, and the warning shows a mistyped id."""


@dataclass(frozen=True)
class HistoryRow:
    """One row of an export as read, before judging: its line (a list item's id), its cells."""

    line: int
    indicator: str
    period: object
    value: object
    note: str | None = None
    source: str | None = None
    problem: str | None = None
    """Why the reader could not take the row's cells (e.g. a formula never calculated)."""


@dataclass(frozen=True)
class Rejected:
    """A row that was not imported, and why (shown with its file line)."""

    line: int
    indicator: str
    period: str
    reason: str


@dataclass(frozen=True)
class Clash:
    """A row whose value differs from the one the store already holds (which is kept)."""

    line: int
    indicator: str
    period: str
    value: float
    existing: float
    existing_source: str


@dataclass(frozen=True)
class _Accepted:
    line: int
    indicator: str
    period: Period
    value: float
    note: str | None
    source: str


@dataclass
class ImportReport:
    """What an import did (or would do, on a dry run)."""

    source: str
    applied: bool
    place: str = "line"
    """What a row's number is: the file's ``line``, or a SharePoint list ``item``."""
    rows: int = 0
    new: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)
    not_in_register: dict[str, int] = field(default_factory=dict)
    """Indicator ids no register snapshot holds, with their accepted rows (a warning)."""

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "source": self.source,
            "applied": self.applied,
            "place": self.place,
            "rows": self.rows,
            "new": self.new,
            "unchanged": self.unchanged,
            "rejected": [vars(r) for r in self.rejected],
            "clashes": [vars(c) for c in self.clashes],
            "warnings": [
                {"indicator": key, "rows": n, "warning": NOT_IN_REGISTER}
                for key, n in sorted(self.not_in_register.items())
            ],
        }

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        head = (
            f"History import from {self.source}: written."
            if self.applied
            else f"History import from {self.source}: dry run, nothing written "
            "(add --apply to write)."
        )
        out = [
            head,
            f"{self.rows} rows read: {self.new} new, {self.unchanged} unchanged, "
            f"{len(self.rejected)} rejected, {len(self.clashes)} clashing.",
        ]
        if self.rejected:
            out.append("Rejected:")
            out += [
                f"  {self.place} {r.line}: {r.indicator or '(no id)'} {r.period or '(no period)'}: "
                f"{r.reason}"
                for r in self.rejected
            ]
        if self.clashes:
            out.append("Clashing (the value already held is kept):")
            out += [
                f"  {self.place} {c.line}: {c.indicator} {c.period}: the file says {c.value:g}, "
                f"the store holds {c.existing:g} ({_origin(c.existing_source)})"
                for c in self.clashes
            ]
        if self.not_in_register:
            out.append(f"Warning: {NOT_IN_REGISTER}:")
            out += [f"  {key} ({n} rows)" for key, n in sorted(self.not_in_register.items())]
        return out


def _origin(source: str) -> str:
    return "an approved return" if source == APPROVED_SOURCE else f"from {source}"


def import_history(
    store: Store,
    rows: Sequence[HistoryRow],
    *,
    source: str,
    by: str,
    now: datetime,
    apply: bool = False,
    place: str = "line",
) -> ImportReport:
    """Judge every row and, with ``apply``, write the new ones and one audit event.

    ``source`` names the import (``import:coventry-pentana-export.csv``); it is recorded
    with every value written, so any point on a chart can be traced to its file.
    """
    report = ImportReport(source=source, applied=apply, place=place, rows=len(rows))
    with store.transaction() as tx:
        accepted = _judge(tx, rows, source, report, today=now.astimezone(LONDON).date())
        held: dict[tuple[str, Frequency], dict[date, HistoryPoint]] = {}
        new: list[_Accepted] = []
        for row in accepted:
            series = (row.indicator, row.period.frequency)
            if series not in held:
                held[series] = {p.period_start: p for p in tx.history(*series)}
            existing = held[series].get(row.period.start)
            if existing is None:
                new.append(row)
            elif existing.value == row.value:
                report.unchanged += 1
            else:
                report.clashes.append(
                    Clash(
                        row.line,
                        row.indicator,
                        row.period.label,
                        row.value,
                        existing.value,
                        existing.source,
                    )
                )
        report.new = len(new)
        if apply and new:
            for row in new:
                tx.put_history(
                    row.indicator,
                    frequency=row.period.frequency,
                    period=row.period.label,
                    period_start=row.period.start,
                    value=row.value,
                    source=row.source,
                    note=row.note,
                    now=now,
                )
            tx.audit(
                AuditAction.HISTORY_IMPORTED,
                at=now,
                actor=by,
                subject_type=SubjectType.HISTORY,
                subject_id=source,
                after={
                    "source": source,
                    "rows": report.rows,
                    "new": report.new,
                    "unchanged": report.unchanged,
                    "rejected": len(report.rejected),
                    "clashes": len(report.clashes),
                    "indicators": sorted({r.indicator for r in new}),
                },
            )
    return report


def _judge(
    tx: Transaction,
    rows: Sequence[HistoryRow],
    source: str,
    report: ImportReport,
    *,
    today: date,
) -> list[_Accepted]:
    frequencies: dict[str, list[Frequency]] = {}
    seen: dict[tuple[str, Frequency, date], tuple[int, float]] = {}
    accepted: list[_Accepted] = []
    for row in rows:
        key = (row.indicator or "").strip()
        shown = _text(row.period)

        def reject(reason: str, row: HistoryRow = row, key: str = key, shown: str = shown) -> None:
            report.rejected.append(Rejected(row.line, key, shown, reason))

        if row.problem:
            reject(row.problem)
            continue
        if not key:
            reject("the indicator id is blank")
            continue
        if key not in frequencies:
            frequencies[key] = _known_frequencies(tx, key)
        known = frequencies[key]
        try:
            period = _period(row.period, known)
            value = read_number(row.value)
        except ExportValueError as exc:
            reject(str(exc))
            continue
        if value is None:
            reject("no value (not recorded for this period)")
            continue
        if period.end >= today:
            reject(
                f"{period.label} has not ended (it ends {period.end.day} "
                f"{period.end:%b %Y}): history is past values only"
            )
            continue
        slot = (key, period.frequency, period.start)
        if slot in seen:
            first_line, first_value = seen[slot]
            reject(
                f"duplicate row: {report.place} {first_line} already gives {key} {period.label}"
                + ("" if first_value == value else f" (as {first_value:g}, this row {value:g})")
            )
            continue
        seen[slot] = (row.line, value)
        label = (
            source
            if not row.source or not row.source.strip()
            else (f"{source} ({row.source.strip()})")
        )
        note = row.note.strip() if row.note and row.note.strip() else None
        accepted.append(_Accepted(row.line, key, period, value, note, label))
        if not known:
            report.not_in_register[key] = report.not_in_register.get(key, 0) + 1
    return accepted


def _known_frequencies(tx: Transaction, key: str) -> list[Frequency]:
    """The indicator's frequencies in the register snapshots, active flows first."""
    found: list[Frequency] = []
    for indicator in tx.indicators_keyed(key):
        if indicator.frequency not in found:
            found.append(indicator.frequency)
    return found


def _period(cell: object, known: list[Frequency]) -> Period:
    """The period a cell names, checked against the frequencies the register knows."""
    if not known:
        return read_period(cell)
    first_error: ExportValueError | None = None
    for frequency in known:
        try:
            return read_period(cell, frequency)
        except ExportValueError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    return " ".join(str(cell).split())
