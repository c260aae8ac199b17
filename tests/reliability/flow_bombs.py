"""Flow files built to exhaust the loader, shared by the bomb test and its benchmark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    """A "billion laughs" file: under 1 KB, 9**9 values once its aliases are expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


def wide_alias_bomb() -> bytes:
    """The 5 KB shape: few levels, many aliases on each."""
    return alias_bomb(levels=5, width=250)[:5200].rsplit(b",", 1)[0] + b"]\n"


def deep_flow_nesting() -> bytes:
    """60 KB of ``[`` (under the size limit): the scanner slows quadratically with these."""
    return b"id: " + b"[" * 60_000 + b"\n"


def deep_block_nesting() -> bytes:
    """Mappings nested by indentation, 300 deep, in well under the size limit."""
    return b"".join(b" " * level + b"a:\n" for level in range(300)) + b" " * 300 + b"b\n"


def write_huge_file(path: Path) -> None:
    """50 MB of one value, written in pieces (a 50 MB string in the benchmark's memory
    would count in every validate process it starts)."""
    with path.open("wb") as handle:
        handle.write(b"id: ")
        for _ in range(50):
            handle.write(b"x" * 1_000_000)
        handle.write(b"\n")


def _written(build: Callable[[], bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(build())

    return write


#: Each bomb: how to write it, and the message ``validate`` refuses it with.
BOMBS: dict[str, tuple[Callable[[Path], None], str]] = {
    "alias_bomb_9x9": (_written(alias_bomb), "more than 10,000 values (an alias *name counts"),
    "alias_bomb_5kb": (_written(wide_alias_bomb), "more than 10,000 values (an alias *name counts"),
    "deep_flow_nesting": (_written(deep_flow_nesting), "nested more than 32 levels deep"),
    "deep_block_nesting": (_written(deep_block_nesting), "nested more than 32 levels deep"),
    "huge_file_50mb": (write_huge_file, "the file is over 65,536 bytes"),
}
