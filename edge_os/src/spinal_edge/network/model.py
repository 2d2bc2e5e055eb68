"""What the Network page shows and submits: connections, Wi-Fi networks, and the validators for typed values.

Shared by the `NetworkControl` implementations (nmcli, fake) and the page routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spinal_edge.network.errors import InvalidNetworkInput

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HEX_PSK = re.compile(r"^[0-9A-Fa-f]{64}$")


@dataclass(frozen=True, slots=True)
class ActiveConnection:
    """A network link that is up or coming up."""

    name: str
    kind: str  # "wifi", "ethernet", "access-point", ...
    device: str
    state: str
    addresses: tuple[str, ...] = ()
    ssid: str = ""


@dataclass(frozen=True, slots=True)
class WifiNetwork:
    """A Wi-Fi network in range."""

    ssid: str
    signal: int
    security: str
    in_use: bool = False


@dataclass(frozen=True, slots=True)
class NetworkSnapshot:
    """Everything the Network page shows at once."""

    hostname: str
    connections: list[ActiveConnection] = field(default_factory=list)
    access_point: str = ""  # the fallback AP's SSID while it is up


def validate_ssid(ssid: str) -> str:
    """An SSID is 1 to 32 bytes of UTF-8 without control characters."""
    if not isinstance(ssid, str) or not ssid:
        raise InvalidNetworkInput("The network name (SSID) is empty; type the Wi-Fi network's name.")
    if len(ssid.encode("utf-8")) > 32:
        raise InvalidNetworkInput("The network name (SSID) is longer than 32 bytes; check the name.")
    if not ssid.isprintable():
        raise InvalidNetworkInput("The network name (SSID) contains control characters; retype it.")
    return ssid


def validate_wifi_password(password: str | None) -> str | None:
    """None/empty for an open network; otherwise a WPA passphrase (8-63 printable ASCII) or 64 hex digits."""
    if not password:
        return None
    if _HEX_PSK.match(password):
        return password
    if not (8 <= len(password) <= 63):
        raise InvalidNetworkInput("A Wi-Fi password has 8 to 63 characters; check the password.")
    if not all(32 <= ord(c) < 127 for c in password):
        raise InvalidNetworkInput("A Wi-Fi password uses plain ASCII letters, digits and symbols; retype it.")
    return password


def validate_hostname(name: str) -> str:
    """A hostname is one DNS label: 1-63 lower-case letters, digits and inner hyphens."""
    lowered = name.strip().lower() if isinstance(name, str) else ""
    if not _HOST_LABEL.match(lowered):
        raise InvalidNetworkInput(
            "A hostname uses 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen."
        )
    return lowered
