"""`spinal dataset merge A B ... OUT`: concatenate LeRobotDataset v3.0 datasets into a new one.

Episodes keep their order (A's, then B's ...), tasks are unified by their text, rows are re-indexed, and
videos are copied packet by packet into new size-chunked files (no re-encoding). Used by the CLI and tests.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spinal.dataset import layout
from spinal.dataset.card import write_card
from spinal.dataset.errors import DatasetError, MergeError
from spinal.dataset.reader import DatasetReader
from spinal.dataset.video import VideoSegment
from spinal.dataset.writer import DatasetWriter, EpisodeInput

_VIDEO_SIGNATURE = ("video.codec", "video.pix_fmt", "video.width", "video.height")
_DERIVED = ("episode_index", "index", "task_index")
_CARRIED_INFO = ("tools",)


@dataclass(frozen=True)
class MergeReport:
    output: Path
    sources: list[str]
    episodes: int
    frames: int
    tasks: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "sources": self.sources,
            "episodes": self.episodes,
            "frames": self.frames,
            "tasks": self.tasks,
        }


def merge_datasets(
    sources: list[Path],
    output: Path,
    *,
    repo_id: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> MergeReport:
    """Merge `sources` into `output` (which must not hold anything unless `overwrite`)."""
    if len(sources) < 2:
        raise MergeError("merge needs at least two datasets")
    readers = [DatasetReader(Path(s)) for s in sources]
    first = readers[0]
    for reader in readers[1:]:
        _check_compatible(first, reader)
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        if not overwrite or not (output / layout.INFO_PATH).exists():
            raise MergeError(
                f"{output} is not empty; choose a new output folder (or --overwrite an old dataset)"
            )
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    features = {key: {k: v for k, v in ft.items() if k != "info"} for key, ft in first.features.items()}
    # Columns that only a layer above spinal.dataset understands (language annotations) are copied with the
    # types their files already have, and info.json keys such as the declared tools travel with them.
    writer = DatasetWriter(
        output,
        fps=first.fps,
        robot_type=first.info.get("robot_type"),
        features=features,
        chunks_size=int(first.info.get("chunks_size", layout.DEFAULT_CHUNKS_SIZE)),
        data_files_size_in_mb=int(first.info.get("data_files_size_in_mb", layout.DEFAULT_DATA_FILE_SIZE_MB)),
        video_files_size_in_mb=int(
            first.info.get("video_files_size_in_mb", layout.DEFAULT_VIDEO_FILE_SIZE_MB)
        ),
        data_schema=_data_schema(first),
        extra_info={k: first.info[k] for k in _CARRIED_INFO if k in first.info},
    )
    try:
        for reader in readers:
            _copy_episodes(reader, writer, progress)
        writer.finish()
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    write_card(output, repo_id or output.name)
    return MergeReport(
        output,
        [str(s) for s in sources],
        writer.total_episodes,
        writer.total_frames,
        len(DatasetReader(output).tasks),
    )


def _data_schema(reader: DatasetReader) -> pa.Schema:
    return pq.read_schema(reader.data_files()[0])


def _check_compatible(a: DatasetReader, b: DatasetReader) -> None:
    where = f"{b.root} and {a.root}"
    for key in _CARRIED_INFO:
        if a.info.get(key) != b.info.get(key):
            raise MergeError(f"{where} declare different {key!r} in meta/info.json; make them equal first")
    schema_a, schema_b = _data_schema(a), _data_schema(b)
    for field in schema_a:
        if field.name in schema_b.names and schema_b.field(field.name).type != field.type:
            raise MergeError(f"column {field.name!r} has different types in the data files of {where}")
    if a.fps != b.fps:
        raise MergeError(f"{where} have different fps ({b.fps} vs {a.fps}); resample one of them first")
    if a.info.get("robot_type") != b.info.get("robot_type"):
        raise MergeError(
            f"{where} come from different robots ({b.info.get('robot_type')} vs {a.info.get('robot_type')})"
        )
    if list(a.features) != list(b.features):
        raise MergeError(f"{where} have different features ({list(b.features)} vs {list(a.features)})")
    for key, ft in a.features.items():
        other = b.features[key]
        for field in ("dtype", "shape", "names"):
            if ft.get(field) != other.get(field):
                raise MergeError(f"feature {key!r} differs in {field} between {where}")
        if ft.get("dtype") == "video":
            mine, theirs = ft.get("info", {}), other.get("info", {})
            for field in _VIDEO_SIGNATURE:
                if mine.get(field) != theirs.get(field):
                    raise MergeError(
                        f"video {key!r} differs in {field} ({theirs.get(field)} vs {mine.get(field)}) between {where}; "
                        "videos are copied without re-encoding, so they must match"
                    )
        elif ft.get("dtype") in ("image",):
            raise MergeError(f"feature {key!r} stores images in parquet; only video datasets can be merged")


def _copy_episodes(
    reader: DatasetReader, writer: DatasetWriter, progress: Callable[[int], None] | None
) -> None:
    tasks = reader.tasks
    episode_stats = reader.episode_stats()
    if len(episode_stats) != len(reader.episodes):
        raise MergeError(
            f"{reader.root}: per-episode statistics are missing; run `spinal dataset stats` on it first"
        )
    for episode, stats in zip(reader.episodes, episode_stats, strict=True):
        columns = [c for c in layout.data_columns(reader.features) if c not in _DERIVED[:2]]
        table = reader.episode_table(episode, columns=columns)
        task_index = table.column("task_index").to_numpy()
        used = list(dict.fromkeys(task_index.tolist()))
        try:
            ep_tasks = [tasks[i] for i in used]
        except IndexError:
            raise MergeError(
                f"{reader.root}: episode {episode['episode_index']} uses a task_index not in tasks.parquet"
            ) from None
        lookup = np.zeros(max(used) + 1, dtype=np.int64)
        lookup[used] = np.arange(len(used))
        videos = {
            key: VideoSegment(
                reader.video_path(episode, key),
                float(episode[f"videos/{key}/from_timestamp"]),
                episode["length"],
            )
            for key in reader.video_keys
        }
        kept = {key: value for key, value in stats.items() if key not in _DERIVED}
        try:
            writer.add_episode(
                EpisodeInput(
                    data=table.drop_columns(["task_index"]),
                    tasks=ep_tasks,
                    videos=videos,
                    stats=kept,
                    row_tasks=lookup[task_index],
                )
            )
        except DatasetError as exc:
            raise MergeError(f"{reader.root}: episode {episode['episode_index']}: {exc}") from exc
        if progress:
            progress(episode["length"])
