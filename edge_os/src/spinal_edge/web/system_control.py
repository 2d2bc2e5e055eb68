"""Power actions of the System page behind one interface: restart the daemon and reboot the device.

`SystemdControl` asks systemd over its command line (the image grants the daemon's user these two actions through
polkit); `FakeSystemControl` records the requests for tests and the demo.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class SystemControl(Protocol):
    """What the System page may ask of the operating system."""

    def restart_daemon(self) -> None: ...

    def reboot(self) -> None: ...


class SystemdControl:
    """Power actions through `systemctl` (argument lists only); delayed slightly so the page gets its answer."""

    def __init__(
        self, unit: str = "spinal-edge.service", *, delay_s: float = 1.0, systemctl: str = "systemctl"
    ):
        self.unit = unit
        self.delay_s = delay_s
        self.systemctl = systemctl

    def restart_daemon(self) -> None:
        self._later([self.systemctl, "--no-block", "restart", self.unit])

    def reboot(self) -> None:
        self._later([self.systemctl, "--no-block", "reboot"])

    def _later(self, argv: list[str]) -> None:
        def run() -> None:
            try:
                subprocess.run(argv, check=True, capture_output=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                # Nothing to answer any more; the journal carries it.
                log.error("power action failed", extra={"argv": argv, "error": str(exc)})

        timer = threading.Timer(self.delay_s, run)
        timer.daemon = True
        timer.start()


class FakeSystemControl:
    """Records requested power actions instead of performing them."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.requested = threading.Event()

    def restart_daemon(self) -> None:
        self.requests.append("restart_daemon")
        self.requested.set()

    def reboot(self) -> None:
        self.requests.append("reboot")
        self.requested.set()
