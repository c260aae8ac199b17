"""Flow files YAML can make dangerous are refused at the line and column, never a traceback.

These replay the kinds of file the issue-10 fuzzing found giving tracebacks (control
characters, ``!!omap`` and other tags, integers over 4,300 digits, deep nesting,
``!!str`` on a list) and the size limits; the bombs are in ``tests/reliability/test_flow_bombs.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from m365perf.flows import FlowError, load_flow

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"


def _refusal(tmp_path: Path, data: bytes) -> list[str]:
    path = tmp_path / "flow.yaml"
    path.write_bytes(data)
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    return [str(problem) for problem in caught.value.problems]


def _monthly_with(line_5: bytes) -> bytes:
    """The monthly example with its ``name:`` line (line 5) replaced."""
    lines = MONTHLY.read_bytes().splitlines(keepends=True)
    assert lines[4].startswith(b"name:")
    lines[4] = line_5 + b"\n"
    return b"".join(lines)


@pytest.mark.parametrize(
    ("line_5", "column", "message"),
    [
        (b"name: !!omap [a: 1]", 7, "YAML tag 'tag:yaml.org,2002:omap' is not used"),
        (b"name: !!str [a, b]", 7, "YAML tag 'tag:yaml.org,2002:str' is not used"),
        (b"name: !!python/object:os.system x", 7, "is not used in flow files"),
        (b"name: !custom x", 7, "YAML tag '!custom' is not used"),
        (b"name: 1" + b"9" * 4400, 7, "a number of 4,401 characters; at most 100"),
        (b'name: "a\\x01b"', 7, "control character U+0001"),
        (b'name: "\\ud800"', 7, "control character U+D800"),
        (b"name: a\x07b", 8, "unacceptable character U+0007"),
        (b"name: 2025-13-45", 7, "cannot read this value: month must be in 1..12"),
        (b"name: caf\xe9", 10, "byte 0xE9 is not UTF-8"),
        (b"name: " + b"[" * 40 + b"]" * 40, 7 + 31, "nested more than 32 levels deep"),
    ],
)
def test_a_dangerous_value_is_refused_where_it_is(
    tmp_path: Path, line_5: bytes, column: int, message: str
) -> None:
    problems = _refusal(tmp_path, _monthly_with(line_5))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'flow.yaml'}:5:{column}: ")
    assert message in problems[0]


def test_a_few_aliases_and_merge_keys_still_load_and_are_positioned(tmp_path: Path) -> None:
    text = MONTHLY.read_text().replace(
        "  tolerance: {percent: 5}", "  tolerance: &five {percent: 5}"
    )
    text += "x_shared: &shared {a: 1}\nx_user:\n  <<: *shared\n  b: *five\n"
    problems = _refusal(tmp_path, text.encode())
    # the only problems are the two unknown keys, each at its own line
    lines = text.splitlines()
    shared_at = lines.index("x_shared: &shared {a: 1}") + 1
    assert [p.split(": ", 1)[0].rsplit(":", 2)[1:] for p in problems] == [
        [str(shared_at), "1"],
        [str(shared_at + 1), "1"],
    ]


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    problems = _refusal(tmp_path, b"x: " + b"y" * 5_000_000)
    assert problems == [
        f"{tmp_path / 'flow.yaml'}:1:1: the file is over 65,536 bytes; a flow file is at most that"
    ]


def test_too_many_lines_are_refused_at_the_first_line_over(tmp_path: Path) -> None:
    problems = _refusal(tmp_path, b"a: 1\n" + b"#\n" * 3000)
    assert problems[0].startswith(f"{tmp_path / 'flow.yaml'}:2001:1: the file has 3,002 lines")
