"""The edge's inference client: remote (Zenoh) and local engines behind one control-loop interface.

Action queue, latency estimate and fail-safe state machine; see edge_os/docs/inference.md.
"""

from spinal_edge.inference.action_queue import ActionQueue, MergeResult, QueuedAction
from spinal_edge.inference.clock import Clock, ManualClock, MonotonicClock
from spinal_edge.inference.config import BackoffSettings, InferenceConfig, RTCSettings, TLSSettings
from spinal_edge.inference.engine import EngineStats, InferenceEngine
from spinal_edge.inference.errors import (
    ContractViolation,
    InferenceConfigError,
    InferenceError,
    LinkLost,
    LocalBackendUnavailable,
    RequestFailed,
    ServerUnavailable,
    SessionRefused,
)
from spinal_edge.inference.failsafe import FailSafe, FailSafeThresholds, Transition
from spinal_edge.inference.latency import LatencyTracker
from spinal_edge.inference.types import (
    SO101_ACTION_NAMES,
    ChunkOrigin,
    ClientState,
    EngineAction,
    FallbackMode,
    RobotObservation,
    RobotSpec,
)

__all__ = [
    "SO101_ACTION_NAMES",
    "ActionQueue",
    "BackoffSettings",
    "ChunkOrigin",
    "ClientState",
    "Clock",
    "ContractViolation",
    "EngineAction",
    "EngineStats",
    "FailSafe",
    "FailSafeThresholds",
    "FallbackMode",
    "InferenceConfig",
    "InferenceConfigError",
    "InferenceEngine",
    "InferenceError",
    "LatencyTracker",
    "LinkLost",
    "LocalBackendUnavailable",
    "ManualClock",
    "MergeResult",
    "MonotonicClock",
    "QueuedAction",
    "RTCSettings",
    "RequestFailed",
    "RobotObservation",
    "RobotSpec",
    "ServerUnavailable",
    "SessionRefused",
    "TLSSettings",
    "Transition",
]
