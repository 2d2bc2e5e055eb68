"""What the control loop hands values to: the policy (an inference engine behind an adapter) and the recorder.

Defined here so the loop depends on two small interfaces; `spinal_edge.engine_policy` and
`spinal_edge.recorder` implement them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

import numpy as np
from spinal_edge.cameras.frames import CameraFrame


class RobotMode(StrEnum):
    """Who drives the arm: nobody (it holds), the leader arm, or the policy."""

    IDLE = "idle"
    TELEOP = "teleop"
    POLICY = "policy"


class ActionOrigin(NamedTuple):
    """The chunk a policy action came from: inference session, chunk sequence id, inference episode id."""

    session_id: str
    seq_id: int
    episode_id: int


@dataclass(frozen=True, slots=True)
class PolicyStep:
    """The policy's answer for one tick: joint targets or None (hold), and where they came from."""

    values: np.ndarray | None
    origin: ActionOrigin | None = None


class PolicyPort(Protocol):
    """The policy as the loop sees it; every call returns at once and never raises."""

    def observe(self, state: np.ndarray, images: Mapping[str, bytes], t_mono_ns: int) -> None: ...

    def next_action(self) -> PolicyStep: ...

    @property
    def failed(self) -> bool:
        """True once the engine gave up (DEAD): the loop leaves policy mode and holds."""

    def status(self) -> dict[str, Any]: ...


class RecorderPort(Protocol):
    """The recorder as the loop sees it: non-blocking offers, refused (and counted) when its queue is full."""

    @property
    def recording(self) -> bool: ...

    def offer_frame(
        self,
        t_mono_ns: int,
        state: np.ndarray,
        action: np.ndarray,
        mode: RobotMode,
        origin: ActionOrigin | None,
    ) -> bool: ...

    def offer_camera_frame(self, frame: CameraFrame) -> bool: ...
