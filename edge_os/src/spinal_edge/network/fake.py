"""`FakeNetwork`: an in-memory network stack with the same behaviour rules as NetworkManager, for tests and demos.

Networks "in range" are set by the test; joining checks the password the test configured.
"""

from __future__ import annotations

import threading

from spinal_edge.network.errors import NetworkCommandFailed
from spinal_edge.network.model import (
    ActiveConnection,
    WifiNetwork,
    validate_hostname,
    validate_ssid,
    validate_wifi_password,
)


class FakeNetwork:
    """A device with a Wi-Fi radio (one role at a time: client or access point) and maybe an Ethernet link."""

    def __init__(
        self,
        *,
        hostname: str = "spinal",
        in_range: dict[str, str | None] | None = None,
        ethernet: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._hostname = hostname
        # ssid -> password (None = open network)
        self.in_range: dict[str, str | None] = dict(in_range or {})
        self.ethernet = ethernet
        self.wifi: str | None = None
        self.ap: str | None = None
        self.ap_password: str | None = None
        self.calls: list[str] = []

    def connections(self) -> list[ActiveConnection]:
        with self._lock:
            out = []
            if self.ethernet:
                out.append(
                    ActiveConnection(
                        "Wired connection 1", "ethernet", "eth0", "activated", ("192.168.1.50/24",)
                    )
                )
            if self.wifi:
                out.append(
                    ActiveConnection(
                        f"spinal-wifi-{self.wifi}",
                        "wifi",
                        "wlan0",
                        "activated",
                        ("192.168.1.51/24",),
                        self.wifi,
                    )
                )
            if self.ap:
                out.append(
                    ActiveConnection(
                        "spinal-ap", "access-point", "wlan0", "activated", ("10.42.0.1/24",), self.ap
                    )
                )
            return out

    def wifi_networks(self, *, rescan: bool = False) -> list[WifiNetwork]:
        self.calls.append(f"scan rescan={rescan}")
        with self._lock:
            return [
                WifiNetwork(ssid, 80 - 7 * i, "WPA2" if pw else "", ssid == self.wifi)
                for i, (ssid, pw) in enumerate(self.in_range.items())
            ]

    def join_wifi(self, ssid: str, password: str | None, *, hidden: bool = False) -> ActiveConnection:
        validate_ssid(ssid)
        password = validate_wifi_password(password)
        self.calls.append(f"join {ssid}")
        with self._lock:
            if ssid not in self.in_range:
                raise NetworkCommandFailed(f"No Wi-Fi network named {ssid!r} is in range; check the name.")
            if self.in_range[ssid] != password:
                raise NetworkCommandFailed(f"The password for {ssid!r} was refused; check it and try again.")
            self.ap = None  # one radio: joining a network ends the access point
            self.wifi = ssid
        return self.connections()[-1]

    def hostname(self) -> str:
        return self._hostname

    def set_hostname(self, name: str) -> None:
        self._hostname = validate_hostname(name)
        self.calls.append(f"hostname {self._hostname}")

    def is_online(self) -> bool:
        with self._lock:
            return self.ethernet or self.wifi is not None

    def start_access_point(self, ssid: str, password: str | None) -> None:
        validate_ssid(ssid)
        with self._lock:
            self.wifi = None
            self.ap, self.ap_password = ssid, validate_wifi_password(password)
        self.calls.append(f"ap up {ssid}")

    def stop_access_point(self) -> None:
        with self._lock:
            self.ap = None
        self.calls.append("ap down")

    def access_point_active(self) -> bool:
        with self._lock:
            return self.ap is not None
