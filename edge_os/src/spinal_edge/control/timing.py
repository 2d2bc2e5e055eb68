"""Control-loop timing: the drift-free deadline clock and the period/jitter statistics of recent ticks.

The loop thread writes one sample per tick into preallocated rings; readers compute percentiles on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


class Deadlines:
    """Tick k is due at start + k * period; a tick more than a period late skips ahead (counted as overrun)."""

    def __init__(self, period_ns: int, start_ns: int) -> None:
        self.period_ns = period_ns
        self._start_ns = start_ns
        self._k = 0
        self.overruns = 0

    @property
    def next_ns(self) -> int:
        return self._start_ns + self._k * self.period_ns

    def advance(self, now_ns: int) -> int:
        """Move to the next deadline after the tick that just ran; returns it."""
        self._k += 1
        due = self.next_ns
        if now_ns - due >= self.period_ns:
            # Whole periods were missed: re-anchor on the period grid instead of running a burst of late ticks.
            missed = (now_ns - due) // self.period_ns
            self._k += int(missed)
            self.overruns += int(missed)
        return self.next_ns

    def retime(self, period_ns: int, now_ns: int) -> None:
        """Change the rate; the next tick is one new period from now."""
        self.period_ns = period_ns
        self._start_ns = now_ns + period_ns
        self._k = 0


def sleep_until(deadline_ns: int, clock=time.monotonic_ns) -> None:  # type: ignore[no-untyped-def]
    """Sleep to `deadline_ns` on the monotonic clock (absolute, so no drift accumulates)."""
    remaining = deadline_ns - clock()
    if remaining > 0:
        time.sleep(remaining / 1e9)


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float
    p99: float
    max: float


class TickStats:
    """Rings of the last `window` tick periods, wake-up lateness and tick work time (microseconds)."""

    def __init__(self, window: int = 3000) -> None:
        self._window = window
        self._period = np.zeros(window, dtype=np.float64)
        self._late = np.zeros(window, dtype=np.float64)
        self._work = np.zeros(window, dtype=np.float64)
        self._n = 0
        self._lock = threading.Lock()
        self.ticks = 0

    def add(self, period_us: float, late_us: float, work_us: float) -> None:
        """One tick (called by the loop thread only; lock-free for the writer, the count is published last)."""
        i = self._n % self._window
        self._period[i] = period_us
        self._late[i] = late_us
        self._work[i] = work_us
        self._n += 1
        self.ticks += 1

    def reset(self) -> None:
        self._n = 0

    def _recent(self, ring: np.ndarray) -> np.ndarray:
        n = min(self._n, self._window)
        return ring[:n].copy()

    def periods_us(self) -> np.ndarray:
        return self._recent(self._period)

    def summary(self, nominal_period_us: float) -> dict[str, Percentiles | None]:
        """Period, jitter (|period - nominal|), wake-up lateness and work time over the window."""
        periods = self._recent(self._period)
        late = self._recent(self._late)
        work = self._recent(self._work)
        return {
            "period_us": _pct(periods),
            "jitter_us": _pct(np.abs(periods - nominal_period_us)) if periods.size else None,
            "late_us": _pct(late),
            "work_us": _pct(work),
        }


def _pct(values: np.ndarray) -> Percentiles | None:
    if values.size == 0:
        return None
    p50, p99 = np.percentile(values, [50, 99])
    return Percentiles(p50=round(float(p50), 1), p99=round(float(p99), 1), max=round(float(values.max()), 1))
