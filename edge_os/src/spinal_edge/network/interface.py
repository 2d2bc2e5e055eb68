"""`NetworkControl`: what the device asks of its network stack, so the page and the fallback run on a fake too.

Implemented by `NmcliNetwork` (NetworkManager's command line) and `FakeNetwork` (tests, demo).
"""

from __future__ import annotations

from typing import Protocol

from spinal_edge.network.model import ActiveConnection, WifiNetwork


class NetworkControl(Protocol):
    """The network operations of the Network page and the access-point fallback."""

    def connections(self) -> list[ActiveConnection]:
        """The links that are up (Wi-Fi, Ethernet, the fallback access point)."""
        ...

    def wifi_networks(self, *, rescan: bool = False) -> list[WifiNetwork]:
        """Wi-Fi networks in range, strongest first."""
        ...

    def join_wifi(self, ssid: str, password: str | None, *, hidden: bool = False) -> ActiveConnection:
        """Save and activate a Wi-Fi network; raises NetworkCommandFailed with the reason."""
        ...

    def hostname(self) -> str: ...

    def set_hostname(self, name: str) -> None: ...

    def is_online(self) -> bool:
        """True when a link other than the fallback access point is connected."""
        ...

    def start_access_point(self, ssid: str, password: str | None) -> None: ...

    def stop_access_point(self) -> None: ...

    def access_point_active(self) -> bool: ...
