"""Turns a control-loop `RobotObservation` into the wire `Observation`, checking it on the way.

Runs on the inference worker: camera JPEG bytes pass through untouched; RGB arrays are encoded later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from spinal.protocol import EncodedImage, Observation, ProtocolError

from spinal_edge.inference.errors import InferenceError
from spinal_edge.inference.types import RobotObservation, RobotSpec


class BadObservation(InferenceError):
    """An observation from the control loop cannot be sent (wrong state size, missing camera, bad frame)."""


def to_wire_observation(
    obs: RobotObservation,
    robot: RobotSpec,
    *,
    cameras: Sequence[str],
    task: str,
    jpeg_quality: int,
    delay_steps: int,
    prefix_model: np.ndarray | None,
    prefix_robot: np.ndarray | None,
    episode_start: bool,
) -> Observation:
    """The wire observation for `obs`, sending only `cameras`; raises BadObservation naming the problem."""
    try:
        state = np.asarray(obs.state, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise BadObservation(f"observation state is not numeric: {exc}") from None
    if state.shape[0] != robot.state_dim:
        raise BadObservation(
            f"observation state has {state.shape[0]} values, the robot declares {robot.state_dim}"
        )
    if not np.isfinite(state).all():
        raise BadObservation("observation state holds NaN or infinity; check the joint readings")
    images: dict[str, np.ndarray | EncodedImage] = {}
    for name in cameras:
        frame = obs.images.get(name)
        if frame is None:
            raise BadObservation(f"observation has no frame from camera {name!r} that the policy needs")
        images[name] = _frame(name, frame)
    return Observation(
        state=state,
        images=images,
        task=obs.task or task,
        inference_delay_steps=int(delay_steps),
        prefix_model=prefix_model,
        prefix_robot=prefix_robot,
        episode_start=episode_start,
        jpeg_quality=jpeg_quality,
    )


def _frame(name: str, frame: object) -> np.ndarray | EncodedImage:
    if isinstance(frame, EncodedImage):
        return frame
    if isinstance(frame, bytes | bytearray | memoryview):
        try:
            return EncodedImage.jpeg(bytes(frame))
        except ProtocolError:
            raise BadObservation(
                f"camera {name!r} delivered bytes that are not JPEG; pass RGB arrays or MJPEG frames"
            ) from None
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise BadObservation(
            f"camera {name!r} frame must be uint8 HxWx3 RGB, got {arr.dtype} {tuple(arr.shape)}"
        )
    return arr
