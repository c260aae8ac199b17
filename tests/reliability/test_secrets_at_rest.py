"""A full rehearsal (``m365perf demo --auto --workdir DIR``) leaves no credential behind:
its log (JSON lines, debug level), every file it writes and every table of its database
are scanned for the configured secrets, bearer tokens (JWT-shaped strings) and signed
web-form links (``/returns/<token>``).

One flow is rehearsed, the quarterly one (cards in Teams and e-mail, web-form links for
partners): a whole cycle of every kind of message, at half the time of the default two.
The sandbox's data folder and its log are not scanned: they stand for Microsoft 365,
whose mailboxes must hold the links people click, and the sandbox prints its own (fake)
app credentials for a user to copy.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from m365perf.cli import main
from m365perf.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "flows" / "quarterly-service-standards.yaml"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
SIGNED_LINK = re.compile(r"/returns/(?!\[link\])[A-Za-z0-9_\-.~%]{16,}")


@dataclass(frozen=True)
class Rehearsal:
    log: str
    texts: dict[str, str]  # where -> text: each file, each database cell
    secrets: dict[str, str]  # setting name -> value


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    import m365perf.demo

    workdir = tmp_path_factory.mktemp("rehearsal")
    flows = tmp_path_factory.mktemp("flows")
    shutil.copy(FLOW, flows / FLOW.name)
    used: list[Settings] = []
    real_load = m365perf.demo.load_settings

    def remember(**overrides: object) -> Settings:
        settings = real_load(**overrides)
        used.append(settings)
        return settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(m365perf.demo, "load_settings", remember)
        patch.setenv("M365PERF_LOG_FORMAT", "json")
        patch.setenv("M365PERF_LOG_LEVEL", "DEBUG")
        try:
            command = ["demo", "--auto", "--workdir", str(workdir), "--flows", str(flows)]
            result = CliRunner().invoke(main, command)
        finally:
            root = logging.getLogger()
            for handler in [h for h in root.handlers if h.get_name() == "m365perf"]:
                root.removeHandler(handler)
            root.setLevel(logging.WARNING)
    assert result.exit_code == 0, result.output
    log = result.stderr
    logged = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["correlation_id"] != "-" for r in logged), "no request was logged"
    secrets = {
        name: value.get_secret_value()
        for settings in used
        for name, value in settings
        if isinstance(value, SecretStr)
    }
    assert "link_secret" in secrets and "client_secret" in secrets
    yield Rehearsal(log, _texts(workdir), secrets)


def _texts(workdir: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted(workdir.rglob("*")):
        if not path.is_file() or path.name == "sandbox.log" or workdir / "sandbox" in path.parents:
            continue
        if path.suffix == ".db":
            texts |= _cells(path)
        texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return texts


def _cells(database: Path) -> dict[str, str]:
    """Every cell of every table, named table.column#rowid."""
    found: dict[str, str] = {}
    conn = sqlite3.connect(database)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for n, row in enumerate(cursor):
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        found[f"{table}.{column}#{n}"] = str(value)
    finally:
        conn.close()
    return found


def _everywhere(rehearsal: Rehearsal) -> dict[str, str]:
    return {"the log": rehearsal.log, **rehearsal.texts}


def test_no_configured_secret_is_logged_or_stored(rehearsal: Rehearsal) -> None:
    leaks = [
        f"{name} in {where}"
        for where, text in _everywhere(rehearsal).items()
        for name, secret in rehearsal.secrets.items()
        if secret in text
    ]
    assert leaks == []


def test_no_bearer_token_is_logged_or_stored(rehearsal: Rehearsal) -> None:
    leaks = [where for where, text in _everywhere(rehearsal).items() if JWT.search(text)]
    assert leaks == []


def test_no_signed_link_is_logged(rehearsal: Rehearsal) -> None:
    assert SIGNED_LINK.findall(rehearsal.log) == []


def test_no_signed_link_is_stored(rehearsal: Rehearsal) -> None:
    leaks = [where for where, text in rehearsal.texts.items() if SIGNED_LINK.search(text)]
    assert leaks == []
