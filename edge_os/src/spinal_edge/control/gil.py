"""Getting the GIL to the control loop on time: switch intervals that favour the loop, and a frozen start-up heap.

The loop is one Python thread among several; `GilHandoff` is driven by the loop around each sleep, and
`freeze_heap` by `spinal_edge.runner` once the daemon is built (see edge_os/docs/realtime.md for the numbers).
"""

from __future__ import annotations

import gc
import sys

# While the loop sleeps: a thread waiting for the GIL asks its holder to hand it over after this long. The loop
# waking at its deadline waits at most about this long for a thread that is running Python code.
WAKE_SWITCH_INTERVAL_S = 100e-6
# While the loop works: CPython's default. Threads woken by the tick's hand-offs (MCU writer, recorder, inference
# worker) wait for the tick to end instead of taking the GIL from the loop after a wake interval.
WORK_SWITCH_INTERVAL_S = 5e-3


class GilHandoff:
    """Sets the interpreter's switch interval short before the loop sleeps and long once it has the GIL again."""

    def __init__(
        self, wake_s: float = WAKE_SWITCH_INTERVAL_S, work_s: float = WORK_SWITCH_INTERVAL_S
    ) -> None:
        if not 0 < wake_s <= work_s:
            raise ValueError(
                f"wake interval {wake_s} s must be positive and at most the work interval {work_s} s"
            )
        self.wake_s = wake_s
        self.work_s = work_s
        self._previous: float | None = None

    def begin(self) -> None:
        """Called once by the loop thread before its first sleep; remembers the interval to restore."""
        self._previous = sys.getswitchinterval()

    def before_sleep(self) -> None:
        sys.setswitchinterval(self.wake_s)

    def after_wake(self) -> None:
        sys.setswitchinterval(self.work_s)

    def end(self) -> None:
        """Restore the interval found at `begin`, unless someone else has changed it since."""
        now = sys.getswitchinterval()  # kept in whole microseconds: compare at that resolution
        if self._previous is not None and any(abs(now - mine) < 1e-6 for mine in (self.wake_s, self.work_s)):
            sys.setswitchinterval(self._previous)
        self._previous = None


def freeze_heap(*, collect: bool) -> int:
    """Move every object alive now out of the garbage collector's reach; returns how many are frozen.

    A full collection of the daemon's start-up heap (modules, FastAPI, pydantic, Zenoh, pyarrow) holds the GIL
    for tens of milliseconds, and hundreds on a loaded Raspberry Pi, stopping the control loop for as long.
    Frozen objects are never traversed again, so later collections only walk what was allocated afterwards.
    `collect=True` first collects what is already garbage (a pause, so only before the loop runs).
    """
    if collect:
        gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
