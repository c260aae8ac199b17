"""Load flow files and report every problem as ``file:line:col: message``.

ruamel.yaml keeps the position of every key and item; pydantic gives the path of
every error; joining the two lets the performance team go straight to the line.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from m365perf.errors import M365PerfError
from m365perf.flows.limits import MAX_FLOW_BYTES, limit_problems
from m365perf.flows.model import Flow

Loc = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class FlowProblem:
    """One thing wrong with a flow file, where the performance team can find it."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class FlowError(M365PerfError):
    """A flow file could not be loaded; ``problems`` lists every error found."""

    def __init__(self, problems: Sequence[FlowProblem]) -> None:
        self.problems = tuple(sorted(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class _Positions:
    """1-based (line, column) of each key and value in a YAML document, by path."""

    keys: dict[Loc, tuple[int, int]]
    values: dict[Loc, tuple[int, int]]

    def of_value(self, loc: Loc) -> tuple[int, int]:
        for cut in range(len(loc), -1, -1):
            found = self.values.get(loc[:cut])
            if found:
                return found
        return (1, 1)

    def of_key(self, loc: Loc) -> tuple[int, int]:
        return self.keys.get(loc) or self.of_value(loc)


def _positions(document: Any) -> _Positions:
    keys: dict[Loc, tuple[int, int]] = {}
    values: dict[Loc, tuple[int, int]] = {(): (1, 1)}

    def walk(node: Any, loc: Loc) -> None:
        if isinstance(node, CommentedMap):
            values.setdefault(loc, (node.lc.line + 1, node.lc.col + 1))
            for key in node:
                child = (*loc, str(key))
                spot = node.lc.data.get(key)
                if spot is not None:  # a key merged in with <<: has no place of its own
                    keys[child] = (spot[0] + 1, spot[1] + 1)
                    values[child] = (spot[2] + 1, spot[3] + 1)
                walk(node[key], child)
        elif isinstance(node, CommentedSeq):
            values.setdefault(loc, (node.lc.line + 1, node.lc.col + 1))
            for index, item in enumerate(node):
                spot = node.lc.data.get(index)
                if spot is not None:
                    values[(*loc, index)] = (spot[0] + 1, spot[1] + 1)
                walk(item, (*loc, index))

    walk(document, ())
    return _Positions(keys, values)


def _plain(node: Any) -> Any:
    """Turn ruamel's commented containers into plain dicts and lists (keys as text)."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (for did-you-mean)."""
    model: Any = Flow
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _describe(error: Any, loc: Loc) -> str:
    kind = error["type"]
    where = _dotted(loc)
    prefix = f"{where}: " if where else ""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(loc[:-1])
        known = _keys_of(parent) if parent else []
        close = get_close_matches(key, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where_parent = _dotted(loc[:-1]) or "the flow"
        return f"unknown key '{key}' in {where_parent}{hint}"
    if kind == "missing":
        return f"{prefix}required key is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind in ("literal_error", "enum"):
        message = f"{message}, not {error.get('input')!r}"
    return f"{prefix}{message}"


def _clean_loc(raw: Sequence[Any], document: Any) -> Loc:
    """Drop the parts of a pydantic error path that are not keys in the document."""
    loc: list[str | int] = []
    node = document
    for part in raw:
        in_map = isinstance(node, dict) and isinstance(part, str) and part in node
        in_seq = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_map or in_seq:
            loc.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in node:
            # a missing or extra key, named by the error itself
            loc.append(part)
            node = None
        # else: a union member or a tag pydantic added; not a place in the file
    return tuple(loc)


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``."""
    index = max(0, min(index, len(text)))
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


class _PlacedConstructor(RoundTripConstructor):
    """Ruamel's constructor, but a value it cannot build ("2025-13-45") says where it is."""

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConstructorError(
                problem=f"cannot read this value: {exc}", problem_mark=node.start_mark
            ) from None


def _load_yaml(text: str, path: str) -> Any:
    """The YAML document, or FlowError at the place it goes wrong; never a traceback.

    The limits are checked first, on the parser's events, so nothing is built from a
    file that would take minutes or gigabytes to build.
    """
    try:
        limit = next(limit_problems(text), None)
        if limit is not None:
            raise FlowError([FlowProblem(path, limit.line, limit.column, limit.message)])
        with warnings.catch_warnings():  # a re-used &anchor is valid YAML; say nothing
            warnings.simplefilter("ignore")
            yaml = YAML(typ="rt")
            yaml.Constructor = _PlacedConstructor
            return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "not valid YAML").strip()
        raise FlowError([FlowProblem(path, line, col, f"YAML syntax: {problem}")]) from None
    except ReaderError as exc:
        line, col = _line_col(text, int(exc.position))
        char = exc.character
        code = ord(char) if isinstance(char, str) else int(char)
        problem = (
            f"unacceptable character U+{code:04X}; remove it (control characters cannot be in YAML)"
        )
        raise FlowError([FlowProblem(path, line, col, problem)]) from None
    except (YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Belt and braces: the limits stop what is known to reach here.
        raise FlowError([FlowProblem(path, 1, 1, f"not a readable flow file: {exc}")]) from None


def parse_flow(text: str, path: str = "<flow>") -> Flow:
    """Validate flow YAML text; raise FlowError listing every problem with its position."""
    document = _load_yaml(text, path)
    if not isinstance(document, CommentedMap):
        raise FlowError([FlowProblem(path, 1, 1, "a flow file must be a YAML mapping")])
    positions = _positions(document)
    data = _plain(document)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _clean_loc(error["loc"], data)
            if error["type"] == "extra_forbidden":
                line, col = positions.of_key(loc)
            elif error["type"] == "missing":
                line, col = positions.of_value(loc[:-1])
            else:
                line, col = positions.of_value(loc)
            problems.append(FlowProblem(path, line, col, _describe(error, loc)))
        raise FlowError(_unique(problems)) from None
    semantic = [
        FlowProblem(path, *positions.of_value(loc), f"{_dotted(loc)}: {message}")
        for loc, message in _cross_checks(flow)
    ]
    if semantic:
        raise FlowError(semantic)
    flow._file = None if path == "<flow>" else path
    return flow


def key_position(path: Path | str, loc: Loc) -> tuple[int, int]:
    """1-based (line, column) of the key at ``loc`` in a flow file; (1, 1) if unreadable."""
    try:
        document = _load_yaml(Path(path).read_text(encoding="utf-8-sig"), str(path))
    except (OSError, UnicodeDecodeError, FlowError):
        return (1, 1)
    if not isinstance(document, CommentedMap):
        return (1, 1)
    positions = _positions(document)
    return positions.of_value(loc) if loc and isinstance(loc[-1], int) else positions.of_key(loc)


def _unique(problems: Iterable[FlowProblem]) -> list[FlowProblem]:
    return sorted(set(problems))


def _cross_checks(flow: Flow) -> Iterator[tuple[Loc, str]]:
    """Checks that span several keys: group names, periods, e-mail addresses."""
    from m365perf.domain.periods import Period, PeriodError

    for index, step in enumerate(flow.approval.steps):
        group = step.approver.group
        if group is not None and group not in flow.groups and not group.startswith("entra:"):
            close = get_close_matches(group, list(flow.groups), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            yield (
                ("approval", "steps", index, "approver", "group"),
                f"group '{group}' is not defined under groups:{hint}; "
                "name an Entra group as entra:<object-id>",
            )
    seen: set[str] = set()
    for index, step in enumerate(flow.approval.steps):
        if step.name in seen:
            yield (("approval", "steps", index, "name"), f"step name '{step.name}' is used twice")
        seen.add(step.name)
    if flow.powerbi and flow.powerbi.scheduled_refreshes_per_day >= flow.powerbi.daily_budget:
        yield (
            ("powerbi", "scheduled_refreshes_per_day"),
            "scheduled refreshes use the whole daily budget: none left for approvals",
        )
    if flow.approval.on_self_approval == "fallback" and not flow.approval.fallback:
        yield (("approval", "on_self_approval"), "fallback needs approval.fallback")
    if flow.collect_from is not None:
        try:
            Period.parse_for(flow.frequency, flow.collect_from)
        except PeriodError as exc:
            yield (("collect_from",), str(exc))
    for index, suspension in enumerate(flow.rag.suspended):
        for key, label in (("from", suspension.from_period), ("to", suspension.to_period)):
            try:
                Period.parse_for(flow.frequency, label)
            except PeriodError as exc:
                yield (("rag", "suspended", index, key), str(exc))
    if flow.actions is not None:
        others = {flow.writeback.list_title, flow.writeback.history_list}
        if flow.actions.list_title in others:
            yield (
                ("actions", "list"),
                f"'{flow.actions.list_title}' is already the results or history list; "
                "actions need a list of their own",
            )
    for name, members in flow.groups.items():
        for index, member in enumerate(members):
            if "@" not in member:
                yield (("groups", name, index), f"'{member}' is not an e-mail address")
    for index, member in enumerate(flow.performance_team):
        if "@" not in member:
            yield (("performance_team", index), f"'{member}' is not an e-mail address")


def load_flow(path: Path | str) -> Flow:
    """Read and validate one flow file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FLOW_BYTES + 1)
    except OSError as exc:
        problem = f"cannot read flow file: {exc.strerror or exc}"
        raise FlowError([FlowProblem(str(path), 1, 1, problem)]) from None
    if len(raw) > MAX_FLOW_BYTES:
        problem = f"the file is over {MAX_FLOW_BYTES:,} bytes; a flow file is at most that"
        raise FlowError([FlowProblem(str(path), 1, 1, problem)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = f"byte 0x{raw[exc.start]:02X} is not UTF-8; save the file as UTF-8"
        raise FlowError([FlowProblem(str(path), line, column, problem)]) from None
    return parse_flow(text, str(path))


def flow_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand directories to the ``*.yaml``/``*.yml`` files in them, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            found.append(path)
    return found
