"""Budgets that push back like Microsoft 365 does, and faults that can be replayed.

A budget is a token bucket keyed like ``sharepoint`` or ``mailbox:ann@contoso``;
its family (the part before the colon) names its limits in the config. A throttled
request still costs its units (facts §3.1: "throttled requests still count against
usage"), so a client that ignores Retry-After digs itself deeper, while one that
waits exactly Retry-After finds enough units on its return.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field

from m365perf.sandbox.config import Budget, Faults


@dataclass
class Verdict:
    """``retry_after`` is None when the request may go ahead."""

    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Bucket:
    budget: Budget
    tokens: float
    stamp: float

    @property
    def rate(self) -> float:
        return self.budget.limit / self.budget.window_s

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.budget.limit, self.tokens + elapsed * self.rate)
        self.stamp = now


def family(budget_key: str) -> str:
    return budget_key.split(":", 1)[0]


class Throttle:
    """All budgets of one sandbox run; in memory, so a restart forgives everyone."""

    def __init__(self, budgets: dict[str, Budget], enabled: bool) -> None:
        self._budgets = budgets
        self.enabled = enabled
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._in_flight: dict[str, int] = {}

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> Verdict:
        budget = self._budgets.get(family(key))
        if not self.enabled or budget is None:
            return Verdict()
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(budget, budget.limit, now)
            bucket.refill(now)
            ok = bucket.tokens >= cost
            bucket.tokens = max(-budget.limit, bucket.tokens - cost)
            headers = self._rate_limit_headers(key, bucket)
            if ok:
                return Verdict(headers=headers)
            wait = max(1, math.ceil((cost - bucket.tokens) / bucket.rate))
            if headers:
                # As SharePoint's documented 429 does (Retry-After 31, RateLimit-Reset 31):
                # on a refusal the reset is when the next request may go, never later.
                headers["RateLimit-Reset"] = str(wait)
            return Verdict(wait, headers)

    @staticmethod
    def _rate_limit_headers(key: str, bucket: _Bucket) -> dict[str, str]:
        """SharePoint's beta RateLimit headers, sent once 80% of the minute is used (facts §3.2).

        On an answer that went through, ``RateLimit-Reset`` is the seconds until the whole
        minute's units are back (draft-03's "until the quota resets"): a warning to slow
        down, not a wait. A 429's own Retry-After is the wait (see ``take``)."""
        limit = bucket.budget.limit
        if family(key) != "sharepoint" or bucket.tokens > 0.2 * limit:
            return {}
        return {
            "RateLimit-Limit": str(int(limit)),
            "RateLimit-Remaining": str(max(0, int(bucket.tokens))),
            "RateLimit-Reset": str(max(1, math.ceil((limit - bucket.tokens) / bucket.rate))),
        }

    def enter(self, key: str) -> Verdict:
        """Count a request in flight; refuse it when the family caps concurrency."""
        budget = self._budgets.get(family(key))
        with self._lock:
            current = self._in_flight.get(key, 0)
            if (
                self.enabled
                and budget is not None
                and budget.concurrency is not None
                and current >= budget.concurrency
            ):
                return Verdict(1)
            self._in_flight[key] = current + 1
            return Verdict()

    def leave(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)


class FaultDice:
    """One seeded draw per request: the same requests in the same order meet the same faults."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(seed)
        self._order_rng = random.Random(seed + 1)
        self._lock = threading.Lock()

    def draw(self, allow_drop: bool = True) -> str | None:
        """``503``, ``429``, ``drop``, ``slow`` or None (drawn in that order of shares
        503, drop, slow, 429, so seeds chosen before 429 existed replay as they did)."""
        if not self.faults.any:
            return None
        with self._lock:
            roll = self._rng.random()
        f = self.faults
        if roll < f.share_503:
            return "503"
        if roll < f.share_503 + f.share_drop:
            return "drop" if allow_drop else None
        if roll < f.share_503 + f.share_drop + f.share_slow:
            return "slow"
        if roll < f.share_503 + f.share_drop + f.share_slow + f.share_429:
            return "429"
        return None

    def shuffle(self, items: list[object]) -> None:
        with self._lock:
            self._order_rng.shuffle(items)
