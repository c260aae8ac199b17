"""docs/deploy.md names flow keys an administrator looks for in flows/*.yaml: they exist."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from m365perf.flows.model import Flow

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
#: Dotted names in backticks that are host names or files, not flow keys.
_NOT_KEYS = {"com", "net", "uk", "txt", "md", "yaml", "env", "py", "sh", "toml", "json"}


def _resolves(model: type[BaseModel], path: list[str]) -> bool:
    """Whether ``a.b.c`` is a key of the flow file (by its YAML name, the alias)."""
    head, *rest = path
    for name, info in model.model_fields.items():
        if head in (info.alias or name,):
            if not rest:
                return True
            inner = info.annotation
            args = getattr(inner, "__args__", ())
            candidates = [inner, *args]
            return any(
                isinstance(c, type) and issubclass(c, BaseModel) and _resolves(c, rest)
                for c in candidates
            )
    return False


def _dotted_names(text: str) -> set[str]:
    found = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+):?`", text))
    return {n for n in found if n.rsplit(".", 1)[-1] not in _NOT_KEYS}


def test_every_flow_key_the_deploy_guide_names_is_one_a_flow_file_has() -> None:
    names = _dotted_names(DEPLOY.read_text(encoding="utf-8"))
    assert {"register.site", "writeback.site", "powerbi.daily_budget"} <= names
    unknown = sorted(n for n in names if not _resolves(Flow, n.split(".")))
    assert unknown == [], f"docs/deploy.md names flow keys the flow model lacks: {unknown}"


def test_the_check_catches_a_key_the_model_lacks() -> None:
    assert not _resolves(Flow, ["results", "site"])
    assert _resolves(Flow, ["writeback", "history"])


def test_every_doc_the_scripts_and_readmes_point_to_exists() -> None:
    root = DEPLOY.parents[1]
    pointing = [root / "README.md", root / "Makefile", *root.glob("scripts/*.sh")]
    pointing += list((root / "src" / "m365perf" / "examples").rglob("README.md"))
    missing = {
        f"{p.relative_to(root)} -> {ref}"
        for p in pointing
        for ref in re.findall(r"docs/[a-z_-]+\.md", p.read_text(encoding="utf-8"))
        if not (root / ref).exists()
    }
    assert missing == set()
