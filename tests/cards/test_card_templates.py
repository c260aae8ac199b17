"""The templates themselves: shipped with the package, and every value through tojson."""

from __future__ import annotations

import re
from importlib import resources

import pytest

TEMPLATES = resources.files("m365perf.cards").joinpath("templates")
NAMES = sorted(entry.name for entry in TEMPLATES.iterdir() if entry.name.endswith(".j2"))

# An output expression is safe when it is a value through tojson (and nothing joined to
# it with ~ outside the filter), a macro (the macros follow this rule themselves: m.x()
# in the card templates, runs() and text() inside _macros), or the list separator.
_SAFE = re.compile(r"(?s)^(?:[^~]+\|\s*tojson|m\.\w+\(.*\)|(?:runs|text)\(.*\)|sep\(\))$")
_OUTPUT = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.DOTALL)


def test_the_templates_are_in_the_package() -> None:
    assert {"owner_request.json.j2", "receipt.json.j2", "approval.json.j2"} <= set(NAMES)
    assert {"outcome.json.j2", "_macros.json.j2"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_output_goes_through_tojson(name: str) -> None:
    source = TEMPLATES.joinpath(name).read_text("utf-8")
    source = re.sub(r"{#.*?#}", "", source, flags=re.DOTALL)  # comments may mention {{ }}
    outputs = _OUTPUT.findall(source)
    assert outputs  # every template writes something
    assert [expr for expr in outputs if not _is_safe(expr)] == []


def _is_safe(expression: str) -> bool:
    return _SAFE.match(expression) is not None


def test_the_checker_catches_a_bare_value() -> None:
    assert not _is_safe("item.name")
    assert not _is_safe("item.name|e")
    assert _is_safe("item.name|tojson")
    assert not _is_safe('"<" ~ item.name|tojson')
    assert _is_safe('m.text(error, color="attention")')
