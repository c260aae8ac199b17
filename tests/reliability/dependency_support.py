"""What the failover and outage suites share: polling, the database, the sandbox's record."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests
import sqlalchemy

from m365perf.sandbox.testing import RunningSandbox

WAIT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = WAIT_S) -> float:
    """Poll until ``check()`` holds; the seconds it took (fails after ``timeout_s``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


def query(url: str, sql: str) -> list[Any]:
    """Run one statement on a fresh connection; its rows, if it returns any."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sqlalchemy.text(sql))
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def delivered(sandbox: RunningSandbox) -> Counter[str]:
    """Every chat message and e-mail the sandbox holds, by recipient and content.

    Ids and times are left out: a message sent twice differs only in those.
    """
    base = f"{sandbox.base_url}/_sandbox"
    seen: Counter[str] = Counter()
    for user in requests.get(f"{base}/users", timeout=10).json()["value"]:
        for chat in requests.get(f"{base}/chats/{user['id']}", timeout=10).json()["value"]:
            for activity in chat["activities"]:
                content = [activity["text"], activity["summary"], activity["card"]]
                seen[json.dumps([user["upn"], "chat", content], sort_keys=True)] += 1
        mailbox = requests.get(f"{base}/mailboxes/{user['mail']}", timeout=10)
        for mail in mailbox.json()["value"] if mailbox.ok else []:
            content = [mail.get("subject"), mail.get("body"), mail.get("card")]
            seen[json.dumps([user["upn"], "mail", content], sort_keys=True)] += 1
    return seen


def sent_twice(sandbox: RunningSandbox) -> list[str]:
    """Messages people got more than once."""
    return [text for text, n in delivered(sandbox).items() if n > 1]
