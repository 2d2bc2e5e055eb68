"""Synthetic episodes for tests, benchmarks and demos: smooth joint motion and rendered JPEG camera frames.

Written through the real `EpisodeWriter`, so they exercise exactly the code the device runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import simplejpeg

from spinal.recording.metadata import SO101_JOINT_NAMES, EpisodeMetadata, FrameMode
from spinal.recording.schema import ActionSource
from spinal.recording.writer import EpisodeWriter


def joint_positions(t: float, episode_seed: int = 0) -> np.ndarray:
    """A smooth, bounded SO-101-like pose (degrees; gripper 0-100) at time `t`."""
    phase = np.arange(6) * 0.7 + episode_seed
    pose = 40.0 * np.sin(0.9 * t + phase)
    pose[5] = 50.0 + 45.0 * np.sin(0.6 * t + episode_seed)
    return pose.astype(np.float32)


def render_frame(k: int, width: int, height: int, camera_index: int = 0) -> np.ndarray:
    """An HxWx3 uint8 test image: gradients that move with the frame number and a bright moving block."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = (xx * 255 // max(width - 1, 1) + 3 * k) % 256
    image[..., 1] = (yy * 255 // max(height - 1, 1) + 40 * camera_index) % 256
    image[..., 2] = (64 + 24 * camera_index + k) % 256
    size = max(4, min(width, height) // 5)
    x0 = (k * 3) % max(1, width - size)
    y0 = (height - size) // 2
    image[y0 : y0 + size, x0 : x0 + size] = (250, 250, 250)
    return image


def record_synthetic_episode(
    root: Path,
    episode_id: str,
    *,
    frames: int,
    fps: int = 30,
    cameras: Sequence[str] = ("front",),
    width: int = 128,
    height: int = 96,
    task: str = "pick the cube",
    seed: int = 0,
    quality: int = 85,
    close: bool = True,
) -> EpisodeWriter | EpisodeMetadata:
    """Record one episode at `fps` with a JPEG per camera per frame (cameras 1 ms after the tick).

    Returns the final metadata, or the still-open writer when `close=False`.
    """
    writer = EpisodeWriter(
        Path(root),
        episode_id=episode_id,
        task=task,
        fps=fps,
        state_names=SO101_JOINT_NAMES,
        cameras={name: (width, height) for name in cameras},
    )
    for k in range(frames):
        t = k / fps
        state = joint_positions(t, seed)
        action = joint_positions(t + 1.0 / fps, seed)
        source = ActionSource(session_id="synthetic", seq_id=k // 10, episode_id=seed) if k % 10 else None
        writer.append_frame(timestamp=t, state=state, action=action, mode=FrameMode.POLICY, source=source)
        for index, name in enumerate(cameras):
            jpeg = simplejpeg.encode_jpeg(render_frame(k + seed, width, height, index), quality=quality)
            writer.append_camera_frame(name, jpeg, t + 0.001)
    if not close:
        return writer
    return writer.close()
