"""The monotonic clock the inference client reads, injectable so the fail-safe logic is testable.

Production uses `MonotonicClock`; tests pass a `ManualClock` and advance it by hand.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on a monotonic clock; only differences mean anything (never crosses machines)."""

    def now(self) -> float: ...


class MonotonicClock:
    """`time.monotonic()`."""

    def now(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; thread-safe, for deterministic tests and simulations."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds
            return self._now
