"""What long commands say while they work: rich on a terminal, lines in a log, quiet with --json."""

from __future__ import annotations

import io
import os

import pytest

from m365perf.progress import QUIET, on_terminal, reporting


def test_with_json_nothing_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    progress = reporting(quiet=True, lines_elsewhere=True)
    progress.say("Reading the register")
    with progress.counting("owners returning", 3) as advance:
        advance()
    assert capsys.readouterr() == ("", "")


def test_off_a_terminal_the_rehearsal_writes_one_line_a_step() -> None:
    log = io.StringIO()
    progress = on_terminal(log, lines_elsewhere=True)
    progress.say("Opened: 23 indicators asked of 11 owners")
    with progress.counting("owners returning", 11) as advance:
        for _ in range(11):
            advance()
    progress.say("owners returned 10 requests")
    assert log.getvalue().splitlines() == [
        "Opened: 23 indicators asked of 11 owners",
        "owners returned 10 requests",
    ]


def test_off_a_terminal_other_commands_keep_stderr_for_errors() -> None:
    log = io.StringIO()
    progress = on_terminal(log)
    progress.say("Reading the register")
    assert progress is QUIET and log.getvalue() == ""


def test_on_a_terminal_rich_draws_the_steps_and_a_count() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w", encoding="utf-8") as terminal:
        assert terminal.isatty()
        progress = on_terminal(terminal)
        progress.say("Reading the register")
        with progress.counting("owners returning", 2) as advance:
            advance()
            advance()
        terminal.flush()
        drawn = b""
        os.set_blocking(leader, False)
        try:
            while chunk := os.read(leader, 65536):
                drawn += chunk
        except BlockingIOError:
            pass
    os.close(leader)
    text = drawn.decode("utf-8", "replace")
    assert "Reading the register" in text
    assert "owners returning" in text and "2/2" in text


def test_a_long_step_off_a_terminal_says_how_far_it_has_got() -> None:
    """A slow round in a CI log must not look stuck: a line at most once per interval."""
    from m365perf.progress import _Lines

    log = io.StringIO()
    progress = _Lines(log, every_s=0.0)
    with progress.counting("approval round 2", 3) as advance:
        advance()
        advance(0)
    assert log.getvalue().splitlines() == [
        "approval round 2: 1 of 3 so far",
        "approval round 2: 1 of 3 so far",
    ]
    quiet = io.StringIO()
    with _Lines(quiet, every_s=3600.0).counting("approval round 3", 3) as advance:
        advance()
    assert quiet.getvalue() == ""
