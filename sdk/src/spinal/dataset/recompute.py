"""`spinal dataset stats`: recompute per-episode and dataset statistics from the rows and the videos.

Rewrites the `stats/...` columns of meta/episodes and meta/stats.json; used by the CLI and before merges.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from spinal.dataset import layout
from spinal.dataset.reader import DatasetReader
from spinal.dataset.stats import (
    FeatureStats,
    ImageStatsAccumulator,
    aggregate,
    sample_positions,
    to_jsonable,
    vector_stats,
)
from spinal.dataset.writer import write_episodes


def recompute_stats(root: Path, progress: Callable[[int], None] | None = None) -> FeatureStats:
    """Recompute and write every statistic of the dataset at `root`; returns the dataset statistics."""
    reader = DatasetReader(root)
    columns = [
        key
        for key in layout.data_columns(reader.features)
        if reader.features[key]["dtype"] not in ("string", "language", "image")
    ]
    per_episode: list[FeatureStats] = []
    rows = []
    for episode in reader.episodes:
        table = reader.episode_table(episode, columns=columns)
        stats: FeatureStats = {}
        for key in columns:
            stats[key] = vector_stats(_column_array(table.column(key)))
        for key in reader.video_keys:
            stats[key] = _video_stats(reader, episode, key)
        per_episode.append({key: stats[key] for key in reader.features if key in stats})
        rows.append({k: v for k, v in episode.items() if not k.startswith("meta/episodes/")})
        if progress:
            progress(episode["length"])
    shutil.rmtree(reader.root / layout.EPISODES_DIR)
    write_episodes(
        reader.root,
        rows,
        per_episode,
        reader.features,
        int(reader.info.get("data_files_size_in_mb", layout.DEFAULT_DATA_FILE_SIZE_MB)),
        int(reader.info.get("chunks_size", layout.DEFAULT_CHUNKS_SIZE)),
    )
    dataset_stats = aggregate(per_episode)
    layout.write_json(reader.root / layout.STATS_PATH, to_jsonable(dataset_stats))
    return dataset_stats


def _column_array(column: pa.ChunkedArray) -> np.ndarray:
    column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
    return column.to_numpy(zero_copy_only=False)


def _video_stats(reader: DatasetReader, episode: dict, key: str):
    wanted = set(sample_positions(int(episode["length"])).tolist())
    accumulator = ImageStatsAccumulator()
    for position, (_, rgb) in enumerate(reader.iter_video_frames(episode, key)):
        if position in wanted:
            accumulator.add(rgb)
    return accumulator.result()
