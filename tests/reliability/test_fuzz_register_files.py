"""Register-file fuzzer: mutated registers, directories and history exports, no traceback.

Each case is read as the CLI reads it: as a register (rows through the monthly flow's
field map), as a directory of people and as a history export. It is read, with bad
rows reported by line, or refused with a message naming the file. Full size (500+)::

    M365PERF_FULL_SIZE=1 M365PERF_FUZZ_SEED=20261202 \
        .venv/bin/pytest tests/reliability/test_fuzz_register_files.py -q -s
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from file_fuzz_support import Tally, rng
from reliability_support import report, sized

from m365perf.csvfiles import UnreadableCsv, UnreadableRow
from m365perf.flows import load_flow
from m365perf.history_files import PRESETS, HistoryFileError, read_export
from m365perf.plan.register import read_indicators, read_register_csv
from m365perf.sync import CsvPeople

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "src/m365perf/examples"
FLOW = load_flow(EXAMPLES / "flows/monthly-corporate-kpis.yaml")
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"]


def _samples() -> list[str]:
    register = (EXAMPLES / "demo-register.csv").read_text(encoding="utf-8-sig")
    directory = (EXAMPLES / "demo-directory.csv").read_text(encoding="utf-8-sig")
    history = (EXAMPLES / "history/coventry-pentana-export.csv").read_text(encoding="utf-8-sig")
    # the first 40 lines of each keep every case small and quick
    return ["".join(text.splitlines(keepends=True)[:40]) for text in (register, directory, history)]


NASTY_CELLS = [
    "\x00",
    "a\x00b",
    "\x81\x8d",
    '"',
    '"unclosed',
    'x"y',
    '""',
    "\r",
    "\n",
    "\u2028",
    "\ufeff",
    "\u202e",
    "\ud800",
    "é£€",
    "x" * 140_000,
    '"' + "x" * 140_000,
    "9" * 5000,
    "=cmd|' /C calc'!A0",
    "\t",
    ",,,,,,",
    "-1e309",
    "nan",
]


def _encode(text: str, r: random.Random) -> bytes:
    encoding = r.choice(ENCODINGS)
    data = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    if encoding.startswith("utf-16") and r.random() < 0.2:
        data = data[:-1]  # an odd number of bytes
    return data


def _nasty_cell(text: str, r: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    i = r.randrange(len(lines))
    cells = lines[i].rstrip("\r\n").split(",")
    cells[r.randrange(len(cells))] = r.choice(NASTY_CELLS)
    lines[i] = ",".join(cells) + "\n"
    return "".join(lines)


def _flip_bytes(data: bytes, r: random.Random) -> bytes:
    out = bytearray(data or b"\n")
    for _ in range(r.randint(1, 10)):
        out[r.randrange(len(out))] = r.randrange(256)
    return bytes(out)


def _drop_header_or_lines(text: str, r: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if r.random() < 0.3:
        return "".join(lines[1:])
    for _ in range(r.randint(1, 5)):
        if lines:
            del lines[r.randrange(len(lines))]
    return "".join(lines)


def _delimiter(text: str, r: random.Random) -> str:
    return text.replace(",", r.choice(["\t", ";", "|", ",,"]))


def _truncate(data: bytes, r: random.Random) -> bytes:
    return data[: r.randrange(len(data) + 1)]


TEXT_MUTATIONS: list[Callable[[str, random.Random], str]] = [
    _nasty_cell,
    _nasty_cell,
    _drop_header_or_lines,
    _delimiter,
]
BYTE_MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [_flip_bytes, _truncate]

FIXED: list[bytes] = [
    b"",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\n\n\n",
    b"PK\x03\x04rest",
    b"\xd0\xcf\x11\xe0rest",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"\x00" * 100,
    b"IndicatorId\n" + b"\x81" * 10,
    b'"' * 1000,
    b"a," * 100_000 + b"\n",
]


def _cases(count: int, r: random.Random) -> list[bytes]:
    samples = _samples()
    cases = list(FIXED) + [text.encode(e) for text in samples for e in ("utf-16-le", "cp1252")]
    while len(cases) < count:
        text = r.choice(samples)
        for _ in range(r.choice([1, 2, 3])):
            text = r.choice(TEXT_MUTATIONS)(text, r) or "\n"
        data = _encode(text, r)
        if r.random() < 0.3:
            data = r.choice(BYTE_MUTATIONS)(data, r)
        cases.append(data)
    return cases


def read_as_register(path: Path) -> None:
    rows = read_register_csv(path, FLOW)
    _, problems = read_indicators(FLOW, rows)
    unread = [row for row in rows if isinstance(row, UnreadableRow)]
    reported = [p for p in problems if p.name == "(row not read)"]
    assert len(reported) == len(unread), "every unreadable row is a problem row"
    assert all(p.reason.startswith(f"{path}:") for p in reported)


def read_as_directory(path: Path) -> None:
    CsvPeople(path).people(["zoe.turner@contoso.gov.uk"])


def read_as_history(path: Path) -> None:
    rows = read_export(path, PRESETS["pentana"])
    assert all(r.line >= 1 for r in rows)


def test_no_register_file_gives_a_traceback(tmp_path: Path) -> None:
    count = sized(100, 600)
    r = rng("register-files")
    tally = Tally()
    started = time.perf_counter()
    for number, data in enumerate(_cases(count, r)):
        path = tmp_path / f"case-{number:05d}.csv"
        path.write_bytes(data)
        for read, refusal in (
            (read_as_register, UnreadableCsv),
            (read_as_directory, UnreadableCsv),
            (read_as_history, HistoryFileError),
        ):
            tally.check(path, read, refusal, lambda exc: [str(exc)], line_pattern=r"(:\d+)?: \S")
        path.unlink()
    report(
        "fuzz_register_files",
        files=count,
        **tally.figures(),
        wall_s=round(time.perf_counter() - started, 2),
    )
    assert tally.tracebacks == [], "\n".join(tally.tracebacks[:5])
    assert tally.unnamed == [], "\n".join(tally.unnamed[:10])
    assert tally.loaded > count // 4  # most mutations still read: it is not refusing all
