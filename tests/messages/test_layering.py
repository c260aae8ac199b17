"""The contracts package sits below the engine and the dispatcher, which both import it."""

from __future__ import annotations

import ast
from pathlib import Path

import m365perf.messages

ALLOWED = ("m365perf.messages", "m365perf.domain")


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {n for n in names if n == "m365perf" or n.startswith("m365perf.")}


def test_messages_imports_nothing_of_the_project_but_the_domain() -> None:
    package = Path(m365perf.messages.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert {p.stem for p in modules} >= {"__init__", "outbox", "ids", "names", "doc"}
    wrong = {
        f"{p.name}: {name}"
        for p in modules
        for name in _project_imports(p)
        if not any(name == a or name.startswith(f"{a}.") for a in ALLOWED)
    }
    assert wrong == set()
