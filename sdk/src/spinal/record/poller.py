"""`StatusPoller`: reads the device's status on its own thread, so a slow or vanished device never freezes
the session loop or the keys; backs off while the device does not answer.

Owned by `RecordSession`; the loop reads `latest`, `lost_for()` and `wait_fresh()`.
"""

from __future__ import annotations

import threading
import time

from spinal.device import DeviceAuthError, DeviceError
from spinal.record.control import DeviceControl
from spinal.record.snapshot import DeviceSnapshot

BACKOFF_S = (0.5, 1.0, 2.0, 3.0, 5.0)


class StatusPoller:
    """Polls `GET /api/status` every `interval_s` while the device answers, with backoff while it does not."""

    def __init__(self, control: DeviceControl, *, interval_s: float = 0.5) -> None:
        self.control = control
        self.interval_s = interval_s
        self.latest: DeviceSnapshot | None = None
        self.failing_since: float | None = None
        self.failures = 0
        self.last_error = ""
        self.auth_error: DeviceAuthError | None = None
        self.next_try_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._fresh = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> StatusPoller:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spinal-record-status", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.control.status_timeout_s + 2)
            self._thread = None

    def poke(self) -> None:
        """Poll now (e.g. right after a control call), instead of at the next interval or backoff step."""
        self._wake.set()

    def lost_for(self, now: float | None = None) -> float:
        """Seconds the device has not answered (0 while it answers)."""
        if self.failing_since is None:
            return 0.0
        return max(0.0, (now if now is not None else time.monotonic()) - self.failing_since)

    def wait_fresh(self, after: float, timeout_s: float) -> DeviceSnapshot | None:
        """The first snapshot requested at or after `after` (monotonic), or None within `timeout_s`."""
        self.poke()
        deadline = time.monotonic() + timeout_s
        with self._fresh:
            while True:
                snap = self.latest
                if snap is not None and snap.taken_at >= after:
                    return snap
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._fresh.wait(min(left, 0.1))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                snap = self.control.status()
            except DeviceAuthError as exc:
                self.auth_error = exc
                self._failed(str(exc))
            except DeviceError as exc:
                self._failed(str(exc))
            else:
                with self._fresh:
                    self.latest = snap
                    self.failing_since = None
                    self.failures = 0
                    self.last_error = ""
                    self.next_try_at = None
                    self._fresh.notify_all()
            delay = (
                self.interval_s if self.failures == 0 else BACKOFF_S[min(self.failures, len(BACKOFF_S)) - 1]
            )
            if self.failures:
                self.next_try_at = time.monotonic() + delay
            self._wake.wait(delay)
            self._wake.clear()

    def _failed(self, message: str) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.failures += 1
        self.last_error = message
