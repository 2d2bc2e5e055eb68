"""A tiny synthetic LeRobotDataset v3 (real parquet and mp4 files) for demos, benchmarks and tests.

Each camera shows a coloured block sliding across the view so contact sheets and VQA have something to
look at. Used by `make bench BENCH=annotate` and the annotate/language tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

JOINTS = [
    "shoulder_pan.pos",
    "shoulder_lift.pos",
    "elbow_flex.pos",
    "wrist_flex.pos",
    "wrist_roll.pos",
    "gripper.pos",
]


def _frame(camera: int, i: int, n: int, height: int, width: int) -> np.ndarray:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:] = (40 + 60 * camera, 80, 120)
    size = max(4, height // 4)
    x = int((width - size) * (i / max(1, n - 1)))
    y = (height - size) // 2
    img[y : y + size, x : x + size] = (230, 200, 40)
    return img


def _write_video(path: Path, episodes: Sequence[int], fps: int, camera: int, height: int, width: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "4"}
        stream.time_base = Fraction(1, fps)
        pts = 0
        for length in episodes:
            for i in range(length):
                frame = av.VideoFrame.from_ndarray(_frame(camera, i, length, height, width), format="rgb24")
                frame.pts = pts
                frame.time_base = Fraction(1, fps)
                pts += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode())


def build_dataset(
    root: str | Path,
    *,
    episode_lengths: Sequence[int] = (30, 30),
    fps: int = 10,
    cameras: Sequence[str] = ("observation.images.front", "observation.images.wrist"),
    tasks: Sequence[str] = ("pick up the red cube and place it in the bowl",),
    height: int = 48,
    width: int = 64,
    extra_columns: dict[str, pa.Array] | None = None,
) -> Path:
    """Write a v3 dataset with one data file and one mp4 per camera; returns `root`."""
    root = Path(root)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    n_total = int(sum(episode_lengths))
    ep_index = np.concatenate([np.full(n, e, dtype=np.int64) for e, n in enumerate(episode_lengths)])
    frame_index = np.concatenate([np.arange(n, dtype=np.int64) for n in episode_lengths])
    timestamps = (frame_index / fps).astype(np.float32)
    task_index = np.array([e % len(tasks) for e in ep_index], dtype=np.int64)
    state = np.stack([np.linspace(0, 1, n_total, dtype=np.float32)] * len(JOINTS), axis=1)
    columns: dict[str, pa.Array] = {
        "observation.state": pa.FixedSizeListArray.from_arrays(
            pa.array(state.ravel(), pa.float32()), len(JOINTS)
        ),
        "action": pa.FixedSizeListArray.from_arrays(
            pa.array((state + 0.01).ravel(), pa.float32()), len(JOINTS)
        ),
        "timestamp": pa.array(timestamps, pa.float32()),
        "frame_index": pa.array(frame_index),
        "episode_index": pa.array(ep_index),
        "index": pa.array(np.arange(n_total, dtype=np.int64)),
        "task_index": pa.array(task_index),
    }
    columns.update(extra_columns or {})
    data_path = root / "data/chunk-000/file-000.parquet"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), data_path)

    for c, key in enumerate(cameras):
        _write_video(root / f"videos/{key}/chunk-000/file-000.mp4", episode_lengths, fps, c, height, width)

    episodes: dict[str, list] = {
        "episode_index": [],
        "tasks": [],
        "length": [],
        "data/chunk_index": [],
        "data/file_index": [],
        "dataset_from_index": [],
        "dataset_to_index": [],
    }
    for key in cameras:
        for suffix in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
            episodes[f"videos/{key}/{suffix}"] = []
    start = 0
    for e, n in enumerate(episode_lengths):
        episodes["episode_index"].append(e)
        episodes["tasks"].append([tasks[e % len(tasks)]])
        episodes["length"].append(n)
        episodes["data/chunk_index"].append(0)
        episodes["data/file_index"].append(0)
        episodes["dataset_from_index"].append(start)
        episodes["dataset_to_index"].append(start + n)
        for key in cameras:
            episodes[f"videos/{key}/chunk_index"].append(0)
            episodes[f"videos/{key}/file_index"].append(0)
            episodes[f"videos/{key}/from_timestamp"].append(start / fps)
            episodes[f"videos/{key}/to_timestamp"].append((start + n) / fps)
        start += n
    ep_path = root / "meta/episodes/chunk-000/file-000.parquet"
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(episodes), ep_path)
    pq.write_table(
        pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(list(tasks))}),
        root / "meta/tasks.parquet",
    )
    features: dict[str, dict] = {
        "observation.state": {"dtype": "float32", "shape": [len(JOINTS)], "names": JOINTS},
        "action": {"dtype": "float32", "shape": [len(JOINTS)], "names": JOINTS},
    }
    for key in cameras:
        features[key] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": "h264", "video.fps": fps},
        }
    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64")):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    features["index"] = {"dtype": "int64", "shape": [1], "names": None}
    features["task_index"] = {"dtype": "int64", "shape": [1], "names": None}
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so101_follower",
        "total_episodes": len(episode_lengths),
        "total_frames": n_total,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "fps": fps,
        "splits": {"train": f"0:{len(episode_lengths)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features,
    }
    (root / "meta/info.json").write_text(json.dumps(info, indent=4) + "\n")
    return root
