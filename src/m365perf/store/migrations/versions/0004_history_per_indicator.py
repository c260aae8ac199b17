"""History per indicator, not per flow.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

``history_value`` was keyed by flow, indicator and period start, so an indicator moved to
another flow lost its imported past. It is now keyed by indicator, frequency and period
start (an annual 2024/25 and its Q1 both start on 1 April), with an optional ``note``.

Existing rows are carried over: the frequency is read from the canonical period label the
store wrote ("2026-10", "2026/27 Q2", "2026/27"); where two flows held a value for the same
indicator and period, the one recorded last is kept. Downgrading gives each value back to
every flow whose register snapshot has the indicator at that frequency.

Plain SQLAlchemy types, like 0001, so this revision keeps meaning the same schema.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String()
_WHEN = sa.DateTime(timezone=True)
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _frequency(label: str) -> str:
    """The frequency of a canonical label, as ``Period.label`` writes them."""
    if _MONTH.fullmatch(label.strip()):
        return "monthly"
    if "q" in label.lower():
        return "quarterly"
    return "annual"


def _new_table() -> None:
    op.create_table(
        "history_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("frequency", _TEXT, nullable=False),
        sa.Column("period", _TEXT, nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", _TEXT, nullable=True),
        sa.Column("source", _TEXT, nullable=False),
        sa.Column("recorded_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_value"),
        sa.UniqueConstraint(
            "indicator_key",
            "frequency",
            "period_start",
            name="uq_history_value_indicator_key_frequency_period_start",
        ),
    )


def _old_table() -> None:
    op.create_table(
        "history_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", _TEXT, nullable=False),
        sa.Column("indicator_key", _TEXT, nullable=False),
        sa.Column("period", _TEXT, nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", _TEXT, nullable=False),
        sa.Column("recorded_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_value"),
        sa.UniqueConstraint(
            "flow_id",
            "indicator_key",
            "period_start",
            name="uq_history_value_flow_id_indicator_key_period_start",
        ),
    )


def _rows(sql: str) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in op.get_bind().execute(sa.text(sql))]


def _insert(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    table = sa.table("history_value", *(sa.column(c) for c in columns))
    op.bulk_insert(table, rows)


def upgrade() -> None:
    old = _rows(
        "SELECT indicator_key, period, period_start, value, source, recorded_at"
        " FROM history_value ORDER BY recorded_at, id"
    )
    op.drop_table("history_value")
    _new_table()
    kept: dict[tuple[str, str, Any], dict[str, Any]] = {}
    for row in old:  # oldest first: a later recording of the same point wins
        frequency = _frequency(str(row["period"]))
        kept[(row["indicator_key"], frequency, row["period_start"])] = {
            **row,
            "frequency": frequency,
            "note": None,
        }
    _insert(list(kept.values()))


def downgrade() -> None:
    values = _rows(
        "SELECT indicator_key, frequency, period, period_start, value, source, recorded_at"
        " FROM history_value ORDER BY id"
    )
    flows: dict[tuple[str, str], list[str]] = {}
    for row in _rows("SELECT flow_id, indicator_key, frequency FROM indicator ORDER BY flow_id"):
        flows.setdefault((row["indicator_key"], row["frequency"]), []).append(row["flow_id"])
    op.drop_table("history_value")
    _old_table()
    rows = []
    for row in values:
        frequency = row.pop("frequency")
        for flow_id in flows.get((row["indicator_key"], frequency), ["unknown"]):
            rows.append({**row, "flow_id": flow_id})
    _insert(rows)
