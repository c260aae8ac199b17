"""Click latency and throughput against ``serve`` on PostgreSQL, beside a bare endpoint.

A real ``m365perf serve`` (fresh PostgreSQL schema) against the sandbox opens a monthly
cycle; then signed ``submitReturns`` invokes, built as the Bot Connector builds them and
signed with a token the sandbox mints (``POST /_sandbox/bot-token``), are fired straight
at ``/api/messages`` at 10, 50 and 100 concurrent. Each click returns one indicator of an
owner's card (a real submit: judged, written, its chain started) while any is left; the
rest re-submit a figure already returned (read, refused as stale, the card drawn again).
Side by side, ``bench/bare_bot.py`` serves the same token check with the same stack (FastAPI,
uvicorn, ``BotTokenVerifier``) and nothing else: the throughput ratio is the click's.

SQL statements per click are counted in process (``store.testing.counting_statements``)
on the engine tests' council: a 5-indicator submit, an approval, and the digest clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import ROOT, Figure

DESCRIPTION = "click latency/throughput on serve+PostgreSQL vs a bare token check; SQL per click"

POSTGRES_URL = os.environ.get(
    "M365PERF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
P99_GOAL_MS = 100.0
RATIO_GOAL = 0.5


def run(small: bool) -> list[Figure]:
    for folder in ("tests/integration", "tests/engine"):
        sys.path.insert(0, str(ROOT / folder))
    figures = statement_figures()
    levels = (10,) if small else (10, 50, 100)
    clicks_per_level = 20 if small else 300
    with tempfile.TemporaryDirectory() as folder, _schema() as url:
        figures += latency_figures(Path(folder), url, levels, clicks_per_level)
    return figures


# --------------------------------------------------------------------------- SQL per click


def statement_figures() -> list[Figure]:
    """Statements per click on the engine tests' council (in-memory SQLite): the same
    store code as PostgreSQL, so the same count."""
    from engine_support import ANN, BOB, ROWS, approval_data, make_council, submit_data

    from m365perf.cards.digest import APPROVE_ALL_VERB, APPROVE_VERB
    from m365perf.store.testing import counting_statements

    def rows(n: int) -> list[list[str]]:
        made = []
        for i in range(n):
            row = list(ROWS[i % 2])
            row[0], row[1] = f"CP{i:03d}", f"Indicator {i}"
            made.append(row)
        return made

    def submitted(cards: str) -> tuple[Any, int]:
        council = make_council(rows=rows(5), cards=cards)
        card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
        inputs = {f"value__CP{i:03d}": "47" for i in range(5)}
        inputs |= {f"comment__CP{i:03d}": "Checked at month end." for i in range(5)}
        with counting_statements(council.store) as counted:
            council.act(ANN, "submitReturns", submit_data(card, **inputs))
        return council, counted

    council, submit = submitted("per_item")
    card = next(
        p["card"]
        for p in council.cards_to("bob.ray@contoso.gov.uk")
        if str(p["card_id"]).startswith("approval-")
    )
    with counting_statements(council.store) as counted:
        council.act(BOB, "approve", approval_data(card, "approve"))
    approve = counted

    council, _ = submitted("digest")
    council.tick(minutes=2)
    council.engine.fire_due_timers(worker="bench", now=council.now)
    digest = next(
        p["card"]
        for p in council.cards_to("bob.ray@contoso.gov.uk")
        if str(p["card_id"]).startswith("digest-")
    )
    one = _digest_action(digest, APPROVE_VERB)
    with counting_statements(council.store) as counted:
        council.act(BOB, APPROVE_VERB, one["data"])
    digest_one = counted
    every = _digest_action(digest, APPROVE_ALL_VERB)
    with counting_statements(council.store) as counted:
        council.act(BOB, APPROVE_ALL_VERB, every["data"])
    digest_all = counted

    def figure(name: str, counted: Any, note: str = "") -> Figure:
        split = f"{counted.reads} reads, {counted.writes} writes, {counted.transactions} tx"
        return Figure(name, counted.count, "statements", goal=10, note=f"{split}{note}")

    return [
        figure("SQL statements, 5-indicator submit click", submit),
        figure("SQL statements, approval click", approve),
        figure("SQL statements, digest approve-one click", digest_one),
        figure(
            "SQL statements, digest approve-all (4 items)",
            digest_all,
            "; one of the 5 approved by the click before",
        ),
    ]


def _digest_action(card: Any, verb: str) -> dict[str, Any]:
    from m365perf.sandbox.act import find_actions

    return next(a for a in find_actions(card) if a.get("verb") == verb)


# --------------------------------------------------------------------------- latency


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for serve, dropped afterwards."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    schema = f"bench_click_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    base = make_url(POSTGRES_URL)
    options = " ".join(filter(None, [base.query.get("options"), f"-csearch_path={schema}"]))
    try:
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def latency_figures(folder: Path, url: str, levels: tuple[int, ...], clicks: int) -> list[Figure]:
    import requests
    from integration_support import (
        People,
        Serve,
        cycle_open,
        free_port,
        sandbox_health,
        serve_environment,
        serve_flow_file,
        wait_for,
    )

    from m365perf.domain.kinds import Frequency
    from m365perf.domain.periods import Period
    from m365perf.engine.context import LONDON
    from m365perf.sandbox.testing import running_sandbox

    port, bare_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{port}/api/messages"
    with running_sandbox(folder, bot_endpoint=endpoint, throttle=False) as sandbox:
        health = sandbox_health(sandbox)
        flow = serve_flow_file(folder / "flows", health)
        env = serve_environment(health, folder / "unused.db", port)
        env["M365PERF_DATABASE_URL"] = url
        env["PYTHONPATH"] = str(ROOT / "src")
        serve = Serve(folder, env, port, flow.parent)
        people = People(sandbox, endpoint)
        period = Period.containing(Frequency.MONTHLY, datetime.now(LONDON).date())
        token = requests.post(
            f"{sandbox.base_url}/_sandbox/bot-token",
            json={"service_url": health["settings"]["bot_connector_base_url"]},
            timeout=10,
        ).json()["token"]
        with serve.running(tick_s=0.5):
            opened = cycle_open(flow, period, env, folder)
            serve.wait_until_sent()
            owners = sorted({r["owner"] for r in _owner_rows(people, opened)})
            jobs = _submit_clicks(people, owners, health)
            bare_log = (folder / "bare.log").open("wb")
            bare = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "bare_bot.py"), str(bare_port)],
                env=env,
                stdout=bare_log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for("the bare endpoint to start", lambda: _up(bare_port), timeout_s=30)
                results = _measure(jobs, token, port, bare_port, levels, clicks)
            finally:
                bare.terminate()
                bare.wait(timeout=15)
                bare_log.close()
    figures = []
    for level, (serve_run, bare_run) in results.items():
        note = f"{serve_run['clicks']} clicks, {serve_run['writes']} of them submits"
        if serve_run["dropped"] or bare_run["dropped"]:
            note += f"; connections dropped {serve_run['dropped']}/{bare_run['dropped']}"
        figures += [
            Figure(f"click p50, {level} concurrent", serve_run["p50"], "ms", note=note),
            Figure(
                f"click p99, {level} concurrent",
                serve_run["p99"],
                "ms",
                goal=P99_GOAL_MS if level == 50 else None,
            ),
            Figure(f"clicks/s, {level} concurrent", serve_run["rate"], "clicks/s", better="higher"),
            Figure(
                f"bare token check/s, {level} concurrent",
                bare_run["rate"],
                "requests/s",
                better="higher",
                note=f"p99 {bare_run['p99']:.0f} ms",
            ),
            Figure(
                f"click throughput / bare, {level} concurrent",
                serve_run["rate"] / bare_run["rate"] if bare_run["rate"] else 0.0,
                "ratio",
                goal=RATIO_GOAL,
                better="higher",
            ),
        ]
    return figures


def _up(port: int) -> bool:
    import requests

    with contextlib.suppress(requests.RequestException):
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
    return False


def _owner_rows(people: Any, opened: dict[str, Any]) -> list[dict[str, str]]:
    """Every owner the cycle sent a request card to (from the sandbox's directory)."""
    found = []
    for upn in people.everyone():
        with contextlib.suppress(AssertionError):
            people.request_card(upn)
            found.append({"owner": upn})
    assert found, f"no owner got a request card: {opened}"
    return found


def _submit_clicks(people: Any, owners: list[str], health: dict[str, Any]) -> list[dict[str, Any]]:
    """One invoke per (owner, indicator on their card), each returning that one figure."""
    jobs = []
    for upn in owners:
        card = people.request_card(upn)
        user = people.user(upn)
        data = card.data("submitReturns")
        for key in data["versions"]:
            inputs = {f"value__{key}": "42", f"comment__{key}": "Taken from the case system."}
            jobs.append(_invoke(user, card.where, {**data, **inputs}, health))
    return jobs


def _invoke(
    user: dict[str, Any], where: dict[str, str], data: dict[str, Any], health: dict[str, Any]
) -> dict[str, Any]:
    """The ``adaptiveCard/action`` invoke the Bot Connector posts (as ``sandbox/act.py``)."""
    settings = health["settings"]
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": f"f:{uuid.uuid4()}",
        "serviceUrl": settings["bot_connector_base_url"],
        "channelId": "msteams",
        "from": {
            "id": user.get("teams_id") or user.get("teamsId") or user["id"],
            "name": user.get("displayName") or user.get("display_name") or user["upn"],
            "aadObjectId": user["id"],
        },
        "conversation": {
            "conversationType": "personal",
            "tenantId": settings["tenant_id"],
            "id": where["conversation_id"],
        },
        "recipient": {"id": f"28:{settings['bot_app_id']}", "name": "m365perf"},
        "channelData": {"tenant": {"id": settings["tenant_id"]}},
        "replyToId": where["activity_id"],
        "value": {
            "action": {"type": "Action.Execute", "verb": "submitReturns", "data": data},
            "trigger": "manual",
        },
        "locale": "en-GB",
    }


