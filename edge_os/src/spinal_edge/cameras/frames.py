"""Camera frames and the latest-frame slot a camera thread fills and the control loop reads.

Used by every camera source, the control loop (observations, recording) and the API (snapshots).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """One JPEG frame as the camera delivered it, stamped on the monotonic clock when it arrived."""

    camera: str
    index: int
    t_mono_ns: int
    jpeg: bytes
    width: int
    height: int


class FrameSlot:
    """Latest-only: a new frame replaces the previous one; a replaced frame the reader never saw is a drop."""

    _FPS_WINDOW = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: CameraFrame | None = None
        self._read_index = -1
        self._times: deque[int] = deque(maxlen=self._FPS_WINDOW)
        self.frames = 0
        self.dropped = 0

    def put(self, frame: CameraFrame) -> None:
        with self._lock:
            previous = self._frame
            if previous is not None and previous.index > self._read_index:
                self.dropped += 1
            self._frame = frame
            self._times.append(frame.t_mono_ns)
            self.frames += 1

    def read(self) -> CameraFrame | None:
        """The latest frame (possibly one already read); marks it seen so it is not counted as dropped."""
        with self._lock:
            frame = self._frame
            if frame is not None:
                self._read_index = frame.index
            return frame

    def peek(self) -> CameraFrame | None:
        """The latest frame without marking it seen (snapshots, synthetic views)."""
        return self._frame

    def fps(self, now_ns: int) -> float:
        """Frames per second over the recent window; 0 when the newest frame is older than two seconds."""
        with self._lock:
            times = list(self._times)
        if len(times) < 2 or now_ns - times[-1] > 2_000_000_000:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) * 1e9 / span if span > 0 else 0.0
