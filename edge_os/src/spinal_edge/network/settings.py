"""The `[network]` section of `edge.toml`: which network backend, and the access-point fallback.

Read by the daemon when it builds the network control and the fallback; documented in docs/setup-page.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinal_edge.network.model import validate_ssid, validate_wifi_password


def _field(default: Any, fix: str, **kwargs: Any) -> Any:
    return Field(default, json_schema_extra={"fix": fix}, **kwargs)


class AccessPointSettings(BaseModel):
    """With no network at boot, open a Wi-Fi access point `<ssid_prefix><XXXX>` whose pages lead to setup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = _field(False, "set it to true (the image does) or false")
    ssid_prefix: str = _field(
        "spinal-", "set it to a short prefix; the device adds 4 characters", max_length=27
    )
    password: str | None = _field(
        None,
        "remove it for an open access point (the page still asks for the setup code), or use 8-63 characters",
    )
    wait_for_network_s: float = _field(60.0, "set it between 5 and 600 seconds", ge=5.0, le=600.0)
    address: str = _field("10.42.0.1", "set it to the device's address on its own access point")
    captive_portal: bool = _field(True, "set it to true or false")

    @field_validator("ssid_prefix")
    @classmethod
    def _prefix_is_ssid(cls, value: str) -> str:
        validate_ssid(value + "XXXX")
        return value

    @field_validator("password")
    @classmethod
    def _password_is_wpa(cls, value: str | None) -> str | None:
        return validate_wifi_password(value)


class NetworkSettings(BaseModel):
    """How the device manages its network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["auto", "nmcli", "fake", "none"] = _field(
        "auto",
        'set it to "auto" (nmcli when run as a service, else fake), "nmcli", "fake" or "none" (not managed)',
    )
    wifi_interface: str = _field(
        "wlan0", "set it to the Wi-Fi interface, e.g. wlan0", pattern=r"^[A-Za-z0-9_.\-]{1,15}$"
    )
    access_point: AccessPointSettings = AccessPointSettings()