def _measure(
    jobs: list[dict[str, Any]],
    token: str,
    port: int,
    bare_port: int,
    levels: tuple[int, ...],
    clicks: int,
) -> dict[int, tuple[dict[str, float], dict[str, float]]]:
    """Per level: serve's and the bare endpoint's latency and rate. Fresh submits are
    spread over the levels; once spent, a click re-submits (refused as stale)."""
    fresh = list(jobs)
    results = {}
    for level in levels:
        share = fresh[: max(1, len(jobs) // len(levels))]
        del fresh[: len(share)]
        batch = [share[i] if i < len(share) else jobs[i % len(jobs)] for i in range(clicks)]
        served = asyncio.run(_fire(batch, token, port, level))
        served["writes"] = len(share)
        bare = asyncio.run(_fire(batch, token, bare_port, level))
        results[level] = (served, bare)
    return results


async def _fire(batch: list[dict[str, Any]], token: str, port: int, level: int) -> dict[str, float]:
    import httpx

    url = f"http://127.0.0.1:{port}/api/messages"
    headers = {"Authorization": f"Bearer {token}"}
    queue = list(reversed(batch))
    latencies: list[float] = []
    failures = dropped = 0
    limits = httpx.Limits(max_connections=level, max_keepalive_connections=level)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def worker() -> None:
            nonlocal failures, dropped
            while queue:
                activity = queue.pop()
                started = time.perf_counter()
                for _ in range(3):  # a connection the server closed is tried again, counted
                    try:
                        answer = await client.post(url, json=activity, headers=headers)
                        break
                    except httpx.TransportError:
                        dropped += 1
                else:
                    raise AssertionError(f"port {port} dropped one click three times")
                latencies.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    failures += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(level)))
        took = time.perf_counter() - began
    if failures:
        raise AssertionError(f"{failures} of {len(batch)} clicks on port {port} failed")
    ordered = sorted(latencies)
    return {
        "clicks": len(batch),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "rate": len(batch) / took,
        "dropped": dropped,
    }
