"""One error root: every error the project defines derives from M365PerfError, as drawn.

A caller that catches ``M365PerfError`` must catch every error m365perf raises on purpose,
and the tree in ``m365perf/errors.py`` must show exactly the classes the code has, under the
parents (and with the built-in bases) they really have.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import m365perf
from m365perf import errors
from m365perf.errors import M365PerfError

# Errors that need not derive from the root, and why.
NOT_IN_THE_TREE = {
    "m365perf.sandbox.auth.TokenProblem": "the emulator's Entra refusal; becomes its 401",
    "m365perf.sandbox.odata.ODataError": "the emulator's OData refusal; becomes Graph's 400",
    "m365perf.cli.spc._BadInput": "private: raised and caught inside the spc command",
    "m365perf.web.app._BodyTooLarge": "private: raised and caught inside the web app (413)",
    "m365perf.web.return_form._Refused": "private: raised and caught inside the return form",
    "m365perf.messages.ids._BadKeyField": "private: tells a near miss while parsing a key",
    "m365perf.cli.cycle.Refused": "click's own one-line refusal of a command (exit 1)",
    "m365perf.cli.cycle.NotFound": "click's own one-line refusal of a command (exit 2)",
    "m365perf.tenant.provision._Stop": "private: raised and caught inside provision (its error)",
}

# One drawn line: box-drawing indent, the class name, then "(also ValueError, …)" if any.
_LINE = re.compile(r"^    (?P<indent>(?:[│ ]   )*(?:[├└]── )?)(?P<name>[A-Z]\w*)\b(?P<rest>.*)$")
_ALSO = re.compile(r"^\s*\(also (?P<names>[\w, ]+)\)")


def _entry(name: str, parent: str, also: list[str]) -> str:
    """One drawn class as text, e.g. "NotFound under StoreError (also LookupError)"."""
    return f"{name} under {parent}" + (f" (also {', '.join(sorted(also))})" if also else "")


def _project_errors() -> dict[str, type[BaseException]]:
    """Every exception class defined in m365perf, by dotted name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(m365perf.__path__, "m365perf."):
        if info.name.endswith(".__main__"):  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def _drawn() -> set[str]:
    """The tree in m365perf/errors.py, one entry per class but the root."""
    entries: set[str] = set()
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        depth = len(match["indent"]) // 4
        del parents[depth:]
        if parents:
            also = _ALSO.match(match["rest"])
            names = [n.strip() for n in also["names"].split(",")] if also else []
            entries.add(_entry(match["name"], parents[-1], names))
        parents.append(match["name"])
    return entries


def _as_drawn(cls: type[BaseException]) -> str:
    """How ``cls`` should appear: under its project base, naming any other bases."""
    project = [b.__name__ for b in cls.__bases__ if issubclass(b, M365PerfError)]
    others = [b.__name__ for b in cls.__bases__ if not issubclass(b, M365PerfError)]
    return _entry(cls.__name__, project[0] if project else "nothing of ours", others)


def test_every_project_error_derives_from_the_root() -> None:
    found = _project_errors()
    outside = [
        name
        for name, cls in found.items()
        if name not in NOT_IN_THE_TREE and cls is not M365PerfError
        if not issubclass(cls, M365PerfError)
    ]
    assert outside == [], "derive these from M365PerfError (or explain in NOT_IN_THE_TREE)"
    assert set(NOT_IN_THE_TREE) <= set(found), "NOT_IN_THE_TREE names a class that is gone"


def test_the_drawn_tree_is_the_real_tree() -> None:
    real = {
        _as_drawn(cls)
        for name, cls in _project_errors().items()
        if name not in NOT_IN_THE_TREE and cls is not M365PerfError
    }
    drawn = _drawn()
    assert sorted(real - drawn) == [], "draw these in m365perf/errors.py"
    assert sorted(drawn - real) == [], "these drawn errors do not exist (or not there)"


def test_built_in_bases_still_catch_what_they_caught() -> None:
    from m365perf.domain.periods import Period, PeriodError
    from m365perf.store import NotFound

    try:
        Period.parse("2026-13")
    except ValueError as exc:  # what callers written before the root still catch
        assert isinstance(exc, PeriodError)
        assert isinstance(exc, M365PerfError)
    else:
        raise AssertionError("month 13 was accepted")
    assert issubclass(NotFound, LookupError)
