"""Just enough read access to a LeRobotDataset v3 folder for the language columns and the annotator.

Reads meta/info.json, meta/tasks.parquet, meta/episodes/*, and frame timestamps from data/*; used by the column
writer/reader, `spinal annotate` and `spinal render`. Kept minimal on purpose: it goes once `spinal.dataset` lands.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from spinal.language.errors import DatasetLayoutError

INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"


@dataclass(frozen=True)
class VideoSpan:
    """Where one episode's frames of one camera sit: an mp4 file and the episode's time range inside it."""

    path: Path
    from_timestamp: float
    to_timestamp: float


@dataclass(frozen=True)
class EpisodeFrames:
    """One episode: its index, canonical task, frame timestamps (float32, as stored) and video spans."""

    index: int
    task: str
    timestamps: np.ndarray
    videos: dict[str, VideoSpan] = field(default_factory=dict)

    @property
    def t0(self) -> float:
        return float(self.timestamps[0])

    @property
    def duration(self) -> float:
        return float(self.timestamps[-1] - self.timestamps[0])


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class V3Dataset:
    """A LeRobotDataset v3 folder on disk, read lazily."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / INFO_PATH).is_file():
            raise DatasetLayoutError(
                f"{self.root} is not a LeRobotDataset v3 folder (no {INFO_PATH}); convert the recording first."
            )

    @cached_property
    def info(self) -> dict[str, Any]:
        try:
            info = json.loads((self.root / INFO_PATH).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DatasetLayoutError(f"{self.root / INFO_PATH} is not valid JSON: {exc}.") from None
        if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
            raise DatasetLayoutError(f"{self.root / INFO_PATH} has no `features` mapping.")
        return info

    def write_info(self, info: dict[str, Any]) -> None:
        """Replace meta/info.json atomically and refresh the cached copy."""
        atomic_write_bytes(self.root / INFO_PATH, (json.dumps(info, indent=4) + "\n").encode())
        self.__dict__["info"] = info

    @property
    def fps(self) -> float:
        return float(self.info.get("fps") or 0.0)

    @property
    def camera_keys(self) -> list[str]:
        """Video features (observation.images.*), in info.json order."""
        return [
            k for k, f in self.info["features"].items() if isinstance(f, dict) and f.get("dtype") == "video"
        ]

    def data_files(self) -> list[Path]:
        files = sorted((self.root / DATA_DIR).glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetLayoutError(f"{self.root} has no data/chunk-*/file-*.parquet files.")
        return files

    @cached_property
    def tasks(self) -> dict[int, str]:
        path = self.root / TASKS_PATH
        if not path.is_file():
            return {}
        table = pq.read_table(path)
        names = table.column_names
        text_col = "task" if "task" in names else next((n for n in names if n != "task_index"), None)
        if text_col is None or "task_index" not in names:
            raise DatasetLayoutError(f"{path} needs a task_index column and a task column or index.")
        return dict(zip(table["task_index"].to_pylist(), map(str, table[text_col].to_pylist()), strict=True))

    @cached_property
    def _frames(self) -> dict[str, np.ndarray]:
        cols = ["episode_index", "timestamp", "task_index"]
        parts: dict[str, list[np.ndarray]] = {c: [] for c in cols}
        for path in self.data_files():
            present = set(pq.read_schema(path).names)
            missing = {"episode_index", "timestamp"} - present
            if missing:
                raise DatasetLayoutError(f"{path} lacks column(s) {sorted(missing)}.")
            table = pq.read_table(path, columns=[c for c in cols if c in present])
            for c in cols:
                if c in present:
                    parts[c].append(table[c].to_numpy())
                else:
                    parts[c].append(np.zeros(table.num_rows, dtype=np.int64))
        return {c: np.concatenate(v) for c, v in parts.items()}

    @cached_property
    def _episode_meta(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for path in sorted((self.root / EPISODES_DIR).glob("chunk-*/file-*.parquet")):
            names = [n for n in pq.read_schema(path).names if not n.startswith("stats/")]
            for row in pq.read_table(path, columns=names).to_pylist():
                out[int(row["episode_index"])] = row
        return out

    @cached_property
    def episode_indices(self) -> list[int]:
        return sorted({int(e) for e in np.unique(self._frames["episode_index"])})

    def episode(self, index: int) -> EpisodeFrames:
        """Frame timestamps, task and video spans of one episode."""
        mask = self._frames["episode_index"] == index
        if not mask.any():
            raise DatasetLayoutError(f"Episode {index} has no frames in {self.root}.")
        timestamps = self._frames["timestamp"][mask].astype(np.float32)
        task_index = int(self._frames["task_index"][mask][0])
        meta = self._episode_meta.get(index, {})
        task = self.tasks.get(task_index) or next(iter(meta.get("tasks") or []), "")
        videos: dict[str, VideoSpan] = {}
        video_path = (
            self.info.get("video_path")
            or "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        )
        for key in self.camera_keys:
            chunk = meta.get(f"videos/{key}/chunk_index")
            file = meta.get(f"videos/{key}/file_index")
            if chunk is None or file is None:
                continue
            path = self.root / video_path.format(video_key=key, chunk_index=int(chunk), file_index=int(file))
            videos[key] = VideoSpan(
                path=path,
                from_timestamp=float(meta.get(f"videos/{key}/from_timestamp") or 0.0),
                to_timestamp=float(meta.get(f"videos/{key}/to_timestamp") or 0.0),
            )
        return EpisodeFrames(index=index, task=task, timestamps=timestamps, videos=videos)
