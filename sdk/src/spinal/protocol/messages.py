"""The message bodies: data plane (observation, action chunk, event, telemetry) and control plane
(status, session open / ack / close, reset / ack). Field names match the LeRobot schema version 1.

Bodies evolve additively: decoders ignore unknown keys and give missing keys these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinal.protocol.constants import DEFAULT_JPEG_QUALITY, SCHEMA_VERSION
from spinal.protocol.image import EncodedImage

# ---- data plane -------------------------------------------------------------------------------


@dataclass(slots=True)
class Observation:
    """Client -> server: one observation. Images are RGB arrays or already-encoded (passthrough) images."""

    state: np.ndarray | None = None
    images: dict[str, np.ndarray | EncodedImage] = field(default_factory=dict)
    task: str = ""
    inference_delay_steps: int = 0
    prefix_model: np.ndarray | None = None
    prefix_robot: np.ndarray | None = None
    episode_start: bool = False
    # An encoder setting, never sent: JPEG quality for array images (<= 0 sends raw pixels).
    jpeg_quality: int = DEFAULT_JPEG_QUALITY


@dataclass(slots=True)
class ActionChunk:
    """Server -> client: the chunk answering one observation, both before and after postprocessing."""

    seq_id_echo: int = 0
    client_mono_ns_echo: int = 0
    episode_id_echo: int = 0
    chunk_model: np.ndarray | None = None
    chunk_robot: np.ndarray | None = None
    queue_wait_ms: float = 0.0
    inference_ms: float = 0.0
    superseded_seqs: int = 0
    server_load: float = 0.0
    session_id: str = ""


@dataclass(slots=True)
class Event:
    """Server -> client notice on the action key (header msg_type EVENT), e.g. kind="drain"."""

    kind: str = ""
    detail: str = ""
    session_id: str = ""


@dataclass(slots=True)
class Telemetry:
    """Client -> server/monitors, periodic; doubles as the client's heartbeat while it sends no observations."""

    client_uuid: str = ""
    session_id: str = ""
    state: str = ""
    paused: bool = False
    queue_depth: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    counters: dict[str, float] = field(default_factory=dict)


# ---- control plane ----------------------------------------------------------------------------


@dataclass(slots=True)
class SessionOpen:
    """Client -> server `session` query: who the robot is and what it sends and expects."""

    op: str = "open"
    client_uuid: str = ""
    robot_type: str = ""
    policy_type: str = ""
    fps: float = 0.0
    action_names: list[str] = field(default_factory=list)
    camera_names: list[str] = field(default_factory=list)
    state_dim: int = 0
    schema_version: int = SCHEMA_VERSION
    rtc_enabled: bool = False
    task: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    camera_shapes: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class SessionAck:
    """Server -> client reply to `SessionOpen`: accepted with capabilities, or refused with the reason."""

    accepted: bool = False
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    session_id: str = ""
    model_repo: str = ""
    model_revision: str = ""
    policy_type: str = ""
    action_names: list[str] = field(default_factory=list)
    expected_cameras: list[str] = field(default_factory=list)
    state_dim: int = 0
    chunk_size: int = 0
    trained_fps: float = 0.0
    supports_rtc: bool = False
    rtc_execution_horizon: int = 0
    serving_mode: str = ""
    warmed_up: bool = False
    schema_version: int = SCHEMA_VERSION
    server_load: float = 0.0
    rtc_downgraded: bool = False
    model_fingerprint: str = ""


@dataclass(slots=True)
class SessionClose:
    """Client -> server `session` query: end this session now rather than waiting for GC."""

    op: str = "close"
    client_uuid: str = ""
    session_id: str = ""


@dataclass(slots=True)
class Status:
    """Server -> anyone `status` reply: the served model's capabilities and the current load."""

    model_repo: str = ""
    model_revision: str = ""
    policy_type: str = ""
    action_names: list[str] = field(default_factory=list)
    expected_cameras: list[str] = field(default_factory=list)
    state_dim: int = 0
    chunk_size: int = 0
    trained_fps: float = 0.0
    supports_rtc: bool = False
    rtc_execution_horizon: int = 0
    serving_mode: str = ""
    warmed_up: bool = False
    schema_version: int = SCHEMA_VERSION
    min_schema_version: int = SCHEMA_VERSION
    max_schema_version: int = SCHEMA_VERSION
    active_sessions: int = 0
    max_sessions: int = 0
    server_load: float = 0.0
    default_task: str = ""
    pin_task: bool = False
    model_fingerprint: str = ""
    batchable: bool = False
    draining: bool = False
    camera_shapes: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class Reset:
    """Client -> server `reset` query: an episode boundary; the session's pipelines start clean."""

    client_uuid: str = ""
    episode_id: int = 0


@dataclass(slots=True)
class ResetAck:
    """Server -> client reply to `Reset`."""

    ok: bool = True
    error: str = ""


CONTROL_MESSAGES: tuple[type[Any], ...] = (
    SessionOpen,
    SessionAck,
    SessionClose,
    Status,
    Reset,
    ResetAck,
    Event,
    Telemetry,
)
