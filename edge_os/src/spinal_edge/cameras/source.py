"""The camera base: a capture thread that fills a FrameSlot, reopens a lost device, and keeps counters.

Subclassed by the UVC, picamera2 and synthetic cameras; created through `spinal_edge.cameras.open_camera`.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from spinal_edge.cameras.frames import CameraFrame, FrameSlot
from spinal_edge.settings import CameraSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CameraStats:
    """What the status page and metrics show for one camera."""

    name: str
    kind: str
    running: bool
    fps: float
    frames: int
    dropped: int
    errors: int
    reopens: int
    width: int
    height: int
    age_ms: float | None
    last_error: str


class CameraSource(ABC):
    """A camera that delivers JPEG frames from its own thread into `slot`."""

    kind = "camera"
    _REOPEN_MIN_S = 0.5
    _REOPEN_MAX_S = 5.0

    def __init__(self, name: str, settings: CameraSettings) -> None:
        self.name = name
        self.settings = settings
        self.slot = FrameSlot()
        self.errors = 0
        self.reopens = 0
        self.last_error = ""
        self._index = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._size = (0, 0)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def stats(self) -> CameraStats:
        now = time.monotonic_ns()
        latest = self.slot.peek()
        return CameraStats(
            name=self.name,
            kind=self.kind,
            running=self.running,
            fps=round(self.slot.fps(now), 2),
            frames=self.slot.frames,
            dropped=self.slot.dropped,
            errors=self.errors,
            reopens=self.reopens,
            width=self._size[0],
            height=self._size[1],
            age_ms=None if latest is None else round((now - latest.t_mono_ns) / 1e6, 1),
            last_error=self.last_error,
        )

    def publish(self, jpeg: bytes, width: int, height: int, t_mono_ns: int | None = None) -> CameraFrame:
        """Stamp and deliver one JPEG frame (called from the capture thread)."""
        frame = CameraFrame(
            camera=self.name,
            index=self._index,
            t_mono_ns=time.monotonic_ns() if t_mono_ns is None else t_mono_ns,
            jpeg=jpeg,
            width=width,
            height=height,
        )
        self._index += 1
        self._size = (width, height)
        self.slot.put(frame)
        return frame

    def note_error(self, message: str) -> None:
        self.errors += 1
        if message != self.last_error:
            log.warning("camera problem", extra={"camera": self.name, "error": message})
        self.last_error = message

    def _run(self) -> None:
        backoff = self._REOPEN_MIN_S
        first = True
        while not self._stop.is_set():
            if not first:
                self.reopens += 1
            first = False
            try:
                for jpeg, width, height, t_ns in self._frames():
                    self.publish(jpeg, width, height, t_ns)
                    backoff = self._REOPEN_MIN_S
                    if self._stop.is_set():
                        break
            except Exception as exc:
                if not self._stop.is_set():
                    self.note_error(f"{type(exc).__name__}: {exc}")
            finally:
                try:
                    self._close()
                except Exception as exc:
                    self.note_error(f"closing the camera failed: {exc}")
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._REOPEN_MAX_S)

    @abstractmethod
    def _frames(self) -> Iterator[tuple[bytes, int, int, int | None]]:
        """Open the device and yield (jpeg, width, height, t_mono_ns or None) until it ends or fails."""

    def _close(self) -> None:  # noqa: B027 - most sources have nothing to release
        """Release the device (called after `_frames` ends, from the capture thread)."""
