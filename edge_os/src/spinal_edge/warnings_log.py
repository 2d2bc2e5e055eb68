"""Recent warnings a person should see (link faults, inference gave up, disk nearly full), with counts per code.

Written by the control loop, the recorder and the daemon; read by the status endpoint and the metrics.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Warning_:
    """One warning: a stable code (for metrics and tests), a sentence for a person, and when it was last seen."""

    code: str
    message: str
    wall_time: float
    repeats: int = 1


class WarningLog:
    """The last `capacity` distinct warnings; the same code again within `merge_s` bumps its repeat count."""

    def __init__(self, capacity: int = 50, merge_s: float = 10.0) -> None:
        self._items: deque[Warning_] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._merge_s = merge_s
        self.counts: Counter[str] = Counter()

    def add(self, code: str, message: str) -> None:
        now = time.time()
        with self._lock:
            self.counts[code] += 1
            last = self._items[-1] if self._items else None
            if last is not None and last.code == code and now - last.wall_time < self._merge_s:
                self._items[-1] = Warning_(code, message, now, last.repeats + 1)
            else:
                self._items.append(Warning_(code, message, now))

    def recent(self, n: int = 20) -> list[Warning_]:
        with self._lock:
            return list(self._items)[-n:][::-1]

    def codes(self) -> set[str]:
        with self._lock:
            return {w.code for w in self._items}
