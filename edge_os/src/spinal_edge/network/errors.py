"""The network area's error tree.

Raised by the validators, the NetworkManager implementations and the access-point fallback.
"""

from __future__ import annotations


class NetworkError(Exception):
    """Base class of every network error; the message is one sentence for a person."""


class InvalidNetworkInput(NetworkError, ValueError):
    """An SSID, Wi-Fi password or hostname a person typed is not acceptable; the message says why."""


class NetworkCommandFailed(NetworkError):
    """NetworkManager refused or failed a request (wrong password, no such network, not running)."""
