"""Each package's ``__all__`` is its public face: every name in it exists, and nothing the
package re-exports from its own modules is left out (``from m365perf.store import X`` works
for exactly the names listed)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import m365perf


def _packages_with_all() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(m365perf.__path__, "m365perf.")
        if info.ispkg and hasattr(importlib.import_module(info.name), "__all__")
    ]
    assert {"m365perf.engine", "m365perf.store", "m365perf.cards", "m365perf.flows"} <= set(names)
    return names


PACKAGES = _packages_with_all()


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_exists(name: str) -> None:
    package = importlib.import_module(name)
    missing = [n for n in package.__all__ if not hasattr(package, n)]
    assert missing == []
    assert len(set(package.__all__)) == len(package.__all__), "a name is listed twice"


def _reexported(package: ModuleType) -> set[str]:
    """Public names the package imports from its own modules and does not use itself."""
    tree = ast.parse(inspect.getsource(package))
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith(f"{package.__name__}.")
        for alias in node.names
    }
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return {n for n in imported - used if not n.startswith("_")}


@pytest.mark.parametrize("name", PACKAGES)
def test_every_reexported_name_is_in_all(name: str) -> None:
    package = importlib.import_module(name)
    assert sorted(_reexported(package) - set(package.__all__)) == []
