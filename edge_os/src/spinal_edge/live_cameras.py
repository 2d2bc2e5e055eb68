"""Applies changed `[cameras]` settings while the daemon runs: only the cameras whose settings changed restart.

Called by `EdgeDaemon` when the settings store applies a change (the setup page's Cameras page, PATCH /api/settings).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from spinal_edge.cameras import CameraSource, SyntheticCamera, open_camera
from spinal_edge.control.ports import RobotMode
from spinal_edge.errors import EdgeError
from spinal_edge.settings import CameraSettings, EdgeConfig

if TYPE_CHECKING:
    from spinal_edge.daemon import EdgeDaemon

log = logging.getLogger(__name__)


def apply_camera_changes(daemon: EdgeDaemon, old: EdgeConfig, new: EdgeConfig) -> list[str]:
    """Stop the cameras that changed or went away, open and start the changed and new ones, keep the rest
    running; returns the names restarted. A rename reaches the loop, the recorder, the status and, through a
    rebuilt inference engine, the policy's next handshake."""
    running = dict(daemon.cameras)
    changed = [name for name, settings in new.cameras.items() if old.cameras.get(name) != settings]
    gone = [name for name in old.cameras if name not in new.cameras]
    renamed = set(old.cameras) != set(new.cameras)
    if renamed and daemon.loop.mode is RobotMode.POLICY:
        # The policy's observation layout is about to change under it; the arm holds instead.
        daemon.loop.request_mode(RobotMode.IDLE, "camera names changed")
    for name in [*gone, *changed]:
        camera = running.pop(name, None)
        if camera is not None:
            camera.stop()  # before the new one opens: a V4L2 device opens once
    for name in changed:
        running[name] = _open(daemon, name, new.cameras[name])
    cameras = {name: running[name] for name in new.cameras if name in running}
    _publish(daemon, cameras)
    if renamed and daemon.engine is not None:
        _rebuild_engine(daemon, new)
    log.info("cameras applied", extra={"restarted": changed, "removed": gone})
    return changed


def _open(daemon: EdgeDaemon, name: str, settings: CameraSettings) -> CameraSource:
    camera = open_camera(name, settings)
    if isinstance(camera, SyntheticCamera):
        arm = daemon.arm

        def joints() -> np.ndarray | None:
            state = arm.latest_state()
            return None if state is None else state.positions

        camera.set_joint_source(joints)
    camera.start()
    return camera


def _publish(daemon: EdgeDaemon, cameras: dict[str, CameraSource]) -> None:
    # The dict object itself stays: the recorder reads the camera sizes through it when an episode starts.
    shared = daemon.cameras
    if list(shared) == list(cameras):
        for name, camera in cameras.items():
            shared[name] = camera  # same keys: readers iterating meanwhile are unaffected
    else:
        shared.clear()
        shared.update(cameras)
    daemon.loop.cameras = dict(cameras)  # the loop thread keeps iterating the old dict until its next tick


def _rebuild_engine(daemon: EdgeDaemon, config: EdgeConfig) -> None:
    """A new engine that sends the new camera names (the old one's robot description is fixed)."""
    from spinal_edge.assembly import make_engine

    if config.engine_kind() == "none":
        # An engine the daemon was handed directly (tests, benchmarks): it cannot be rebuilt from settings.
        daemon.warnings.add(
            "restart_required", "camera names changed; restart the daemon so the policy sees the new names"
        )
        return
    try:
        engine, policy = make_engine(config, dict(daemon.cameras))
    except EdgeError as exc:
        daemon.warnings.add(
            "restart_required", f"camera names changed but the inference engine was not rebuilt ({exc})"
        )
        return
    old = daemon.engine
    if old is not None:
        old.stop()
    engine.start()  # its handshake checks the policy's camera names against the new ones
    engine.pause()
    policy.task = daemon.task
    daemon.engine, daemon.policy = engine, policy
    daemon.loop.policy = policy
