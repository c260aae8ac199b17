"""The slice of OData query syntax Graph list calls use: $filter, $expand, $select, $top.

Only as much as SharePoint-backed Graph accepts on list items; anything else is a
400, as it would be from Graph, rather than a silently different answer.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

_SKIP_PREFIX = "Paged=TRUE&p_ID="


class ODataError(ValueError):
    """A query option the sandbox (and Graph) cannot make sense of."""


def query_options(query_string: str) -> dict[str, str]:
    """Query options keyed without their ``$`` and lower-cased (Graph accepts both)."""
    return {key.lstrip("$").lower(): value for key, value in parse_qsl(query_string)}


def skiptoken(last_id: int) -> str:
    """SharePoint's own paging token shape: base64 of ``Paged=TRUE&p_ID=<last id>``."""
    return base64.b64encode(f"{_SKIP_PREFIX}{last_id}".encode()).decode().rstrip("=")


def after_id(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    try:
        text = base64.b64decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        raise ODataError("Invalid $skiptoken") from None
    if not text.startswith(_SKIP_PREFIX) or not text[len(_SKIP_PREFIX) :].isdigit():
        raise ODataError("Invalid $skiptoken")
    return int(text[len(_SKIP_PREFIX) :])


def top(options: dict[str, str]) -> int | None:
    raw = options.get("top")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ODataError(f"Invalid value '{raw}' for $top query option")
    return int(raw)


def _split_top_level(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == sep and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def expand(options: dict[str, str]) -> dict[str, list[str] | None]:
    """``fields(select=A,B)`` / ``fields($select=A,B)`` / ``fields`` → {"fields": [A, B] | None}."""
    result: dict[str, list[str] | None] = {}
    for part in _split_top_level(options.get("expand", ""), ","):
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", part, re.DOTALL)
        if match is None:
            raise ODataError(f"Invalid $expand: {part}")
        name, inner = match.group(1).lower(), match.group(2)
        selected: list[str] | None = None
        for option in _split_top_level(inner or "", ";"):
            key, _, value = option.partition("=")
            if key.strip().lstrip("$").lower() == "select":
                selected = [s.strip() for s in value.split(",") if s.strip()]
        result[name] = selected
    return result


def select(options: dict[str, str]) -> list[str] | None:
    raw = options.get("select")
    return None if raw is None else [s.strip() for s in raw.split(",") if s.strip()]


# $filter


@dataclass(frozen=True)
class Compare:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class StartsWith:
    path: str
    value: str


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    left: Node
    right: Node


Node = Compare | StartsWith | Junction

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])"
    r"|(?P<word>[A-Za-z_][\w/.]*))"
)
_COMPARATORS = {"eq", "ne", "lt", "gt", "le", "ge"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ODataError("Invalid filter clause")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ODataError("Invalid filter clause")
        self.pos += 1
        return token

    def _expect(self, text: str) -> None:
        if self._next()[1] != text:
            raise ODataError("Invalid filter clause")

    def parse(self) -> Node:
        node = self._or()
        if self._peek() is not None:
            raise ODataError("Invalid filter clause")
        return node

    def _or(self) -> Node:
        node = self._and()
        while (tok := self._peek()) is not None and tok[1].lower() == "or":
            self.pos += 1
            node = Junction("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._term()
        while (tok := self._peek()) is not None and tok[1].lower() == "and":
            self.pos += 1
            node = Junction("and", node, self._term())
        return node

    def _literal(self) -> Any:
        kind, text = self._next()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in {"true", "false"}:
            return text.lower() == "true"
        if kind == "word" and text.lower() == "null":
            return None
        raise ODataError("Invalid filter clause")

    def _term(self) -> Node:
        kind, text = self._next()
        if text == "(":
            node = self._or()
            self._expect(")")
            return node
        if kind != "word":
            raise ODataError("Invalid filter clause")
        if text.lower() == "startswith":
            self._expect("(")
            path_kind, path = self._next()
            self._expect(",")
            value = self._literal()
            self._expect(")")
            if path_kind != "word" or not isinstance(value, str):
                raise ODataError("Invalid filter clause")
            return StartsWith(path, value)
        op_kind, op = self._next()
        if op_kind != "word" or op.lower() not in _COMPARATORS:
            raise ODataError("Invalid filter clause")
        return Compare(text, op.lower(), self._literal())


def parse_filter(text: str) -> Node:
    return _Parser(text).parse()


def referenced_paths(node: Node) -> list[str]:
    if isinstance(node, Junction):
        return referenced_paths(node.left) + referenced_paths(node.right)
    return [node.path]


def _compare(actual: Any, op: str, wanted: Any) -> bool:
    if actual is None or wanted is None:
        same = actual is None and wanted is None
        return {"eq": same, "ne": not same}.get(op, False)
    if isinstance(actual, bool) or isinstance(wanted, bool):
        actual, wanted = _as_bool(actual), _as_bool(wanted)
        if actual is None or wanted is None:
            return op == "ne"
    elif isinstance(actual, int | float) and isinstance(wanted, str):
        try:
            wanted = float(wanted)
        except ValueError:
            return op == "ne"
    elif isinstance(actual, str) and isinstance(wanted, int | float):
        wanted = str(wanted)
    if isinstance(actual, str) and isinstance(wanted, str):
        actual, wanted = actual.casefold(), wanted.casefold()
    try:
        return bool(
            {
                "eq": actual == wanted,
                "ne": actual != wanted,
                "lt": actual < wanted,
                "gt": actual > wanted,
                "le": actual <= wanted,
                "ge": actual >= wanted,
            }[op]
        )
    except TypeError:
        return op == "ne"


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    return None


def matches(node: Node, lookup: dict[str, Any]) -> bool:
    """Evaluate against ``lookup`` (path → value); SharePoint compares text case-blind."""
    if isinstance(node, Junction):
        left = matches(node.left, lookup)
        if node.op == "and":
            return left and matches(node.right, lookup)
        return left or matches(node.right, lookup)
    actual = lookup.get(node.path)
    if isinstance(node, StartsWith):
        return isinstance(actual, str) and actual.casefold().startswith(node.value.casefold())
    return _compare(actual, node.op, node.value)
