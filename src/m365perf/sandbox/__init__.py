"""The local Microsoft 365 emulator: Entra tokens, Graph lists/users/mail/$batch, the Bot
Connector, Power BI refresh - with throttling, faults and an inbox page per user.

No production module imports this package, and it does not import ``m365perf.m365``:
it is the other side of the wire.
"""

from __future__ import annotations

from m365perf.sandbox.config import Budget, Faults, SandboxApp, SandboxConfig

__all__ = ["Budget", "Faults", "SandboxApp", "SandboxConfig", "create_app"]


def __getattr__(name: str) -> object:
    """``create_app`` is imported lazily so that reading the config stays cheap."""
    if name == "create_app":
        from m365perf.sandbox.app import create_app

        return create_app
    raise AttributeError(name)
