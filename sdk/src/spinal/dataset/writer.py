"""`DatasetWriter`: assembles a LeRobotDataset v3.0 on disk, one episode at a time, in episode order.

Used by the converter (episodes from recordings) and by merge (episodes copied from other datasets).
Data rows go to size-chunked parquet files, videos are copied into size-chunked mp4 files per camera.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spinal.dataset import layout
from spinal.dataset.errors import DatasetError, EpisodeConversionError
from spinal.dataset.stats import FeatureStats, aggregate, to_jsonable, vector_stats
from spinal.dataset.video import VideoFileAppender, VideoSegment, video_info

_MB = 1024 * 1024


@dataclass
class EpisodeInput:
    """One episode to add: its feature columns, tasks, one video segment per video key, and statistics.

    `data` holds the non-index feature columns (for example `observation.state`, `action`) and may hold
    `timestamp`/`frame_index`; the writer fills `episode_index`, `index` and `task_index`.
    `row_tasks` gives each row's position in `tasks` (all rows take `tasks[0]` when None).
    `stats` covers every feature except `episode_index`, `index` and `task_index`.
    """

    data: pa.Table
    tasks: list[str]
    videos: dict[str, VideoSegment] = field(default_factory=dict)
    stats: FeatureStats = field(default_factory=dict)
    row_tasks: np.ndarray | None = None


@dataclass(frozen=True)
class WrittenEpisode:
    episode_index: int
    length: int
    from_index: int


class DatasetWriter:
    """Writes `root` (which must be empty); call `add_episode` per episode, then `finish`."""

    def __init__(
        self,
        root: Path,
        *,
        fps: int,
        robot_type: str | None,
        features: dict[str, dict[str, Any]],
        chunks_size: int = layout.DEFAULT_CHUNKS_SIZE,
        data_files_size_in_mb: int = layout.DEFAULT_DATA_FILE_SIZE_MB,
        video_files_size_in_mb: int = layout.DEFAULT_VIDEO_FILE_SIZE_MB,
        data_schema: pa.Schema | None = None,
        extra_info: dict[str, Any] | None = None,
    ) -> None:
        """`data_schema` keeps an existing dataset's column types (merge); `extra_info` adds info.json keys."""
        self.root = Path(root)
        self.fps = fps
        self.robot_type = robot_type
        self.features = json.loads(json.dumps(features))
        self.chunks_size = chunks_size
        self.data_mb = data_files_size_in_mb
        self.video_mb = video_files_size_in_mb
        self._schema = data_schema if data_schema is not None else layout.data_schema(self.features)
        self._extra_info = dict(extra_info or {})
        self._video_keys = layout.video_keys(self.features)
        self._tasks: dict[str, int] = {}
        self._episodes: list[dict[str, Any]] = []
        self._episode_stats: list[FeatureStats] = []
        self._total_frames = 0
        self._data_writer: pq.ParquetWriter | None = None
        self._data_pos = (0, 0)
        self._data_bytes = 0
        self._videos: dict[str, VideoFileAppender | None] = dict.fromkeys(self._video_keys)
        self._video_pos: dict[str, tuple[int, int]] = {key: (0, 0) for key in self._video_keys}
        self._video_started: dict[str, bool] = dict.fromkeys(self._video_keys, False)
        self._video_info: dict[str, dict[str, Any]] = {}

    @property
    def total_frames(self) -> int:
        return self._total_frames

    @property
    def total_episodes(self) -> int:
        return len(self._episodes)

    def add_episode(self, episode: EpisodeInput) -> WrittenEpisode:
        self._check_episode(episode)
        length = episode.data.num_rows
        episode_index = len(self._episodes)
        task_ids = np.array([self._task_index(task) for task in episode.tasks], dtype=np.int64)
        row_tasks = np.zeros(length, dtype=np.int64) if episode.row_tasks is None else episode.row_tasks
        task_index = task_ids[row_tasks]
        start = self._total_frames
        table = self._full_table(episode.data, episode_index, start, task_index)

        row: dict[str, Any] = {
            "episode_index": episode_index,
            "tasks": list(dict.fromkeys(episode.tasks[i] for i in np.unique(row_tasks))),
            "length": length,
        }
        row.update(self._write_data(table))
        row["dataset_from_index"] = start
        row["dataset_to_index"] = start + length
        for key in self._video_keys:
            row.update(self._write_video(key, episode.videos[key], length))

        stats = dict(episode.stats)
        stats["episode_index"] = vector_stats(np.full(length, episode_index, dtype=np.int64))
        stats["index"] = vector_stats(np.arange(start, start + length, dtype=np.int64))
        stats["task_index"] = vector_stats(task_index)
        self._episode_stats.append({key: stats[key] for key in self.features if key in stats})
        self._episodes.append(row)
        self._total_frames += length
        return WrittenEpisode(episode_index, length, start)

    def finish(self) -> dict[str, Any]:
        """Close every file and write the metadata (info.json last, so a partial dataset never looks whole)."""
        if not self._episodes:
            raise DatasetError("no episode was written")
        if self._data_writer is not None:
            self._data_writer.close()
            self._data_writer = None
        for key, appender in self._videos.items():
            if appender is not None:
                appender.close()
                self._videos[key] = None
        write_tasks(self.root, list(self._tasks))
        write_episodes(
            self.root, self._episodes, self._episode_stats, self.features, self.data_mb, self.chunks_size
        )
        layout.write_json(self.root / layout.STATS_PATH, to_jsonable(aggregate(self._episode_stats)))
        for key in self._video_keys:
            self.features[key]["info"] = self._video_info[key]
        info = build_info(
            robot_type=self.robot_type,
            total_episodes=len(self._episodes),
            total_frames=self._total_frames,
            total_tasks=len(self._tasks),
            chunks_size=self.chunks_size,
            data_files_size_in_mb=self.data_mb,
            video_files_size_in_mb=self.video_mb,
            fps=self.fps,
            features=self.features,
        )
        info.update({k: v for k, v in self._extra_info.items() if k not in info})
        layout.write_json(self.root / layout.INFO_PATH, info)
        return info

    # -- internals ----------------------------------------------------------------------------------

    def _check_episode(self, episode: EpisodeInput) -> None:
        """Reject an unusable episode before anything is written (so the files stay consistent)."""
        length = episode.data.num_rows
        if length == 0:
            raise EpisodeConversionError("an episode needs at least one frame")
        if not episode.tasks:
            raise EpisodeConversionError("an episode needs a task")
        for key in self._video_keys:
            segment = episode.videos.get(key)
            if segment is None:
                raise EpisodeConversionError(f"the episode has no video for {key}")
            if segment.frames != length:
                raise EpisodeConversionError(f"video {key} has {segment.frames} frames for {length} rows")
        derived = {"episode_index", "index", "task_index"}
        missing = [
            key
            for key, ft in self.features.items()
            if key not in derived and ft["dtype"] not in ("string", "language") and key not in episode.stats
        ]
        if missing:
            raise EpisodeConversionError(f"episode statistics are missing for {', '.join(missing)}")
        columns = set(episode.data.column_names) | {"timestamp", "frame_index"} | derived
        absent = [key for key in layout.data_columns(self.features) if key not in columns]
        if absent:
            raise EpisodeConversionError(f"episode data has no column {', '.join(absent)}")

    def _task_index(self, task: str) -> int:
        if task not in self._tasks:
            self._tasks[task] = len(self._tasks)
        return self._tasks[task]

    def _full_table(self, data: pa.Table, episode_index: int, start: int, task_index: np.ndarray) -> pa.Table:
        length = data.num_rows
        frame_index = np.arange(length, dtype=np.int64)
        generated = {
            "frame_index": pa.array(frame_index),
            "timestamp": pa.array((frame_index / self.fps).astype(np.float32)),
            "episode_index": pa.array(np.full(length, episode_index, dtype=np.int64)),
            "index": pa.array(np.arange(start, start + length, dtype=np.int64)),
            "task_index": pa.array(task_index),
        }
        columns = []
        for column in self._schema:
            if column.name in ("episode_index", "index", "task_index"):
                value = generated[column.name]
            elif column.name in data.column_names:
                value = data.column(column.name).combine_chunks()
            elif column.name in generated:
                value = generated[column.name]
            else:
                raise DatasetError(f"episode data has no column {column.name!r}")
            if not value.type.equals(column.type):
                try:
                    value = value.cast(column.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DatasetError(
                        f"column {column.name!r} is {value.type}, expected {column.type}"
                    ) from exc
            columns.append(value)
        return pa.Table.from_arrays(columns, schema=self._schema)

    def _write_data(self, table: pa.Table) -> dict[str, int]:
        size = table.nbytes
        if self._data_writer is not None and self._data_bytes + size > self.data_mb * _MB:
            self._data_writer.close()
            self._data_writer = None
            self._data_pos = layout.next_file(*self._data_pos, self.chunks_size)
            self._data_bytes = 0
        if self._data_writer is None:
            path = self.root / layout.data_file(*self._data_pos)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = pq.ParquetWriter(path, self._schema, compression="snappy")
        self._data_writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._data_bytes += size
        return {"data/chunk_index": self._data_pos[0], "data/file_index": self._data_pos[1]}

    def _write_video(self, key: str, segment: VideoSegment, length: int) -> dict[str, Any]:
        appender = self._videos[key]
        if appender is not None and (appender.bytes >= self.video_mb * _MB or not appender.accepts(segment)):
            appender.close()
            appender = None
            self._video_pos[key] = layout.next_file(*self._video_pos[key], self.chunks_size)
        if appender is None:
            path = self.root / layout.video_file(key, *self._video_pos[key])
            appender = VideoFileAppender(path, self.fps)
            self._videos[key] = appender
        from_ts = appender.append(segment)
        if key not in self._video_info:
            self._video_info[key] = video_info(segment.path)
        chunk, file = self._video_pos[key]
        return {
            f"videos/{key}/chunk_index": chunk,
            f"videos/{key}/file_index": file,
            f"videos/{key}/from_timestamp": float(from_ts),
            f"videos/{key}/to_timestamp": float(from_ts + length / self.fps),
        }


def build_info(
    *,
    robot_type: str | None,
    total_episodes: int,
    total_frames: int,
    total_tasks: int,
    chunks_size: int,
    data_files_size_in_mb: int,
    video_files_size_in_mb: int,
    fps: int,
    features: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """meta/info.json with the keys, in the order, LeRobot writes them."""
    has_video = bool(layout.video_keys(features))
    return {
        "codebase_version": layout.CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": layout.DATA_PATH,
        "video_path": layout.VIDEO_PATH if has_video else None,
        "features": features,
    }


def write_tasks(root: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes it: the task string is the index, `task_index` the column."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("__index_level_0__", pa.large_string())],
        metadata={"pandas": json.dumps(pandas_meta)},
    )
    table = pa.Table.from_arrays(
        [pa.array(np.arange(len(tasks), dtype=np.int64)), pa.array(tasks, pa.large_string())], schema=schema
    )
    path = root / layout.TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def _stat_type(feature: dict[str, Any], stat: str) -> pa.DataType:
    if stat == "count":
        return pa.list_(pa.int64())
    if feature["dtype"] in ("video", "image"):
        return pa.list_(pa.list_(pa.list_(pa.float64())))
    if stat in ("min", "max") and feature["dtype"].startswith(("int", "uint")):
        return pa.list_(pa.int64())
    return pa.list_(pa.float64())


def episodes_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    """Columns of meta/episodes/*.parquet in LeRobot's order, including per-episode `stats/...`."""
    fields = [
        pa.field("episode_index", pa.int64()),
        pa.field("tasks", pa.list_(pa.string())),
        pa.field("length", pa.int64()),
        pa.field("data/chunk_index", pa.int64()),
        pa.field("data/file_index", pa.int64()),
        pa.field("dataset_from_index", pa.int64()),
        pa.field("dataset_to_index", pa.int64()),
    ]
    for key in layout.video_keys(features):
        fields += [
            pa.field(f"videos/{key}/chunk_index", pa.int64()),
            pa.field(f"videos/{key}/file_index", pa.int64()),
            pa.field(f"videos/{key}/from_timestamp", pa.float64()),
            pa.field(f"videos/{key}/to_timestamp", pa.float64()),
        ]
    for key, feature in features.items():
        if feature["dtype"] in ("string", "language"):
            continue
        for stat in layout.STAT_NAMES:
            fields.append(pa.field(f"stats/{key}/{stat}", _stat_type(feature, stat)))
    fields += [
        pa.field("meta/episodes/chunk_index", pa.int64()),
        pa.field("meta/episodes/file_index", pa.int64()),
    ]
    return pa.schema(fields)


def write_episodes(
    root: Path,
    rows: list[dict[str, Any]],
    episode_stats: list[FeatureStats],
    features: dict[str, dict[str, Any]],
    file_size_mb: int,
    chunks_size: int,
) -> None:
    """Write meta/episodes/chunk-*/file-*.parquet (rows with their stats), starting a new file past the size."""
    schema = episodes_schema(features)
    full_rows = []
    for row, stats in zip(rows, episode_stats, strict=True):
        full = dict(row)
        for key, feature_stats in stats.items():
            for stat in layout.STAT_NAMES:
                if stat in feature_stats:
                    full[f"stats/{key}/{stat}"] = np.asarray(feature_stats[stat]).tolist()
        full_rows.append(full)
    pos = (0, 0)
    batch: list[dict[str, Any]] = []
    batch_bytes = 0
    for row in full_rows:
        size = len(json.dumps(row))
        if batch and batch_bytes + size > file_size_mb * _MB:
            _write_episode_file(root, pos, batch, schema)
            pos = layout.next_file(*pos, chunks_size)
            batch, batch_bytes = [], 0
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = pos
        batch.append(row)
        batch_bytes += size
    _write_episode_file(root, pos, batch, schema)


def _write_episode_file(
    root: Path, pos: tuple[int, int], rows: list[dict[str, Any]], schema: pa.Schema
) -> None:
    columns = [pa.array([row.get(f.name) for row in rows], type=f.type) for f in schema]
    path = root / layout.episodes_file(*pos)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(columns, schema=schema), path, compression="snappy")
