"""The one reader of the CSV files a council brings: registers, directories, history, series.

Excel and the systems councils export from save CSV as UTF-8 (with or without a BOM),
UTF-16 ("Unicode text", often without a BOM, tab-separated) or Windows-1252. The
encoding is detected from the BOM or, without one, from where the NUL bytes fall; text
that is none of these is refused naming the file and line, never guessed. A line the
CSV parser cannot read (a stray quote, a field over the parser's limit) is a
:class:`BadLine`: reported with its line, and the lines after it are still read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from m365perf.errors import M365PerfError

#: A register of 200 indicators is well under 1 MB; a file this large is not a register.
MAX_CSV_BYTES = 64 * 1024 * 1024
#: Python's csv parser refuses a longer field; SharePoint's longest text holds 63,999.
MAX_FIELD_CHARS = csv.field_size_limit()

_WORKBOOKS = {
    b"PK\x03\x04": "an Excel workbook (.xlsx)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}
#: Checked in order: UTF-32's little-endian BOM starts like UTF-16's.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_SAVE_AS = "save it as 'CSV UTF-8'"


class UnreadableCsv(M365PerfError, ValueError):
    """A CSV file (register or directory) that cannot be read as rows; the message says why."""


@dataclass(frozen=True)
class CsvLine:
    """One parsed row and the line of the file it starts on."""

    line: int
    cells: list[str]


@dataclass(frozen=True)
class BadLine:
    """A row the CSV parser could not read, and why; the rows after it were read."""

    line: int
    reason: str


class UnreadableRow(dict[str, str]):
    """A register row that could not be read: no cells, its line and why.

    It travels with the readable rows so the register's problem list names it.
    """

    def __init__(self, path: Path, bad: BadLine) -> None:
        super().__init__()
        self.path = path
        self.line = bad.line
        self.reason = bad.reason

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read: its header, its rows, the lines that could not be read."""

    path: Path
    encoding: str
    header: list[str]
    lines: list[CsvLine] = field(repr=False)
    bad: list[BadLine]

    def records(self) -> list[dict[str, str]]:
        """Each row as column name → stripped text ("" for a missing cell), in file order.

        Unreadable lines are :class:`UnreadableRow` entries at their place.
        """
        names = [(index, name) for index, name in enumerate(self.header) if name]
        out: list[tuple[int, dict[str, str]]] = [
            (
                row.line,
                {name: (row.cells[i].strip() if i < len(row.cells) else "") for i, name in names},
            )
            for row in self.lines
        ]
        out += [(bad.line, UnreadableRow(self.path, bad)) for bad in self.bad]
        return [record for _, record in sorted(out, key=lambda pair: pair[0])]


def _where(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of ``offset`` in ``raw``."""
    line = raw.count(b"\n", 0, offset) + 1
    return line, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def _utf16_without_bom(raw: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when NULs fall on every other byte, as in UTF-16 text."""
    sample = raw[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even = sample[0::2].count(0) / len(sample[0::2])
    odd = sample[1::2].count(0) / max(1, len(sample[1::2]))
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def decode(path: Path, raw: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read in; UnreadableCsv if none fits."""
    for magic, what in _WORKBOOKS.items():
        if raw.startswith(magic):
            raise UnreadableCsv(f"{path}: this is {what}, not a CSV; {_SAVE_AS}")
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
    encoding = encoding or _utf16_without_bom(raw)
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            # the line, counted in the text decoded so far
            line = raw[: exc.start].decode(encoding, "replace").count("\n") + 1
            raise UnreadableCsv(
                f"{path}:{line}: reads as {encoding.upper()} text until byte {exc.start + 1}, "
                f"which does not decode; {_SAVE_AS}"
            ) from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        line, column = _where(raw, exc.start)
        raise UnreadableCsv(
            f"{path}:{line}: byte 0x{raw[exc.start]:02X} (column {column}) is neither UTF-8 "
            f"nor Windows-1252 text; {_SAVE_AS}"
        ) from None


def read_text(path: Path | str) -> tuple[str, str, str]:
    """A CSV file's text, its delimiter and its encoding; UnreadableCsv naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise UnreadableCsv(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CSV_BYTES:
        raise UnreadableCsv(
            f"{path}: is over {MAX_CSV_BYTES // (1024 * 1024)} MB; a register or export "
            "is far smaller (is this the right file?)"
        )
    text, encoding = decode(path, raw)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise UnreadableCsv(f"{path}: is empty; a CSV needs a header row of column names")
    if "\x00" in first or text.count("\x00") * 100 > len(text):
        # one NUL in a cell is that row's problem; NULs throughout mean a binary file
        raise UnreadableCsv(f"{path}: contains NUL bytes, so it is not a text CSV; {_SAVE_AS}")
    delimiter = "\t" if "\t" in first and "," not in first else ","  # Excel's "Unicode text"
    return text, delimiter, encoding


def _reason(exc: csv.Error) -> str:
    message = str(exc)
    if "field limit" in message:
        return (
            f"a cell is longer than {MAX_FIELD_CHARS:,} characters (often a quote that is "
            "never closed)"
        )
    return f"not well-formed CSV ({message})"


def read_table(path: Path | str) -> CsvTable:
    """Read a CSV file whole: header, rows with their lines, lines that could not be read.

    Raises :class:`UnreadableCsv` (naming the file, and the line where there is one) for
    a file that cannot be read, is not text in a known encoding, or has no header row.
    """
    path = Path(path)
    text, delimiter, encoding = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    lines: list[CsvLine] = []
    bad: list[BadLine] = []
    start = 1
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:
                raise UnreadableCsv(f"{path}:{start}: the header row is {_reason(exc)}") from None
            bad.append(BadLine(start, _reason(exc)))
            continue
        if header is None:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines above the header
            header = [cell.strip() for cell in cells]
            continue
        if any(cell.strip() for cell in cells):
            lines.append(CsvLine(start, cells))
    if header is None or not any(header):
        raise UnreadableCsv(f"{path}: the first line is not a header row of column names")
    return CsvTable(path, encoding, header, lines, bad)
