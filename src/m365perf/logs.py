"""Log records as text or JSON lines, each carrying the correlation id of what caused it.

``M365PERF_LOG_FORMAT=json`` writes one JSON object a line (time, level, logger,
message, correlation id, exception) for a log collector; ``text`` is for a terminal.
``M365PERF_LOG_LEVEL`` is the least serious level written.

A correlation id names one request or click: the web layer takes the caller's
``X-Correlation-Id`` (when it is a plain short token) or makes one, sends it back, and
every record logged while the request is handled carries it, including the lines naming
the outbox rows it queued; the dispatcher logs each row's sends under ``outbox-<id>``,
so a search for a click's id finds the rows it caused and a search for a row finds its
sends.

Every record passes a last redaction: bearer tokens, JWT-shaped strings and the tokens
of signed web-form links never reach the log, whoever logged them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

CORRELATION_HEADER = "X-Correlation-Id"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_correlation: ContextVar[str | None] = ContextVar("m365perf_correlation_id", default=None)

_REDACTIONS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted token]"),
    (re.compile(r"/returns/[^/?#\s\"'<>]+"), "/returns/[link]"),
)

LogFormat = Literal["text", "json"]
_TEXT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


def correlation_id() -> str | None:
    """The id of the request or outbox row being handled on this thread, if any."""
    return _correlation.get()


def accept_correlation_id(offered: str | None) -> str:
    """The caller's id when it is a plain token of at most 64 characters, else a new one.

    Anything else is replaced rather than logged: the header is the caller's text.
    """
    if offered is not None and _ACCEPTED_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


@contextmanager
def correlated(value: str) -> Iterator[str]:
    """Log everything inside the block under ``value``."""
    token = _correlation.set(value)
    try:
        yield value
    finally:
        _correlation.reset(token)


def redact(text: str) -> str:
    """Remove bearer tokens, JWTs and signed-link tokens from text bound for a log."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class _Context(logging.Filter):
    """Adds the correlation id and redacts the message, on the handler: every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _correlation.get() or "-"
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line; the exception, if any, as one redacted string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "-"),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class _RedactedText(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


def configure_logging(
    log_format: LogFormat = "text", level: str = "INFO", *, stream: TextIO | None = None
) -> None:
    """Send every logger's records to ``stream`` (stderr) in ``log_format`` from ``level``.

    Replaces the handlers this function installed before, so calling it twice is safe.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_Context())
    handler.setFormatter(JsonLines() if log_format == "json" else _RedactedText(_TEXT))
    handler.set_name("m365perf")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "m365perf"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Uvicorn's own handlers would write its records a second time, unformatted.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
