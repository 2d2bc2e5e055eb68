"""The language layer's view of a LeRobotDataset v3 folder: frame timestamps, tasks and video spans per
episode, read through `spinal.dataset.DatasetReader`. Used by the column writer, `spinal annotate` and `render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from spinal.dataset.errors import DatasetError
from spinal.dataset.layout import INFO_PATH
from spinal.dataset.reader import DatasetReader
from spinal.fsutil import write_json_atomic
from spinal.language.errors import DatasetLayoutError


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


class V3Dataset:
    """A dataset folder as the language layer needs it; dataset errors become `DatasetLayoutError`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self._reader = DatasetReader(self.root)
        except DatasetError as exc:
            raise DatasetLayoutError(f"{exc}; convert the recording with `spinal dataset` first.") from None

    @property
    def info(self) -> dict[str, Any]:
        return self._reader.info

    def write_info(self, info: dict[str, Any]) -> None:
        """Replace meta/info.json atomically (LeRobot's indentation) and refresh the reader's copy."""
        write_json_atomic(self.root / INFO_PATH, info, indent=4)
        self._reader.info = info

    @property
    def fps(self) -> int:
        return self._reader.fps

    @property
    def camera_keys(self) -> list[str]:
        return self._reader.video_keys

    def data_files(self) -> list[Path]:
        files = self._reader.data_files()
        if not files:
            raise DatasetLayoutError(f"{self.root} has no data/chunk-*/file-*.parquet files.")
        return files

    @cached_property
    def _episodes(self) -> dict[int, dict[str, Any]]:
        try:
            return {int(row["episode_index"]): row for row in self._reader.episodes}
        except DatasetError as exc:
            raise DatasetLayoutError(str(exc)) from None

    @property
    def episode_indices(self) -> list[int]:
        return sorted(self._episodes)

    def episode(self, index: int) -> EpisodeFrames:
        """Frame timestamps, task and video spans of one episode."""
        row = self._episodes.get(index)
        if row is None:
            raise DatasetLayoutError(f"Episode {index} is not in {self.root}.")
        try:
            table = self._reader.episode_table(row, ["timestamp", "task_index"])
            tasks = self._reader.tasks
        except DatasetError as exc:
            raise DatasetLayoutError(str(exc)) from None
        task_index = int(table.column("task_index")[0].as_py())
        videos = {
            key: VideoSpan(
                path=self._reader.video_path(row, key),
                from_timestamp=float(row[f"videos/{key}/from_timestamp"]),
                to_timestamp=float(row[f"videos/{key}/to_timestamp"]),
            )
            for key in self.camera_keys
            if row.get(f"videos/{key}/chunk_index") is not None
        }
        return EpisodeFrames(
            index=index,
            task=tasks[task_index] if 0 <= task_index < len(tasks) else "",
            timestamps=table.column("timestamp").to_numpy().astype(np.float32),
            videos=videos,
        )
