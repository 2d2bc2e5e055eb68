"""Builds an `EdgeDaemon` from the configuration: the MCU arm, cameras, inference engine and recorder.

Used by `spinal-edge run`; tests and benchmarks build daemons from parts directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spinal_edge.arm import Arm
from spinal_edge.cameras import CameraSource, SyntheticCamera, open_camera
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.recorder import EpisodeRecorder
from spinal_edge.settings import EdgeConfig
from spinal_edge.settings_store import SettingsStore
from spinal_edge.warnings_log import WarningLog


def build_daemon(store: SettingsStore, *, arm: Arm | None = None) -> EdgeDaemon:
    config = store.config
    warnings = WarningLog()
    arm = arm or make_arm(config, warnings)
    cameras = make_cameras(config, arm)
    engine, policy = make_engine(config, cameras)
    recorder = make_recorder(config, cameras, warnings) if config.recording.enabled else None
    return EdgeDaemon(
        store, arm=arm, cameras=cameras, policy=policy, engine=engine, recorder=recorder, warnings=warnings
    )


def make_arm(config: EdgeConfig, warnings: WarningLog) -> Arm:
    from spinal_edge.mcu_arm import McuArm

    return McuArm.from_config(config, warnings=warnings)


def make_cameras(config: EdgeConfig, arm: Arm) -> dict[str, CameraSource]:
    def joints() -> np.ndarray | None:
        state = arm.latest_state()
        return None if state is None else state.positions

    cameras: dict[str, CameraSource] = {}
    for name, settings in config.cameras.items():
        camera = open_camera(name, settings)
        if isinstance(camera, SyntheticCamera):
            camera.set_joint_source(joints)
        cameras[name] = camera
    return cameras


def make_engine(config: EdgeConfig, cameras: dict[str, CameraSource]) -> tuple[Any, Any]:
    """The inference engine and the loop's adapter over it, or (None, None) for `engine = "none"`."""
    if config.engine_kind() == "none":
        return None, None
    from spinal_edge.engine_policy import EnginePolicy, build_engine

    engine = build_engine(config, camera_names=tuple(cameras))
    return engine, EnginePolicy(engine, config.inference.task)


def make_recorder(
    config: EdgeConfig, cameras: dict[str, CameraSource], warnings: WarningLog
) -> EpisodeRecorder:
    def camera_sizes() -> dict[str, tuple[int, int]]:
        sizes = {}
        for name, camera in cameras.items():
            frame = camera.slot.peek()
            sizes[name] = (
                (frame.width, frame.height) if frame else (camera.settings.width, camera.settings.height)
            )
        return sizes

    return EpisodeRecorder(
        config.episodes_dir(),
        config.recording,
        fps=config.loop.rate_hz,
        joint_names=config.robot.joint_names,
        camera_sizes=camera_sizes,
        warnings=warnings,
    )
