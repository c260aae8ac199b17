"""The repository needs nothing beside it: no path outside it, the examples shipped once."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path, PurePosixPath

import m365perf.examples
from m365perf.examples import DIRECTORY_CSV, FLOWS_DIR, REGISTER_CSV

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["src", "tests", "bench", "scripts", "Makefile", "pyproject.toml", "constraints.txt"]
#: A relative path that climbs: ``../name``, as many levels as it takes.
CLIMBING = re.compile(r"(?:\.\./)+[\w.-]+")
SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def _files() -> list[Path]:
    found: list[Path] = []
    for name in CHECKED:
        top = ROOT / name
        if top.is_file():
            found.append(top)
        for path in sorted(top.rglob("*")) if top.is_dir() else []:
            parts = set(path.relative_to(ROOT).parts)
            if (
                path.is_file()
                and not parts & SKIPPED_DIRS
                and not any(p.endswith(".egg-info") for p in parts)
            ):
                found.append(path)
    return found


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    files = _files()
    assert ROOT / "src" / "m365perf" / "demo.py" in files  # the walk found the sources
    offending = []
    for path in files:
        if path == Path(__file__).resolve():
            continue  # this check: its examples climb out on purpose
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (a font, an icon): holds no paths
        for number, line in enumerate(text.splitlines(), 1):
            if _leaves_the_repository(path, line):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offending == []


def _leaves_the_repository(path: Path, line: str) -> bool:
    """A ``../`` path that resolves outside the checkout from the file's folder or from
    the checkout's root (where the tests and the demo run), or an absolute path into the
    folder the checkout sits in (a sibling of it, which a clone elsewhere does not have)."""
    for found in CLIMBING.findall(line):
        for base in (path.parent, ROOT):
            if not Path(os.path.normpath(base / found)).is_relative_to(ROOT):
                return True
    beside = f"{ROOT.parent}/"
    return beside != "//" and beside in line.replace(f"{ROOT}/", "")


def test_the_check_sees_a_path_that_climbs_out_or_names_a_sibling() -> None:
    source = ROOT / "tests" / "cards" / "card_support.py"
    sibling = ROOT.parent / "data" / "kpis.csv"
    assert _leaves_the_repository(source, "open('../../../data/kpis.csv')")
    assert _leaves_the_repository(source, f"read({str(sibling)!r})")
    assert _leaves_the_repository(source, "open('../data/kpis.csv')")  # from the root
    assert not _leaves_the_repository(source, "open('data/kpis.csv')")
    assert not _leaves_the_repository(source, f"open('{ROOT}/flows/monthly.yaml')")


def test_every_link_in_the_repository_stays_inside_it() -> None:
    links = [p for p in [*ROOT.iterdir(), *(ROOT / "config").iterdir()] if p.is_symlink()]
    links += [p for p in _files() if p.is_symlink()]
    assert ROOT / "flows" in links
    for link in links:
        assert link.resolve().is_relative_to(ROOT), link
        assert link.exists(), f"{link} is a dangling link"


def test_the_repository_examples_are_the_packaged_ones() -> None:
    """One copy: flows/ and config/demo-*.csv are links to the package's examples."""
    assert (ROOT / "flows").resolve() == FLOWS_DIR.resolve()
    assert (ROOT / "config" / "demo-register.csv").resolve() == REGISTER_CSV.resolve()
    assert (ROOT / "config" / "demo-directory.csv").resolve() == DIRECTORY_CSV.resolve()
    assert len(list(FLOWS_DIR.glob("*.yaml"))) == 3


def test_every_example_file_is_package_data() -> None:
    """A wheel holds exactly what pyproject's package-data names: no example left behind."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["m365perf"]
    package = Path(m365perf.examples.__file__).parent.parent
    examples = [
        p.relative_to(package).as_posix()
        for p in m365perf.examples.examples_dir().rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"}
    ]
    assert "examples/flows/monthly-corporate-kpis.yaml" in examples
    missing = [e for e in examples if not any(PurePosixPath(e).match(g) for g in globs)]
    assert missing == []
