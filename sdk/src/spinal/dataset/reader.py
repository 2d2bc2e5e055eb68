"""`DatasetReader`: reads a LeRobotDataset v3.0 from disk (metadata, tasks, episodes, rows, video frames).

Used by `spinal dataset info|validate|merge|stats|plot`; it reads lazily, one parquet row group at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spinal.dataset import layout
from spinal.dataset.errors import DatasetFormatError
from spinal.dataset.stats import FeatureStats
from spinal.dataset.video import decode_frames


class DatasetReader:
    """One dataset folder; raises `DatasetFormatError` when the basics (info.json, meta files) are unusable."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        info_path = self.root / layout.INFO_PATH
        if not info_path.is_file():
            raise DatasetFormatError(
                f"{info_path} is missing: {self.root} is not a LeRobotDataset v3.0 folder"
            )
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetFormatError(f"{info_path} is not valid JSON ({exc})") from exc
        if not isinstance(self.info, dict) or not isinstance(self.info.get("features"), dict):
            raise DatasetFormatError(f"{info_path} has no 'features' object")
        if not isinstance(self.info.get("fps"), int):
            raise DatasetFormatError(f"{info_path}: 'fps' must be an integer")

    # -- metadata -----------------------------------------------------------------------------------

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def video_keys(self) -> list[str]:
        return layout.video_keys(self.features)

    @cached_property
    def tasks(self) -> list[str]:
        """Task strings by task_index."""
        path = self.root / layout.TASKS_PATH
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DatasetFormatError(f"{path} cannot be read ({exc})") from exc
        names = table.column_names
        task_column = next((c for c in ("__index_level_0__", "task") if c in names), None)
        if "task_index" not in names or task_column is None:
            raise DatasetFormatError(
                f"{path} must hold a task_index column and the task strings as its index"
            )
        indices = table.column("task_index").to_pylist()
        strings = table.column(task_column).to_pylist()
        if sorted(indices) != list(range(len(indices))):
            raise DatasetFormatError(f"{path}: task_index values must be 0..{len(indices) - 1}, each once")
        ordered = [""] * len(indices)
        for index, task in zip(indices, strings, strict=True):
            ordered[index] = task
        return ordered

    def episode_files(self) -> list[Path]:
        return sorted((self.root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet"))

    @cached_property
    def episodes(self) -> list[dict[str, Any]]:
        """One dict per episode (without the per-episode `stats/...` columns), sorted by episode_index."""
        files = self.episode_files()
        if not files:
            raise DatasetFormatError(f"{self.root / layout.EPISODES_DIR} holds no episode parquet files")
        rows: list[dict[str, Any]] = []
        for path in files:
            try:
                schema = pq.read_schema(path)
                columns = [name for name in schema.names if not name.startswith("stats/")]
                rows.extend(pq.read_table(path, columns=columns).to_pylist())
            except (OSError, pa.ArrowException) as exc:
                raise DatasetFormatError(f"{path} cannot be read ({exc})") from exc
        rows.sort(key=lambda row: row.get("episode_index", -1))
        return rows

    def episode_stats(self) -> list[FeatureStats]:
        """Per-episode statistics from the `stats/<feature>/<stat>` columns, by episode_index."""
        out: list[tuple[int, FeatureStats]] = []
        for path in self.episode_files():
            table = pq.read_table(path)
            stat_columns = [name for name in table.column_names if name.startswith("stats/")]
            for row in table.select(["episode_index", *stat_columns]).to_pylist():
                stats: FeatureStats = {}
                for name in stat_columns:
                    key = name[len("stats/") : name.rindex("/")]
                    stat = name[name.rindex("/") + 1 :]
                    if row[name] is not None:
                        stats.setdefault(key, {})[stat] = np.asarray(row[name])
                out.append((row["episode_index"], stats))
        return [stats for _, stats in sorted(out, key=lambda item: item[0])]

    def stats(self) -> dict[str, Any] | None:
        path = self.root / layout.STATS_PATH
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetFormatError(f"{path} is not valid JSON ({exc})") from exc

    # -- rows ---------------------------------------------------------------------------------------

    def data_path(self, episode: dict[str, Any]) -> Path:
        return self.root / self.info.get("data_path", layout.DATA_PATH).format(
            chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"]
        )

    def video_path(self, episode: dict[str, Any], key: str) -> Path:
        return self.root / self.info.get("video_path", layout.VIDEO_PATH).format(
            video_key=key,
            chunk_index=episode[f"videos/{key}/chunk_index"],
            file_index=episode[f"videos/{key}/file_index"],
        )

    def data_files(self) -> list[Path]:
        return sorted((self.root / layout.DATA_DIR).glob("chunk-*/file-*.parquet"))

    def iter_batches(self, columns: list[str] | None = None) -> Iterator[tuple[Path, pa.RecordBatch]]:
        """Every data row, file by file in path order, one row group at a time."""
        for path in self.data_files():
            try:
                parquet = pq.ParquetFile(path)
                for group in range(parquet.num_row_groups):
                    table = parquet.read_row_group(group, columns=columns)
                    for batch in table.to_batches():
                        yield path, batch
            except (OSError, pa.ArrowException) as exc:
                raise DatasetFormatError(f"{path} cannot be read ({exc})") from exc

    def episode_table(self, episode: dict[str, Any], columns: list[str] | None = None) -> pa.Table:
        """The data rows of one episode (reads only its file's row groups that hold it)."""
        path = self.data_path(episode)
        wanted = None if columns is None else list(dict.fromkeys([*columns, "index"]))
        try:
            parquet = pq.ParquetFile(path)
            parts = []
            lo, hi = episode["dataset_from_index"], episode["dataset_to_index"]
            leaf = _leaf_column(parquet, "index")
            for group in range(parquet.num_row_groups):
                if leaf is not None and _outside(parquet.metadata.row_group(group).column(leaf), lo, hi):
                    continue
                table = parquet.read_row_group(group, columns=wanted)
                mask = np.logical_and(
                    table.column("index").to_numpy() >= lo, table.column("index").to_numpy() < hi
                )
                parts.append(table.filter(pa.array(mask)))
        except (OSError, pa.ArrowException) as exc:
            raise DatasetFormatError(f"{path} cannot be read ({exc})") from exc
        if not parts:
            raise DatasetFormatError(f"{path} holds no rows of episode {episode['episode_index']}")
        table = pa.concat_tables(parts)
        return table if columns is None else table.select(columns)

    def iter_video_frames(self, episode: dict[str, Any], key: str) -> Iterator[tuple[float, np.ndarray]]:
        """Decode one episode's frames of one camera: (time within the episode, HxWx3 RGB)."""
        start = float(episode[f"videos/{key}/from_timestamp"])
        for t, rgb in decode_frames(self.video_path(episode, key), start, int(episode["length"]), self.fps):
            yield t - start, rgb


def _leaf_column(parquet: pq.ParquetFile, name: str) -> int | None:
    schema = parquet.metadata.schema
    return next((i for i in range(len(schema)) if schema.column(i).path == name), None)


def _outside(column: pq.ColumnChunkMetaData, lo: int, hi: int) -> bool:
    """True when a row group's min/max statistics prove it holds no index in [lo, hi)."""
    stats = column.statistics
    return stats is not None and stats.has_min_max and (stats.max < lo or stats.min >= hi)
