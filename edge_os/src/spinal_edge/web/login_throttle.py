"""Rate limiting of password and setup-code guesses, per client address and across all clients.

Used by the login and setup routes: `check` before verifying, `failed` / `succeeded` after.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from spinal_edge.web.errors import LoginThrottled


@dataclass(slots=True)
class _ClientRecord:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    lockouts: int = 0


class LoginThrottle:
    """After `max_failures` misses within `window_s` a client waits `lockout_s`, doubling up to `max_lockout_s`;
    all clients together get at most `global_max_failures` misses per `window_s`."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 900.0,
        lockout_s: float = 30.0,
        max_lockout_s: float = 900.0,
        global_max_failures: int = 30,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_lockout_s = max_lockout_s
        self.global_max_failures = global_max_failures
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, _ClientRecord] = {}
        self._global: deque[float] = deque()
        self.refused = 0

    def check(self, client: str) -> None:
        """Raise LoginThrottled (with the wait) when `client` may not try now."""
        now = self._clock()
        with self._lock:
            self._expire(self._global, now)
            record = self._clients.get(client)
            wait = record.locked_until - now if record else 0.0
            if len(self._global) >= self.global_max_failures:
                wait = max(wait, self._global[0] + self.window_s - now)
            if wait > 0:
                self.refused += 1
                raise LoginThrottled(
                    f"Too many failed attempts; wait {int(wait) + 1} seconds and try again.",
                    retry_after_s=wait,
                )

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._global.append(now)
            record = self._clients.get(client)
            if record is None:
                if len(self._clients) >= self.max_clients:
                    self._forget_stale(now)
                record = self._clients.setdefault(client, _ClientRecord())
            self._expire(record.failures, now)
            record.failures.append(now)
            if len(record.failures) >= self.max_failures:
                record.locked_until = now + min(self.lockout_s * (2**record.lockouts), self.max_lockout_s)
                record.lockouts += 1
                record.failures.clear()

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _expire(self, stamps: deque[float], now: float) -> None:
        while stamps and now - stamps[0] > self.window_s:
            stamps.popleft()

    def _forget_stale(self, now: float) -> None:
        stale = [
            c
            for c, r in self._clients.items()
            if r.locked_until <= now and (not r.failures or now - r.failures[-1] > self.window_s)
        ]
        for c in stale:
            del self._clients[c]
        while len(self._clients) >= self.max_clients:
            # Still full of fresh records: drop the oldest, the global limit still bounds guessing.
            del self._clients[next(iter(self._clients))]
