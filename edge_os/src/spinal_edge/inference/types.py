"""The values that cross the engine boundary: the robot description, observations, actions and provenance.

The control loop builds `RobotObservation`s and receives `EngineAction`s; the recorder logs their provenance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from spinal.protocol import EncodedImage
from spinal.robots import SO101_FEATURE_NAMES

from spinal_edge.inference.errors import InferenceConfigError

SO101_ACTION_NAMES: tuple[str, ...] = SO101_FEATURE_NAMES
"""LeRobot's SO-101 follower action (and state) names, in the order the policy's columns use."""


class ClientState(StrEnum):
    """The fail-safe state of an inference engine (see docs/inference.md for the diagram)."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    DEGRADED = "degraded"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    DEAD = "dead"


class FallbackMode(StrEnum):
    """What `get_action()` returns when no fresh queued action exists."""

    HOLD = "hold"  # no target (values None): position servos keep their goal, the MCU holds
    REPEAT_LAST = "repeat_last"  # the last executed action again
    ZERO = "zero"  # all zeros: required for velocity-controlled joints


@dataclass(frozen=True, slots=True)
class RobotSpec:
    """What the robot sends and executes: action names (order = chunk columns), state names, cameras, fps."""

    action_names: tuple[str, ...] = SO101_ACTION_NAMES
    cameras: tuple[str, ...] = ()
    fps: float = 30.0
    robot_type: str = "so101_follower"
    state_names: tuple[str, ...] | None = None  # None: the state has the action names (joint positions)

    def __post_init__(self) -> None:
        if not self.action_names or len(set(self.action_names)) != len(self.action_names):
            raise InferenceConfigError(
                f"robot action_names {self.action_names!r} must be non-empty and unique; list each joint once"
            )
        if len(set(self.cameras)) != len(self.cameras):
            raise InferenceConfigError(f"robot cameras {self.cameras!r} repeat a name; name each camera once")
        if not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise InferenceConfigError(f"robot fps {self.fps!r} must be a control rate in (0, 1000] Hz")
        object.__setattr__(self, "action_names", tuple(self.action_names))
        object.__setattr__(self, "cameras", tuple(self.cameras))

    @property
    def dt(self) -> float:
        """The control period in seconds."""
        return 1.0 / self.fps

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def state_dim(self) -> int:
        return len(self.state_names) if self.state_names is not None else len(self.action_names)


CameraFrame = np.ndarray | bytes | bytearray | EncodedImage
"""A camera frame: a uint8 HWC RGB array, or the camera's own JPEG bytes (forwarded byte for byte)."""


@dataclass(frozen=True, slots=True)
class RobotObservation:
    """One observation from the control loop: joint state (SO-101 units) and the cameras' latest frames.

    `captured_at` is the engine clock's reading when the state was read; None means "now" at notify time.
    """

    state: np.ndarray
    images: Mapping[str, CameraFrame] = field(default_factory=dict)
    task: str = ""
    captured_at: float | None = None


@dataclass(frozen=True, slots=True)
class ChunkOrigin:
    """Where a merged chunk came from: the session, request and episode, and when its observation was taken."""

    session_id: str
    seq_id: int
    episode_id: int
    source_time: float  # engine clock, seconds: the observation's capture time
    inference_ms: float = 0.0
    queue_wait_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class EngineAction:
    """One action for the control loop, with its provenance for the recorder.

    `values` is float32 [action_dim] in robot units and action-name order, or None: send no new target.
    """

    values: np.ndarray | None
    fallback: FallbackMode | None  # None: the action came from a chunk
    session_id: str
    seq_id: int
    episode_id: int
    chunk_index: int  # index of the action in its source chunk; -1 when there is none
    age_s: float  # seconds since the source observation; nan when there is none
    state: ClientState

    @property
    def is_fallback(self) -> bool:
        return self.fallback is not None
