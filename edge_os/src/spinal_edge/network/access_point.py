"""The access-point fallback: with no network after boot, open `spinal-XXXX` so a phone can reach the setup page.

Run by the daemon in a background thread at start-up; the Network page uses `switch_to_wifi` so that a failed join
brings the access point back instead of stranding the device off-line.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from spinal_edge.network.errors import NetworkError
from spinal_edge.network.interface import NetworkControl
from spinal_edge.network.model import ActiveConnection
from spinal_edge.network.settings import AccessPointSettings

log = logging.getLogger(__name__)
_POLL_S = 2.0


def device_suffix(machine_id: Path = Path("/etc/machine-id")) -> str:
    """Four characters that tell devices apart: from the machine id (first boot makes it), else the hostname."""
    try:
        seed = machine_id.read_text().strip()
    except OSError:
        seed = ""
    seed = seed or socket.gethostname()
    return hashlib.sha256(seed.encode()).hexdigest()[:4].upper()


class AccessPointFallback:
    """Watches for a network at boot and runs the fallback access point."""

    def __init__(
        self,
        network: NetworkControl,
        settings: AccessPointSettings,
        suffix: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.network = network
        self.settings = settings
        self.ssid = settings.ssid_prefix + suffix
        self._clock = clock
        self._lock = threading.Lock()
        self.last_error = ""

    def check_at_boot(self, stop: threading.Event) -> bool:
        """Wait up to `wait_for_network_s` for a network; open the access point when none came. True if opened."""
        if not self.settings.enabled:
            return False
        deadline = self._clock() + self.settings.wait_for_network_s
        while not stop.is_set():
            if self._online():
                return False
            if self._clock() >= deadline:
                break
            stop.wait(_POLL_S)
        if stop.is_set():
            return False
        return self.open()

    def open(self) -> bool:
        """Start the access point now; False (and `last_error`) when NetworkManager refused."""
        with self._lock:
            try:
                self.network.start_access_point(self.ssid, self.settings.password)
            except NetworkError as exc:
                self.last_error = str(exc)
                log.error("access point could not start", extra={"error": str(exc)})
                return False
            log.warning("no network: access point up", extra={"ssid": self.ssid})
            return True

    def active(self) -> bool:
        try:
            return self.network.access_point_active()
        except NetworkError:
            return False

    def switch_to_wifi(
        self, ssid: str, password: str | None, *, hidden: bool = False
    ) -> ActiveConnection | None:
        """Leave the access point and join `ssid`; if that fails while off-line, reopen the access point.
        Returns the connection, or None with `last_error` set."""
        with self._lock:
            was_ap = self.active()
            if was_ap:
                self.network.stop_access_point()
            try:
                conn = self.network.join_wifi(ssid, password, hidden=hidden)
                self.last_error = ""
                return conn
            except NetworkError as exc:
                self.last_error = str(exc)
                log.error("joining Wi-Fi failed", extra={"ssid": ssid, "error": str(exc)})
        if self.settings.enabled and (was_ap or not self._online()):
            self.open()
        return None

    def _online(self) -> bool:
        try:
            return self.network.is_online()
        except NetworkError:
            return False
