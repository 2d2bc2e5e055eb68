"""The `[web]` section of `edge.toml`: cookie policy, session lifetime, setup-code copies, power-action backend.

Read by `mount_setup_page`; documented in docs/setup-page.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def _field(default: Any, fix: str, **kwargs: Any) -> Any:
    return Field(default, json_schema_extra={"fix": fix}, **kwargs)


class WebSettings(BaseModel):
    """The on-device setup page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = _field(True, "set it to true or false (false serves only the API)")
    cookie_secure: Literal["auto", "always", "never"] = _field(
        "auto", 'set it to "auto" (Secure whenever the page is reached over HTTPS), "always" or "never"'
    )
    session_idle_minutes: int = _field(720, "set it between 5 and 10080 minutes", ge=5, le=10080)
    session_max_hours: int = _field(168, "set it between 1 and 720 hours", ge=1, le=720)
    setup_code_copies: tuple[Path, ...] = _field(
        (), "list files where a new setup code is also written, e.g. the boot partition's setup-code.txt"
    )
    power: Literal["auto", "systemd", "fake"] = _field(
        "auto", 'set it to "auto" (systemd when run as a service), "systemd" or "fake" (tests and demo)'
    )
    daemon_unit: str = _field("spinal-edge.service", "set it to the daemon's systemd unit name")
