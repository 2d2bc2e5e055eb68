"""The request-latency estimate that sets the RTC inference delay: a high percentile over a recent window.

Used by the engine worker; unlike a running maximum it decays once a spike leaves the window.
"""

from __future__ import annotations

import math
import threading
from collections import deque


class LatencyTracker:
    """Full cycle times (send -> chunk merged, seconds) of the last `window` requests.

    `estimate()` is the `quantile` (nearest rank) of the window: one slow request raises it at once, and it
    falls back after `window` faster requests. Negative or non-finite samples are ignored.
    """

    def __init__(self, window: int = 30, quantile: float = 0.95) -> None:
        if window < 1:
            raise ValueError(f"latency window must hold at least one sample, got {window}")
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"latency quantile must be in (0, 1], got {quantile}")
        self._samples: deque[float] = deque(maxlen=window)
        self._quantile = quantile
        self._lock = threading.Lock()

    def add(self, seconds: float) -> bool:
        """Record one cycle time; returns False (and records nothing) for a negative or non-finite value."""
        if not math.isfinite(seconds) or seconds < 0:
            return False
        with self._lock:
            self._samples.append(float(seconds))
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0..1, nearest rank) of the window, or None with no samples."""
        with self._lock:
            if not self._samples:
                return None
            data = sorted(self._samples)
        rank = max(1, math.ceil(q * len(data)))
        return data[rank - 1]

    def estimate(self) -> float | None:
        """The latency to plan for: the configured high percentile of the window."""
        return self.percentile(self._quantile)

    def delay_steps(self, dt: float, cap: int | None = None) -> int:
        """ceil(estimate / dt): control steps that will pass before a chunk requested now arrives."""
        est = self.estimate()
        if est is None:
            return 0
        steps = steps_for(est, dt)
        return steps if cap is None else min(steps, cap)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()


def steps_for(seconds: float, dt: float) -> int:
    """Control steps covering `seconds`, rounded up (a tolerance keeps 0.1/0.033.. from becoming 4)."""
    return max(0, math.ceil(seconds / dt - 1e-9))
