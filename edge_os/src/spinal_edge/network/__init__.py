"""The device's network: NetworkManager behind `NetworkControl`, a fake for tests, the access-point fallback.

Used by the setup page's Network page and by the daemon at boot.
"""

from spinal_edge.network.access_point import AccessPointFallback, device_suffix
from spinal_edge.network.captive_portal import CaptivePortal
from spinal_edge.network.errors import InvalidNetworkInput, NetworkCommandFailed, NetworkError
from spinal_edge.network.fake import FakeNetwork
from spinal_edge.network.interface import NetworkControl
from spinal_edge.network.model import ActiveConnection, NetworkSnapshot, WifiNetwork
from spinal_edge.network.nmcli import NmcliNetwork
from spinal_edge.network.settings import AccessPointSettings, NetworkSettings

__all__ = [
    "AccessPointFallback",
    "AccessPointSettings",
    "ActiveConnection",
    "CaptivePortal",
    "FakeNetwork",
    "InvalidNetworkInput",
    "NetworkCommandFailed",
    "NetworkControl",
    "NetworkError",
    "NetworkSettings",
    "NetworkSnapshot",
    "NmcliNetwork",
    "WifiNetwork",
    "device_suffix",
]
