"""What the CLI tests share: an owner submitting their first card, as a click would."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from m365perf.engine import Caller, Engine
from m365perf.flows import load_flow
from m365perf.store import create_store

ROOT = Path(__file__).resolve().parents[2]
FLOW_ID = "monthly-corporate-kpis"


def submit_first_card(database_url: str) -> tuple[dict[str, Any], str]:
    """The first owner asked submits every figure on their card: who they are, and the
    first indicator id they returned."""
    store = create_store(database_url)
    try:
        engine = Engine(store, [load_flow(ROOT / "flows" / f"{FLOW_ID}.yaml")])
        with store.transaction() as tx:
            message = tx.list_outbox(kind="send_card")[0]
        card, user = message.payload["card"], message.payload["user"]
        action = next(a for a in card["actions"] if a.get("verb") == "submitReturns")
        data = dict(action["data"])
        for key in data["versions"]:
            data |= {f"value__{key}": "1", f"comment__{key}": "Checked.", f"confirm__{key}": "true"}
        engine.handle_action(
            Caller(user["id"], user["name"]), "submitReturns", data, now=datetime.now(UTC)
        )
        return user, str(next(iter(data["versions"])))
    finally:
        store.close()
