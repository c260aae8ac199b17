"""Test helpers for the Microsoft 365 clients: a virtual clock and the card schema check."""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path("/work/shared/reference/adaptive-card-1.5.schema.json")
# Outlook-only card properties (facts §5.1): legal in an actionable message, outside
# the Adaptive Cards schema, so they are set aside before validating.
OUTLOOK_ONLY = (
    "originator",
    "autoInvokeAction",
    "correlationId",
    "expectedActors",
    "hideOriginalBody",
)


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


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_card(card: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``card`` is a valid Adaptive Card 1.5."""
    plain = {k: v for k, v in card.items() if k not in OUTLOOK_ONLY}
    _validator().validate(plain)


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
