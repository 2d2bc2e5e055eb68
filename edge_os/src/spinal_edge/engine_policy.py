"""The adapter between the control loop's `PolicyPort` and an inference engine (`spinal_edge.inference`).

Built by the daemon when `[inference] engine` is "remote" or "local"; the task sentence is set per episode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from spinal_edge.control.ports import ActionOrigin, PolicyStep
from spinal_edge.errors import ConfigError
from spinal_edge.inference import (
    InferenceConfig,
    InferenceEngine,
    InferenceError,
    RobotObservation,
    RobotSpec,
)
from spinal_edge.settings import EdgeConfig


class EnginePolicy:
    """Wraps an engine: observations carry the camera JPEGs untouched; actions carry their chunk's origin."""

    def __init__(self, engine: InferenceEngine, task: str = "") -> None:
        self.engine = engine
        self.task = task

    def observe(self, state: np.ndarray, images: Mapping[str, bytes], t_mono_ns: int) -> None:
        # The engine's clock is time.monotonic(); the state's stamp is the same clock in nanoseconds.
        self.engine.notify_observation(
            RobotObservation(state=state, images=dict(images), task=self.task, captured_at=t_mono_ns / 1e9)
        )

    def next_action(self) -> PolicyStep:
        action = self.engine.get_action()
        if action.values is None:
            return PolicyStep(None)
        origin = (
            None
            if action.fallback is not None
            else ActionOrigin(action.session_id, action.seq_id, action.episode_id)
        )
        return PolicyStep(action.values, origin)

    @property
    def failed(self) -> bool:
        return self.engine.failed

    def status(self) -> dict[str, Any]:
        return self.engine.stats.as_dict()


def build_engine(config: EdgeConfig, *, camera_names: tuple[str, ...]) -> InferenceEngine:
    """The remote or local engine the config asks for (not started); raises ConfigError when it cannot."""
    kind = config.engine_kind()
    try:
        settings = InferenceConfig.load(config.inference_options(), source="[inference]")
        robot = RobotSpec(
            action_names=tuple(f"{name}.pos" for name in config.robot.joint_names),
            cameras=camera_names,
            fps=config.loop.rate_hz,
        )
        if kind == "local":
            from spinal_edge.inference.local import LocalEngine

            return LocalEngine(settings, robot, model_path=config.inference.model_path)
        from spinal_edge.inference.remote import RemoteEngine

        return RemoteEngine(settings, robot)
    except InferenceError as exc:
        raise ConfigError(f"the {kind} inference engine cannot be built: {exc}", field="inference") from None
