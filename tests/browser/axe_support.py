"""Run axe-core (npm, served from the repository's node_modules) in the page under test.

The accessibility bar of the staff pages and reports: no serious or critical violation of
WCAG 2.1 A/AA rules. axe is injected from the local file, never from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every violation axe finds in the page as it stands, with its nodes."""
    if not AXE_JS.is_file():
        raise AssertionError(
            f"{AXE_JS} is missing: `make install` runs `npm ci` to install axe-core"
        )
    page.add_script_tag(path=str(AXE_JS))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", RULE_TAGS
    )
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = [" ".join(node["target"]) for node in violation["nodes"][:3]]
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at {targets}")
    return "\n".join(lines)


def assert_no_serious_violations(page: Any) -> None:
    """Fail with each serious or critical violation named, rule and element."""
    blocking = [v for v in axe_violations(page) if v.get("impact") in BLOCKING]
    assert not blocking, "axe-core found serious or critical violations:\n" + describe(blocking)
