"""Telling the person at the terminal what a long command is doing, as it does it.

Commands that take more than a moment (``demo``, ``cycle open``, ``history import``,
``export``) say each step on standard error, so standard output stays the result alone;
``--json`` makes them quiet. On a terminal the steps are drawn by rich (a spinner and
counts). Off a terminal the rehearsal still writes each step as one plain line (a CI
log then shows where a slow run spent its time); the other commands say nothing there,
so a scheduled job's standard error holds only its errors.

The engine and the domain never print: the commands and the rehearsal are handed a
:class:`Progress` and call it between the pieces of work they drive.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Protocol, TextIO

__all__ = ["QUIET", "Advance", "Progress", "on_terminal", "reporting"]


class Advance(Protocol):
    """Counts the pieces of one step as they are done."""

    def __call__(self, done: int = 1) -> None: ...


class Progress(Protocol):
    """Where a command says what it is doing."""

    def say(self, text: str) -> None:
        """One step begun or finished, in a sentence."""

    def counting(self, text: str, total: int) -> contextlib.AbstractContextManager[Advance]:
        """A step of ``total`` pieces: the counter is called as each is done."""


class _Quiet:
    def say(self, text: str) -> None:
        return None

    @contextlib.contextmanager
    def counting(self, text: str, total: int) -> Iterator[Advance]:
        yield lambda done=1: None


QUIET: Progress = _Quiet()
"""Says nothing: for ``--json``, for the service, and for callers that do not care."""


class _Lines:
    """Plain lines on a stream that is not a terminal (a log, a pipe, a test).

    A log wants the sentence that says how a step ended, which the caller gives, not a
    line per piece; but a step still going after ``every_s`` seconds says how far it
    has got, at most once per ``every_s``, so a slow run never looks stuck.
    """

    def __init__(self, stream: TextIO, every_s: float = 30.0) -> None:
        self._stream = stream
        self._every_s = every_s

    def say(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    @contextlib.contextmanager
    def counting(self, text: str, total: int) -> Iterator[Advance]:
        count = 0
        last = time.monotonic()

        def counter(done: int = 1) -> None:
            nonlocal count, last
            count += done
            if time.monotonic() - last >= self._every_s:
                last = time.monotonic()
                self.say(f"{text}: {count} of {total} so far")

        yield counter


class _Rich:
    """A live spinner and counts on a terminal, drawn by rich."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self._console = Console(file=stream, highlight=False)

    def say(self, text: str) -> None:
        self._console.print(text, markup=False)

    @contextlib.contextmanager
    def counting(self, text: str, total: int) -> Iterator[Advance]:
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as Bar

        # Transient: the bar goes when the step ends; the caller's sentence says how it ended.
        with Bar(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            console=self._console,
            transient=True,
        ) as bar:
            task = bar.add_task(text, total=total)

            def counter(done: int = 1) -> None:
                bar.advance(task, done)

            yield counter


def on_terminal(stream: TextIO | None = None, *, lines_elsewhere: bool = False) -> Progress:
    """Progress on ``stream`` (standard error by default) when it is a terminal, drawn by
    rich; elsewhere plain lines if ``lines_elsewhere``, else nothing (a script's standard
    error stays for its errors)."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        return _Rich(stream)
    return _Lines(stream) if lines_elsewhere else QUIET


def reporting(quiet: bool, *, lines_elsewhere: bool = False) -> Progress:
    """What a command with a ``--json`` switch uses: quiet with it, talking without."""
    return QUIET if quiet else on_terminal(lines_elsewhere=lines_elsewhere)
