"""A small TMDL reader: enough of the Tabular Model Definition Language to check our model.

TMDL nests by tab indentation. A line is an object (``table Results``, ``column 'Rag'``,
``measure 'Red Count' = …``), a property (``dataType: string``, ``source =``) or a flag
(``isHidden``). An expression after ``=`` continues on the lines indented two levels
deeper than its object (one level deeper than a property). ``///`` lines are
descriptions of the object that follows. Anything else is an error with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

OBJECT_TYPES = frozenset(
    {
        "database",
        "model",
        "table",
        "column",
        "measure",
        "partition",
        "expression",
        "relationship",
        "annotation",
        "ref",
        "culture",
        "hierarchy",
        "level",
        "role",
        "perspective",
        "calculationGroup",
        "calculationItem",
        "dataSource",
    }
)
_NAME = r"(?:'(?:[^']|'')+'|[^\s=':]+)"
_OBJECT = re.compile(
    rf"^(?P<type>[A-Za-z]+)\s+(?:(?P<sub>table)\s+)?(?P<name>{_NAME})(?:\s*=\s*(?P<expr>.*))?$"
)
_PROPERTY = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9]*)\s*(?::\s*(?P<value>.*)|=\s*(?P<expr>.*))?$")


class TmdlError(ValueError):
    """A line this reader cannot place, as ``file:line: why``."""


@dataclass
class TmdlObject:
    type: str
    name: str
    expression: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    children: list[TmdlObject] = field(default_factory=list)
    description: str = ""
    line: int = 0

    def all(self, kind: str) -> list[TmdlObject]:
        return [c for c in self.children if c.type == kind]


def unquote(name: str) -> str:
    return name[1:-1].replace("''", "'") if name.startswith("'") else name


def parse(text: str, path: str = "<tmdl>") -> list[TmdlObject]:
    """The top-level objects of one TMDL file."""
    lines = text.splitlines()
    roots: list[TmdlObject] = []
    stack: list[tuple[int, TmdlObject]] = []
    description: list[str] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        number = i + 1
        i += 1
        if not raw.strip():
            continue
        if raw.startswith(" ") and raw.strip():
            raise TmdlError(f"{path}:{number}: indent with tabs, not spaces")
        depth = len(raw) - len(raw.lstrip("\t"))
        body = raw.strip()
        if body.startswith("///"):
            description.append(body[3:].strip())
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        if parent is not None and depth != stack[-1][0] + 1:
            raise TmdlError(
                f"{path}:{number}: indented {depth} levels under a line at {stack[-1][0]}"
            )
        found = _OBJECT.match(body)
        if found and found["type"] in OBJECT_TYPES:
            obj = TmdlObject(
                type=found["type"] if not found["sub"] else f"{found['type']} {found['sub']}",
                name=unquote(found["name"]),
                description=" ".join(description),
                line=number,
            )
            description = []
            expr = found["expr"]
            if expr is not None:
                rest, i = _continued(lines, i, depth + 2)
                obj.expression = "\n".join(part for part in [expr.strip(), rest] if part)
            (parent.children if parent else roots).append(obj)
            stack.append((depth, obj))
            continue
        if parent is None:
            raise TmdlError(f"{path}:{number}: {body!r} is not a TMDL object")
        prop = _PROPERTY.match(body)
        if prop is None:
            raise TmdlError(f"{path}:{number}: cannot read {body!r}")
        if prop["expr"] is not None:
            rest, i = _continued(lines, i, depth + 1)
            parent.properties[prop["key"]] = "\n".join(
                part for part in [prop["expr"].strip(), rest] if part
            )
        elif prop["value"] is not None:
            parent.properties[prop["key"]] = prop["value"].strip()
        else:
            parent.flags.add(prop["key"])
    return roots


def _continued(lines: list[str], i: int, depth: int) -> tuple[str, int]:
    """The expression lines from ``i`` indented at least ``depth`` tabs (blank lines kept)."""
    taken: list[str] = []
    while i < len(lines):
        raw = lines[i]
        if raw.strip() and len(raw) - len(raw.lstrip("\t")) < depth:
            break
        taken.append(raw[depth:] if raw.strip() else "")
        i += 1
    while taken and not taken[-1]:
        taken.pop()
    return "\n".join(taken), i


def parse_folder(folder: Path) -> dict[str, list[TmdlObject]]:
    """Every ``*.tmdl`` file under ``folder``, by path relative to it."""
    return {
        str(p.relative_to(folder)): parse(p.read_text(encoding="utf-8"), str(p))
        for p in sorted(folder.rglob("*.tmdl"))
    }
