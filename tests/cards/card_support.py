"""Realistic views of each card, and helpers to find things in a rendered card.

Imported by the card tests (as ``card_support``); not a conftest, so that names are
explicit where they are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from m365perf.cards import (
    ApprovalView,
    IndicatorRequest,
    Outcome,
    OutcomeView,
    OwnerRequestView,
    PeriodValue,
    ReceiptView,
    RejectionView,
    ReturnedIndicator,
    SentBack,
)
from m365perf.domain.kinds import Polarity, Rag, Unit

DECIDED_AT = datetime(2026, 11, 3, 14, 5, tzinfo=UTC)  # GMT in November: 14:05 in London
SENT_BACK_AT = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)  # Thursday 5 November 2026


def sent_back(**changes: Any) -> SentBack:
    fields: dict[str, Any] = {
        "by_name": "Bob Ray",
        "at": SENT_BACK_AT,
        "reason": "The figure is for Q2, not Q3.",
        "correction": False,
        "previous_value": 87.5,
    }
    fields.update(changes)
    return SentBack(**fields)


def calls_answered(**changes: Any) -> IndicatorRequest:
    fields: dict[str, Any] = {
        "indicator_id": "ind-calls",
        "name": "Percentage of calls to the contact centre answered within 60 seconds",
        "unit": Unit.PERCENTAGE,
        "version": 3,
        "polarity": Polarity.HIGHER_IS_BETTER,
        "target": 90.0,
        "tolerance": 2.0,
        "comparator": "West Midlands average 84.1% (2025/26)",
        "recent": (
            PeriodValue("2026/27 Q4", 80.0),
            PeriodValue("2026/27 Q1", 85.5),
            PeriodValue("2026/27 Q2", 88.0),
        ),
        "last_year": PeriodValue("2025/26 Q3", 79.25),
    }
    fields.update(changes)
    return IndicatorRequest(**fields)


def sickness_days(**changes: Any) -> IndicatorRequest:
    fields: dict[str, Any] = {
        "indicator_id": "ind-sickness",
        "name": "Average working days lost to sickness per full-time employee",
        "unit": Unit.DAYS,
        "version": 7,
        "polarity": Polarity.LOWER_IS_BETTER,
        "target": 8.5,
        "tolerance": 0.5,
    }
    fields.update(changes)
    return IndicatorRequest(**fields)


def council_tax_returned(**changes: Any) -> ReturnedIndicator:
    fields: dict[str, Any] = {
        "indicator_id": "ind-ctax",
        "name": "Council tax collected",
        "unit": Unit.CURRENCY,
        "value": 1234.5,
        "rag": Rag.AMBER,
        "direction_vs_previous": "improving",
        "direction_vs_last_year": "worsening",
        "late": True,
        "awaiting_approval_by": "Jane Smith",
    }
    fields.update(changes)
    return ReturnedIndicator(**fields)


def owner_request(
    *indicators: IndicatorRequest | ReturnedIndicator, **changes: Any
) -> OwnerRequestView:
    fields: dict[str, Any] = {
        "cycle_id": "cycle-2026-27-q3",
        "owner_id": "owner-42",
        "card_id": "card-1",
        "owner_name": "Sam Patel",
        "flow_name": "Corporate performance",
        "period_label": "2026/27 Q3",
        "due": date(2027, 1, 13),
        "indicators": indicators or (calls_answered(), sickness_days(), council_tax_returned()),
    }
    fields.update(changes)
    return OwnerRequestView(**fields)


def receipt(**changes: Any) -> ReceiptView:
    fields: dict[str, Any] = {
        "cycle_id": "cycle-2026-27-q3",
        "owner_id": "owner-42",
        "card_id": "card-1",
        "owner_name": "Sam Patel",
        "flow_name": "Corporate performance",
        "period_label": "2026/27 Q3",
        "due": date(2027, 1, 13),
        "returned": (council_tax_returned(),),
        "outstanding": ("Average working days lost to sickness per full-time employee",),
    }
    fields.update(changes)
    return ReceiptView(**fields)


def approval(**changes: Any) -> ApprovalView:
    fields: dict[str, Any] = {
        "return_id": "return-9",
        "version": 4,
        "step_index": 1,
        "step_count": 3,
        "step_name": "Head of service sign-off",
        "card_id": "card-approval-9",
        "indicator_name": "Percentage of calls to the contact centre answered within 60 seconds",
        "owner_name": "Sam Patel",
        "period_label": "2026/27 Q3",
        "unit": Unit.PERCENTAGE,
        "value": 87.5,
        "polarity": Polarity.HIGHER_IS_BETTER,
        "target": 90.0,
        "tolerance": 2.5,
        "rag": Rag.AMBER,
        "previous": PeriodValue("2026/27 Q2", 88.0),
        "last_year": PeriodValue("2025/26 Q3", 91.0),
        "direction_vs_previous": "worsening",
        "direction_vs_last_year": "worsening",
        "history": tuple(PeriodValue(f"2025/26 M{m}", 80.0 + m) for m in range(1, 9)),
        "variation": "special cause — concern: 7 points below the mean",
        "assurance": "hit and miss",
        "commentary": "Two vacancies in the team during November.",
        "submitted_at": DECIDED_AT,
    }
    fields.update(changes)
    return ApprovalView(**fields)


def outcome(kind: Outcome, **changes: Any) -> OutcomeView:
    fields: dict[str, Any] = {
        "outcome": kind,
        "indicator_name": "Percentage of calls to the contact centre answered within 60 seconds",
        "owner_name": "Sam Patel",
        "period_label": "2026/27 Q3",
        "at": DECIDED_AT,
        "by": None if kind is Outcome.SUPERSEDED else "Jane Smith",
        "reason": "The figure is for Q2, not Q3." if kind is Outcome.REJECTED else None,
    }
    fields.update(changes)
    return OutcomeView(**fields)


def rejection(**changes: Any) -> RejectionView:
    fields: dict[str, Any] = {
        "cycle_id": "cycle-2026-27-q3",
        "owner_id": "owner-42",
        "card_id": "card-7",
        "owner_name": "Sam Patel",
        "flow_name": "Corporate performance",
        "period_label": "2026/27 Q3",
        "due": date(2027, 1, 13),
        "indicator": calls_answered(version=5),
        "rejected_by": "Jane Smith",
        "rejected_at": DECIDED_AT,
        "reason": "The figure is for Q2, not Q3.",
        "previous_value": 87.5,
        "previous_commentary": "Two vacancies in the team.",
    }
    fields.update(changes)
    return RejectionView(**fields)


# --- finding things in a card ------------------------------------------------------


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a card, depth first (action data included)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def elements(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [node for node in walk(card) if node.get("type") == kind]


def texts(node: Any) -> list[str]:
    """What a reader sees: the text of every TextBlock, TextRun line and fact."""
    found: list[str] = []
    for item in walk(node):
        if item.get("type") == "TextBlock":
            found.append(item["text"])
        elif item.get("type") == "RichTextBlock":
            found.append("".join(run["text"] for run in item["inlines"]))
        elif item.get("type") == "FactSet":
            found.extend(f"{fact['title']}: {fact['value']}" for fact in item["facts"])
    return found


def inputs(node: Any) -> dict[str, dict[str, Any]]:
    return {
        item["id"]: item for item in walk(node) if str(item.get("type", "")).startswith("Input.")
    }


def indicator_container(card: dict[str, Any], name: str) -> dict[str, Any]:
    """The container that starts with ``name`` (each indicator has one)."""
    matches = [
        item
        for item in elements(card, "Container")
        if item["items"] and texts(item["items"][0]) == [name]
    ]
    assert len(matches) == 1, f"expected one container for {name!r}, found {len(matches)}"
    return matches[0]
