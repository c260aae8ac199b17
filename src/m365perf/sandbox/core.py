"""The one object every sandbox route reaches for: config, store, keys, budgets, dice."""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import Request

from m365perf.sandbox.config import SandboxConfig
from m365perf.sandbox.keys import SigningKey
from m365perf.sandbox.store import Store
from m365perf.sandbox.throttle import FaultDice, Throttle


@dataclass
class Sandbox:
    config: SandboxConfig
    store: Store
    entra_key: SigningKey
    bot_key: SigningKey
    throttle: Throttle
    dice: FaultDice

    @classmethod
    def open(cls, config: SandboxConfig) -> Sandbox:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        keys = config.data_dir / "keys"
        return cls(
            config=config,
            store=Store(config.data_dir / "sandbox.sqlite3"),
            entra_key=SigningKey.load_or_create(keys, "entra"),
            bot_key=SigningKey.load_or_create(keys, "botframework"),
            throttle=Throttle(config.budgets, config.throttle),
            dice=FaultDice(config.faults, config.rng_seed),
        )

    def now(self) -> float:
        """Wall-clock time plus the offset ``/_sandbox/clock`` added (for Power BI timings)."""
        return time.time() + float(self.store.get_meta("clock_offset_s") or 0.0)

    def advance_clock(self, seconds: float) -> float:
        offset = float(self.store.get_meta("clock_offset_s") or 0.0) + seconds
        self.store.set_meta("clock_offset_s", repr(offset))
        return offset


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox
