"""The inference-engine interface the control loop uses, and the statistics an engine reports.

Implemented by `RemoteEngine` (Zenoh) and `LocalEngine` (in-process model); the edge daemon holds one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from spinal_edge.inference.types import ClientState, EngineAction, RobotObservation


@dataclass(frozen=True, slots=True)
class EngineStats:
    """A snapshot of an engine's counters, timings and fail-safe history."""

    state: ClientState
    ready: bool
    failed: bool
    failure_reason: str
    paused: bool
    session_id: str
    episode_id: int
    queue_depth: int
    requests: int
    chunks_merged: int
    request_failures: int  # timeouts and send errors
    requests_cancelled: int  # withdrawn by reset / stop
    dropped_after_reset: int  # chunks that came back for a finished episode
    stale_chunks: int  # chunks answering an older seq / episode / epoch
    bad_messages: int
    bad_chunks: int  # decodable but unusable (shape, NaN)
    bad_observations: int
    stale_drops: int  # queued actions discarded by max_action_age_s
    fallback_ticks: int
    reconnects: int
    handshake_failures: int
    resets: int
    reset_acks: int
    heartbeats: int
    drain_notices: int
    worker_errors: int
    superseded_seqs: int  # as reported by the server
    actions_trimmed: int  # leading chunk actions skipped for time already executed
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    delay_steps: int
    last_inference_ms: float
    last_queue_wait_ms: float
    transitions: dict[str, int] = field(default_factory=dict)  # "from->to": count
    state_entries: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.value
        return out


class InferenceEngine(ABC):
    """What the control loop calls every tick (30-100 Hz). `notify_observation` and `get_action` are O(1),
    never block on the network and never raise; the network and the model live on the engine's worker."""

    @abstractmethod
    def start(self) -> None:
        """Start the worker (handshake with backoff in the background); returns at once."""

    @abstractmethod
    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker, close the session and release the transport; idempotent."""

    @abstractmethod
    def notify_observation(self, obs: RobotObservation) -> None:
        """Offer the latest observation (latest-only slot: an unsent older one is replaced)."""

    @abstractmethod
    def get_action(self) -> EngineAction:
        """The next action to execute, or the configured fallback; always returns."""

    @abstractmethod
    def reset(self, wait_s: float = 0.0) -> bool:
        """Episode boundary: clear the queue, bump the episode; wait up to `wait_s` for the server's ack."""

    @abstractmethod
    def pause(self) -> None:
        """Stop requesting chunks (queue kept, session kept alive by heartbeats)."""

    @abstractmethod
    def resume(self) -> None:
        """Request chunks again."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """A session is open with a warmed-up model and the engine is not DEAD."""

    @property
    @abstractmethod
    def failed(self) -> bool:
        """The engine is DEAD (offline too long or a contract violation); the robot must stop."""

    @property
    @abstractmethod
    def state(self) -> ClientState: ...

    @property
    @abstractmethod
    def stats(self) -> EngineStats: ...

    @abstractmethod
    def wait_ready(self, timeout_s: float) -> bool:
        """Block (not from the control loop) until `ready` or DEAD or `timeout_s`; returns `ready`."""
