"""Test helpers for the Microsoft 365 clients: a virtual clock and the card schema check."""

from __future__ import annotations

import threading
from typing import Any

from m365perf.cards import validate_card as _validate_card


class FakeClock:
    """Virtual time: ``sleep`` records the wait and moves the clock on, at once."""

    def __init__(self, wall_start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00Z
        self._now = 1000.0
        self._wall_offset = wall_start - self._now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds


def validate_card(card: dict[str, Any]) -> None:
    """Raise ``CardSchemaError`` unless ``card`` is a valid Adaptive Card 1.5.

    The service's own check (schema shipped in the package, Outlook-only properties
    allowed), so these tests judge cards exactly as the service does.
    """
    _validate_card(card)


def sample_card(title: str = "Returns due for 2026/27 Q2") -> dict[str, Any]:
    """A small officer card of the kind the service sends: text, an input, Action.Execute."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True},
            {"type": "Input.Number", "id": "value_KPI-01", "label": "Missed bins per 100,000"},
        ],
        "actions": [
            {
                "type": "Action.Execute",
                "title": "Submit",
                "verb": "submitReturn",
                "data": {"cycle": "2026-27-Q2"},
                "fallback": {"type": "Action.Submit", "title": "Submit"},
            }
        ],
    }
