"""The inference client's configuration: one pydantic model, validated once where the daemon loads it.

Used by `RemoteEngine` and `LocalEngine`; `InferenceConfig.load()` turns bad fields into one clear error.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from spinal.protocol import DEFAULT_KEY_ROOT, KeyExpressionError, ServiceKeys, sanitize_key_segment

from spinal_edge.inference.errors import InferenceConfigError
from spinal_edge.inference.types import FallbackMode

_ENDPOINT = re.compile(r"^(tcp|udp|tls|quic|ws|unixsock-stream)/\S+$")


class RTCSettings(BaseModel):
    """Real-time chunking: replace-with-delay-trim merges and the prefix shipped with each request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    execution_horizon: int = Field(10, ge=1, le=1000, description="max prefix length in actions")


class BackoffSettings(BaseModel):
    """Reconnect backoff: initial wait, doubling (times `multiplier`) up to `max_s`, +/- `jitter` fraction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(0.5, gt=0, le=60)
    max_s: float = Field(10.0, gt=0, le=600)
    multiplier: float = Field(2.0, ge=1.0, le=10.0)
    jitter: float = Field(0.1, ge=0.0, le=0.5)

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> BackoffSettings:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        return self

    def delay(self, attempt: int, unit_random: float = 0.5) -> float:
        """Seconds to wait before attempt `attempt` (0-based); `unit_random` in [0, 1) spreads a fleet."""
        base = min(self.max_s, self.initial_s * self.multiplier ** max(0, attempt))
        return base * (1.0 + self.jitter * (2.0 * unit_random - 1.0))


class TLSSettings(BaseModel):
    """mTLS to the router: the CA that signed it, this robot's certificate and key (PEM paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root_ca_certificate: Path
    connect_certificate: Path
    connect_private_key: Path


class InferenceConfig(BaseModel):
    """Where the policy is served and how the client behaves when the network misbehaves (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: list[str] = Field(default_factory=lambda: ["tcp/127.0.0.1:7447"], min_length=1)
    mode: Literal["client", "peer"] = "client"  # client: dial a router; peer: dial the server directly
    key_root: str = DEFAULT_KEY_ROOT
    model_id: str
    revision: str = "main"
    task: str = ""  # the instruction sent with each observation
    service: str = ""  # the key segment of the served task; empty: the task, or "default"
    client_uuid: str = Field(default_factory=lambda: uuid.uuid4().hex)
    jpeg_quality: int = Field(90, ge=0, le=100)  # array frames only; 0 sends raw pixels
    handshake_timeout_s: float = Field(2.0, gt=0, le=60)
    request_timeout_s: float = Field(2.0, gt=0, le=120)  # a chunk not back by then: the request failed
    reset_timeout_s: float = Field(1.0, gt=0, le=30)
    buffer_time_s: float = Field(0.5, ge=0, le=60)  # request the next chunk when playback left <= this
    max_action_age_s: float = Field(3.0, gt=0, le=600)  # never execute an action older than this
    degraded_after_s: float = Field(1.0, gt=0, le=600)  # a wanted chunk this late: DEGRADED
    reconnect_after_s: float = Field(4.0, gt=0, le=600)  # offline this long: drop the session, re-handshake
    max_offline_s: float = Field(60.0, gt=0, le=86400)  # offline this long: DEAD
    heartbeat_s: float = Field(1.0, gt=0, le=60)  # telemetry period; keeps a paused session alive
    lease_ms: int = Field(3000, ge=500, le=60000)  # Zenoh link lease: how fast a silent peer is declared gone
    fallback: FallbackMode = FallbackMode.HOLD
    rtc: RTCSettings = Field(default_factory=RTCSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    latency_window: int = Field(30, ge=1, le=10000)
    latency_quantile: float = Field(0.95, gt=0, le=1)
    tls: TLSSettings | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("endpoints")
    @classmethod
    def _endpoints_are_zenoh_locators(cls, value: list[str]) -> list[str]:
        for ep in value:
            if not _ENDPOINT.match(ep):
                raise ValueError(
                    f"endpoint {ep!r} is not a Zenoh locator; write it like 'tcp/192.168.1.10:7447'"
                )
        return value

    @field_validator("client_uuid")
    @classmethod
    def _uuid_is_a_key_chunk(cls, value: str) -> str:
        try:
            return sanitize_key_segment(value)
        except KeyExpressionError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _keys_and_ladder(self) -> InferenceConfig:
        try:
            self.service_keys()
        except KeyExpressionError as exc:
            raise ValueError(f"model_id/revision/service/key_root do not form valid keys: {exc}") from None
        if not self.degraded_after_s <= self.reconnect_after_s <= self.max_offline_s:
            raise ValueError(
                "the fail-safe ladder must satisfy degraded_after_s <= reconnect_after_s <= max_offline_s"
                f" (got {self.degraded_after_s}, {self.reconnect_after_s}, {self.max_offline_s})"
            )
        return self

    def service_keys(self) -> ServiceKeys:
        """The key expressions of the served (model, revision, task)."""
        return ServiceKeys.for_service(
            self.model_id, self.revision, self.service or self.task or "default", root=self.key_root
        )

    @classmethod
    def load(cls, data: Mapping[str, Any], *, source: str = "inference config") -> InferenceConfig:
        """Validate a mapping (from YAML/TOML/JSON); errors name the source, the field and the fix."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise InferenceConfigError(
                f"{source}: field '{where}' is invalid: {first['msg']}{more}; fix it and restart"
            ) from None
