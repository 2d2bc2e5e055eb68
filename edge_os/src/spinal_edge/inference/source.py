"""The seam between the engine's worker and whatever answers observations with chunks.

`ZenohChunkSource` (a remote server) and `LocalChunkSource` (in-process model) implement `ChunkSource`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from spinal.protocol import Observation, Telemetry

from spinal_edge.inference.errors import InferenceError
from spinal_edge.inference.types import RobotSpec


class RequestCancelled(InferenceError):
    """The engine withdrew the request (reset, epoch change, stop); not a failure of the link."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the server promised at session open; compared across reconnects (the sync-safety contract)."""

    session_id: str
    model_repo: str = ""
    model_revision: str = ""
    model_fingerprint: str = ""
    policy_type: str = ""
    action_names: tuple[str, ...] = ()
    expected_cameras: tuple[str, ...] = ()
    state_dim: int = 0
    chunk_size: int = 0
    trained_fps: float = 0.0
    rtc: bool = False  # effective: RTC asked for and supported -> replace merges + prefixes
    rtc_execution_horizon: int = 0
    serving_mode: str = ""
    warmed_up: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    """One observation to answer, with the ids its chunk must echo."""

    seq_id: int
    episode_id: int
    epoch: int
    observation: Observation


@dataclass(frozen=True, slots=True)
class ChunkReply:
    """A chunk answering a request: model-space and robot-space actions [horizon, action_dim] + timings."""

    chunk_model: np.ndarray
    chunk_robot: np.ndarray
    session_id: str = ""
    inference_ms: float = 0.0
    queue_wait_ms: float = 0.0
    superseded_seqs: int = 0
    server_load: float = 0.0


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """The source's view of the server: present (liveliness) and whether it announced a drain."""

    server_present: bool = True
    draining: bool = False
    detail: str = ""


@dataclass(slots=True)
class SourceCounters:
    """What the source saw on the wire; merged into the engine's stats."""

    stale_chunks: int = 0  # answers to an older seq / episode / epoch, dropped
    bad_messages: int = 0  # undecodable headers or bodies, dropped
    events: int = 0
    drain_notices: int = 0
    heartbeats: int = 0
    liveliness_losses: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class ChunkSource(Protocol):
    """Answers observations with chunks. Called only from the engine's worker thread (except `interrupt`)."""

    def open_session(self, epoch: int, robot: RobotSpec) -> SessionInfo:
        """Handshake; raises ServerUnavailable (retry), SessionRefused (retry) or ContractViolation (fatal)."""
        ...

    def close_session(self) -> None:
        """Tell the server this session is over (best effort, bounded)."""
        ...

    def request(self, request: ChunkRequest, timeout_s: float, cancelled: Callable[[], bool]) -> ChunkReply:
        """Send one observation and wait for its chunk; raises RequestFailed, LinkLost or RequestCancelled."""
        ...

    def reset_episode(self, episode_id: int, timeout_s: float) -> bool:
        """Episode boundary; True when the server acknowledged it."""
        ...

    def heartbeat(self, telemetry: Telemetry) -> None:
        """Publish telemetry (keeps a paused session alive at the server)."""
        ...

    def link_status(self) -> LinkStatus: ...

    def counters(self) -> SourceCounters: ...

    def set_wakeup(self, wakeup: Callable[[], None]) -> None:
        """Register the worker's wake-up; the source calls it when the link changes."""
        ...

    def interrupt(self) -> None:
        """Wake a `request` waiting for its chunk so it re-checks `cancelled` (any thread)."""
        ...

    def close(self) -> None:
        """Release every transport resource; idempotent."""
        ...
