"""A tiny synthetic LeRobotDataset v3 (real parquet and mp4 files, written by `spinal.dataset`) for demos,
benchmarks and tests. Each camera shows a coloured block sliding across the view, so frames differ.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from spinal.dataset.layout import IMAGE_KEY_PREFIX, so101_features
from spinal.dataset.stats import ImageStatsAccumulator, vector_stats
from spinal.dataset.video import EpisodeVideoEncoder, VideoSegment, VideoSettings
from spinal.dataset.writer import DatasetWriter, EpisodeInput
from spinal.recording.metadata import SO101_JOINT_NAMES, SO101_ROBOT_TYPE

JOINTS = list(SO101_JOINT_NAMES)


def _frame(camera: int, i: int, n: int, height: int, width: int) -> np.ndarray:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:] = (40 + 60 * camera, 80, 120)
    size = max(4, height // 4)
    x = int((width - size) * (i / max(1, n - 1)))
    y = (height - size) // 2
    img[y : y + size, x : x + size] = (230, 200, 40)
    return img


def _fixed(values: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), pa.float32()), values.shape[1])


def build_dataset(
    root: str | Path,
    *,
    episode_lengths: Sequence[int] = (30, 30),
    fps: int = 10,
    cameras: Sequence[str] = ("observation.images.front", "observation.images.wrist"),
    tasks: Sequence[str] = ("pick up the red cube and place it in the bowl",),
    height: int = 48,
    width: int = 64,
) -> Path:
    """Write a v3 dataset (H.264 video per camera) with `spinal.dataset`'s writer; returns `root`."""
    root = Path(root)
    names = {key.removeprefix(IMAGE_KEY_PREFIX): (width, height) for key in cameras}
    writer = DatasetWriter(
        root, fps=fps, robot_type=SO101_ROBOT_TYPE, features=so101_features(JOINTS, JOINTS, names)
    )
    settings = VideoSettings(codec="h264").resolved()
    with tempfile.TemporaryDirectory(prefix="spinal-synthetic-") as tmp:
        for e, n in enumerate(episode_lengths):
            state = np.stack([np.linspace(0, 1, n, dtype=np.float32)] * len(JOINTS), axis=1)
            action = state + np.float32(0.01)
            frame_index = np.arange(n, dtype=np.int64)
            stats = {
                "observation.state": vector_stats(state),
                "action": vector_stats(action),
                "timestamp": vector_stats((frame_index / fps).astype(np.float32)),
                "frame_index": vector_stats(frame_index),
            }
            videos: dict[str, VideoSegment] = {}
            for c, key in enumerate(cameras):
                path = Path(tmp) / f"episode-{e}-camera-{c}.mp4"
                encoder = EpisodeVideoEncoder(path, fps=fps, width=width, height=height, settings=settings)
                image_stats = ImageStatsAccumulator()
                for i in range(n):
                    rgb = _frame(c, i, n, height, width)
                    encoder.add(rgb)
                    image_stats.add(rgb)
                encoder.close()
                videos[key] = VideoSegment(path, 0.0, n)
                stats[key] = image_stats.result()
            data = pa.table({"observation.state": _fixed(state), "action": _fixed(action)})
            writer.add_episode(
                EpisodeInput(data=data, tasks=[tasks[e % len(tasks)]], videos=videos, stats=stats)
            )
        writer.finish()
    return root
