"""Flow-file fuzzer: mutated example flows and YAML nasties never give a traceback.

Every case either loads or is refused with ``file:line:col: message`` lines, as
``m365perf validate`` prints them. Full size (2,000+ cases)::

    M365PERF_FULL_SIZE=1 M365PERF_FUZZ_SEED=20261202 \
        .venv/bin/pytest tests/reliability/test_fuzz_flow_files.py -q -s
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from file_fuzz_support import Tally, rng
from reliability_support import report, sized

from m365perf.flows import FlowError, load_flow

EXAMPLES = sorted((Path(__file__).parents[2] / "src/m365perf/examples/flows").glob("*.yaml"))

#: YAML a performance officer (or a bad copy-paste) could put in a flow file.
NASTIES: list[bytes] = [
    b"",
    b"# only a comment\n",
    b"null\n",
    b"~\n",
    b"42\n",
    b"- a\n- b\n",
    b"id: x\n---\nid: y\n",
    b"%YAML 1.1\n---\nid: x\n",
    b"%YAML 9.9\n---\nid: x\n",
    b"%TAG !e! tag:example.com,2000:\n---\nid: !e!foo x\n",
    b"id: !!omap [a: 1, b: 2]\n",
    b"!!omap\n- a: 1\n- a: 2\n",
    b"!!set {a, b}\n",
    b"id: !!set {a, b}\n",
    b"id: !!str [a, b]\n",
    b"id: !!str {a: b}\n",
    b"id: !!int {a: b}\n",
    b"id: !!int abc\n",
    b"id: !!float abc\n",
    b"id: !!bool maybe\n",
    b"id: !!timestamp yesterday\n",
    b"id: !!binary '@@@'\n",
    b"id: !!null x\n",
    b"id: !!map [a]\n",
    b"id: !!seq {a: b}\n",
    b"id: !!pairs [a, b]\n",
    b"id: !!python/object:os.system x\n",
    b"id: !!python/name:os.system\n",
    b"id: !custom x\n",
    b"id: !<tag:yaml.org,2002:str> [x]\n",
    b"id: 1" + b"9" * 5000 + b"\n",
    b"id: x\nname: " + b"1" * 4400 + b"\n",
    b"id: 0x" + b"f" * 5000 + b"\n",
    b"id: 0o" + b"7" * 5000 + b"\n",
    b"id: 1" + b"_0" * 5000 + b"\n",
    b"id: 1e99999\n",
    b"id: 190:20:30\n",
    b"id: .nan\n",
    b"id: \x01\x02\n",
    b"id: \x7f\n",
    b"id: \x1b[31mred\n",
    b'id: "\\x00"\n',
    b'id: "\\ud800"\n',
    b'id: "\\U0010ffff"\n',
    b'id: "\\U00110000"\n',
    b"id: \xff\xfe\n",
    b"\xef\xbb\xbfid: bom\n",
    b"\xff\xfei\x00d\x00:\x00 \x00x\x00\n\x00",
    b"id: \xc3\x28\n",
    b"id: \xed\xa0\x80\n",
    b"id: x\x00y\n",
    b"id:\tx\n\tname: y\n",
    b"id: x\n  name: y\n",
    b"? [a, b]\n: c\n",
    b"? {a: b}\n: c\n",
    b"[a]: b\n",
    b"{a: b}: c\n",
    b"1: a\n2: b\n",
    b"true: a\nnull: b\n",
    b"id: a\nid: b\n",
    b"a: &x 1\nb: *x\n",
    b"a: *missing\n",
    b"a: &x [*x]\n",
    b"a: &x {b: *x}\n",
    b"base: &b {id: x}\n<<: *b\n",
    b"<<: [1, 2]\n",
    b"<<: 5\n",
    b"<<: *nothing\n",
    b"id: |\n  a\n b\n",
    b"id: >-9\n  x\n",
    b"id: '\n",
    b'id: "\n',
    b"id: [\n",
    b"id: {\n",
    b"]]]]\n",
    b"&a &b x\n",
    b"id: x\r\nname: y\r\n",
    b"id: x\rname: y\r",
    "id: x\u2028name: y\n".encode(),
    "id: x\u0085name: y\n".encode(),
    "id: \ufeffx\n".encode(),
    "id: \u202ecba\n".encode(),
    b"[" * 2000 + b"]" * 2000 + b"\n",
    b"{a: " * 2000 + b"b" + b"}" * 2000 + b"\n",
    b"".join(b"  " * i + b"a:\n" for i in range(600)) + b"  " * 600 + b"b\n",
    b"".join(b"  " * i + b"- \n" for i in range(600)),
    b"- " * 3000 + b"x\n",
    b"id: " + b"x" * 200_000 + b"\n",
    b"a: 1\n" * 50_000,
]


def _bytes_of(path: Path) -> bytes:
    return path.read_bytes()


def _insert_nasty(base: bytes, r: random.Random) -> bytes:
    lines = base.splitlines(keepends=True)
    at = r.randrange(len(lines) + 1)
    snippet = r.choice(NASTIES)[:2000]
    indent = b" " * r.choice([0, 0, 2, 4, 6])
    return b"".join(lines[:at]) + indent + snippet + b"".join(lines[at:])


def _replace_value(base: bytes, r: random.Random) -> bytes:
    lines = base.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if b": " in line]
    if not candidates:
        return base
    i = r.choice(candidates)
    key, _, _ = lines[i].partition(b": ")
    value = r.choice(
        [
            b"!!omap [a: 1]",
            b"!!str [x]",
            b"!!binary x",
            b"!!int " + b"9" * 4500,
            b"9" * 4500,
            b"-" + b"9" * 5000,
            b"[" * 300 + b"]" * 300,
            b"\x00",
            b"\x07",
            b"&x [*x]",
            b"*nowhere",
            b"{",
            b"'",
            b"~",
            b"[]",
            b"{}",
            b"-1",
            b"1.5e308",
            b"99999999999999999999",
            b"2025-13-45",
            b'"\\u0000"',
            b"\xe2\x80",
            b"yes",
            b"x" * r.choice([10, 300, 5000]),
        ]
    )
    lines[i] = key + b": " + value + b"\n"
    return b"".join(lines)


def _flip_bytes(base: bytes, r: random.Random) -> bytes:
    data = bytearray(base or b"\n")
    for _ in range(r.randint(1, 8)):
        at = r.randrange(len(data))
        data[at] = r.randrange(256)
    return bytes(data)


def _drop_or_duplicate_lines(base: bytes, r: random.Random) -> bytes:
    lines = base.splitlines(keepends=True)
    for _ in range(r.randint(1, 4)):
        if not lines:
            break
        i = r.randrange(len(lines))
        if r.random() < 0.5:
            del lines[i]
        else:
            lines.insert(r.randrange(len(lines) + 1), lines[i])
    return b"".join(lines)


def _reindent(base: bytes, r: random.Random) -> bytes:
    lines = base.splitlines(keepends=True) or [b"\n"]
    i = r.randrange(len(lines))
    lines[i] = r.choice([b"", b" ", b"\t", b"    "]) + lines[i].lstrip()
    return b"".join(lines)


def _truncate(base: bytes, r: random.Random) -> bytes:
    return base[: r.randrange(len(base) + 1)]


def _anchor_games(base: bytes, r: random.Random) -> bytes:
    lines = base.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if line.rstrip().endswith(b":")]
    if not candidates:
        return base
    i = r.choice(candidates)
    lines[i] = lines[i].rstrip() + b" &shared\n"
    lines.insert(r.randrange(len(lines) + 1), b"extra: *shared\n")
    return b"".join(lines)


MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [
    _insert_nasty,
    _replace_value,
    _flip_bytes,
    _drop_or_duplicate_lines,
    _reindent,
    _truncate,
    _anchor_games,
]


def _cases(count: int, r: random.Random) -> list[bytes]:
    bases = [_bytes_of(path) for path in EXAMPLES]
    cases = [*NASTIES, *bases]
    while len(cases) < count:
        data = r.choice(bases)
        for _ in range(r.choice([1, 1, 2, 3])):
            data = r.choice(MUTATIONS)(data, r) or b"\n"  # each keeps at least one line
        cases.append(data)
    return cases[:count] if count >= len(NASTIES) + len(bases) else cases


def _messages(exc: Exception) -> list[str]:
    assert isinstance(exc, FlowError)
    return [str(problem) for problem in exc.problems]


def test_no_flow_file_gives_a_traceback(tmp_path: Path) -> None:
    count = sized(200, 2000)
    r = rng("flow-files")
    tally = Tally()
    started = time.perf_counter()
    for number, data in enumerate(_cases(count, r)):
        path = tmp_path / f"case-{number:05d}.yaml"
        path.write_bytes(data)
        tally.check(path, load_flow, FlowError, _messages, line_pattern=r":\d+:\d+: \S")
        path.unlink()
    report("fuzz_flow_files", **tally.figures(), wall_s=round(time.perf_counter() - started, 2))
    assert tally.tracebacks == [], "\n".join(tally.tracebacks[:5])
    assert tally.unnamed == [], "\n".join(tally.unnamed[:10])
    # the examples themselves still load: the fuzzer is not refusing everything
    assert tally.loaded >= len(EXAMPLES)
