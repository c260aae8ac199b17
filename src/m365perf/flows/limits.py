"""Limits a flow file must keep before it is built into objects.

A flow file is a few kilobytes of plain mappings, lists and scalars. YAML can say much
more: tags that build other types (``!!omap``, ``!!python/...``), aliases that expand
exponentially (a 5 KB "billion laughs" file), nesting deep enough to exhaust the
stack, integers longer than Python converts. One pass over the parser's events, which
is linear in the file's size and builds nothing, refuses all of these with the line and
column where they start, so loading stays well under a second whatever the file holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    ScalarEvent,
)

#: The example flows are 2-4 KB and 100 lines; one sixteen times larger is a mistake
#: (and the YAML parser, pure Python, takes about 0.1 s per 1,000 lines).
MAX_FLOW_BYTES = 64 * 1024
MAX_FLOW_LINES = 2_000
#: The example flows nest 5 deep.
MAX_DEPTH = 32
#: Mappings, lists and scalars after aliases are expanded (the examples have ~300).
MAX_NODES = 10_000
#: A plain number longer than this is no setting a flow has (Python refuses > 4,300).
MAX_NUMBER_DIGITS = 100

_NUMBER = re.compile(r"[-+]?(0[xob])?[0-9a-fA-F_:.]+([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class LimitProblem:
    """Where (1-based line, column) a flow file goes beyond a limit, and which."""

    line: int
    column: int
    message: str


def _position(event: Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _tag_problem(event: Event) -> str | None:
    tag = getattr(event, "tag", None)
    if tag is None:
        return None
    return (
        f"YAML tag '{tag}' is not used in flow files; write the value plainly "
        "(quote it to make it text)"
    )


#: Written as escapes in double quotes ("\\x00", "\\ud800"): no setting needs them and
#: later code (pydantic, e-mail, SharePoint) cannot carry them.
_UNCARRIABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _scalar_problem(event: ScalarEvent) -> str | None:
    value = event.value
    if event.style == ">":
        value = value.replace("\a", "")  # ruamel marks a folded line break with U+0007
    bad = _UNCARRIABLE.search(value)
    if bad is not None:
        return (
            f"the value contains the control character U+{ord(bad.group()):04X}; "
            "remove it (written as an escape in double quotes)"
        )
    plain = event.style is None
    if plain and len(value) > MAX_NUMBER_DIGITS and _NUMBER.fullmatch(value):
        return (
            f"a number of {len(value):,} characters; at most {MAX_NUMBER_DIGITS} are "
            "read (quote it if it is text)"
        )
    return None


def limit_problems(text: str) -> Iterator[LimitProblem]:
    """The first limit the YAML ``text`` breaks (nothing if it keeps them all).

    Raises ruamel's YAML errors for text that does not parse, as loading would.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FLOW_BYTES:
        yield LimitProblem(
            1, 1, f"the file is {size:,} bytes; a flow file is at most {MAX_FLOW_BYTES:,}"
        )
        return
    lines = text.count("\n") + 1
    if lines > MAX_FLOW_LINES:
        yield LimitProblem(
            MAX_FLOW_LINES + 1,
            1,
            f"the file has {lines:,} lines; a flow file is at most {MAX_FLOW_LINES:,}",
        )
        return
    opened = _bracket_depth(text)
    if opened is not None:
        yield LimitProblem(*opened, f"nested more than {MAX_DEPTH} levels deep; flatten it")
        return
    yaml = YAML(typ="rt")
    try:
        yield from _event_problems(yaml.parse(text))
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. "\U00110000" in quotes
        reader = yaml.reader
        yield LimitProblem(reader.line + 1, reader.column + 1, f"cannot read this value: {exc}")


def _bracket_depth(text: str) -> tuple[int, int] | None:
    """Where ``[`` and ``{`` open more than a flow file could nest, if they do.

    The YAML scanner slows quadratically with flow nesting, so this counts brackets on
    the raw text before it (loosely: brackets inside quotes count too, hence the margin).
    """
    depth = 0
    margin = MAX_DEPTH * 4
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > margin:
                line = text.count("\n", 0, index) + 1
                return line, index - (text.rfind("\n", 0, index) + 1) + 1
        elif char in "]}" and depth:
            depth -= 1
    return None


def _event_problems(events: Iterator[Event]) -> Iterator[LimitProblem]:
    """Tags, bad scalars, depth and expanded size, checked event by event."""
    # Each open collection counts the nodes it holds, aliases expanded.
    open_counts: list[int] = [0]
    open_anchors: list[str | None] = []
    anchored: dict[str, int] = {}
    total = 0
    for event in events:
        line, column = _position(event)
        problem = _tag_problem(event)
        if problem is None and isinstance(event, ScalarEvent):
            problem = _scalar_problem(event)
        if problem is not None:
            yield LimitProblem(line, column, problem)
            return
        added = 0
        if isinstance(event, CollectionStartEvent):
            if len(open_anchors) >= MAX_DEPTH:
                yield LimitProblem(
                    line, column, f"nested more than {MAX_DEPTH} levels deep; flatten it"
                )
                return
            open_counts.append(0)
            open_anchors.append(event.anchor)
            continue
        if isinstance(event, CollectionEndEvent):
            added = open_counts.pop() + 1
            anchor = open_anchors.pop()
            if anchor is not None:
                anchored[anchor] = added
        elif isinstance(event, ScalarEvent):
            added = 1
            if event.anchor is not None:
                anchored[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            added = anchored.get(event.anchor, 1)
        else:
            continue
        total += 1 if isinstance(event, CollectionEndEvent) else added
        open_counts[-1] += added
        if total > MAX_NODES or open_counts[-1] > MAX_NODES:
            yield LimitProblem(
                line,
                column,
                f"more than {MAX_NODES:,} values (an alias *name counts as all it repeats); "
                "a flow file needs far fewer",
            )
            return
