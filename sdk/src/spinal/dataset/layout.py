"""The LeRobotDataset v3.0 layout: paths, default features, and how features map to Arrow types.

Shared by the writer, reader, validator and merge so every part agrees with what LeRobot loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_MB = 100
DEFAULT_VIDEO_FILE_SIZE_MB = 200

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"
VIDEO_DIR = "videos"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = DATA_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = VIDEO_DIR + "/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

IMAGE_KEY_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"
INDEX_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")

#: The columns LeRobot adds to every dataset, with the dtypes it gives them.
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

STAT_NAMES = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}

_ARROW_SCALARS = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "int16": pa.int16(),
    "int8": pa.int8(),
    "uint8": pa.uint8(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def data_file(chunk_index: int, file_index: int) -> str:
    return DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)


def episodes_file(chunk_index: int, file_index: int) -> str:
    return EPISODES_PATH.format(chunk_index=chunk_index, file_index=file_index)


def video_file(video_key: str, chunk_index: int, file_index: int) -> str:
    return VIDEO_PATH.format(video_key=video_key, chunk_index=chunk_index, file_index=file_index)


def next_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The (chunk, file) after this one: files fill a chunk up to `chunks_size`, then a new chunk starts."""
    if file_index + 1 >= chunks_size:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


def is_visual(feature: dict[str, Any]) -> bool:
    return feature.get("dtype") in ("video", "image")


def data_columns(features: dict[str, dict[str, Any]]) -> list[str]:
    """Columns of the data parquet: every feature except videos, in info.json order."""
    return [key for key, ft in features.items() if ft.get("dtype") != "video"]


def arrow_type(feature: dict[str, Any]) -> pa.DataType:
    """The Arrow type LeRobot (through HF datasets) stores a non-video feature as."""
    dtype, shape = feature["dtype"], list(feature["shape"])
    if dtype not in _ARROW_SCALARS:
        raise ValueError(f"feature dtype {dtype!r} is not supported in data files")
    scalar = _ARROW_SCALARS[dtype]
    if shape == [1]:
        return scalar
    if len(shape) == 1:
        return pa.list_(scalar, shape[0])
    raise ValueError(f"feature shape {shape} is not supported (only scalars and vectors)")


def hf_feature(feature: dict[str, Any]) -> dict[str, Any]:
    """The HF `datasets` feature description (the `huggingface` schema metadata) of one feature."""
    shape = list(feature["shape"])
    value = {"dtype": feature["dtype"], "_type": "Value"}
    if shape == [1]:
        return value
    return {"feature": value, "length": shape[0], "_type": "List"}


def data_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    """The Arrow schema of data parquet files, with the HF metadata LeRobot's writer puts there."""
    columns = data_columns(features)
    fields = [pa.field(key, arrow_type(features[key])) for key in columns]
    hf = {"info": {"features": {key: hf_feature(features[key]) for key in columns}}}
    return pa.schema(fields, metadata={"huggingface": json.dumps(hf)})


def video_keys(features: dict[str, dict[str, Any]]) -> list[str]:
    return [key for key, ft in features.items() if ft.get("dtype") == "video"]


def so101_features(
    state_names: list[str], action_names: list[str], cameras: dict[str, tuple[int, int]]
) -> dict[str, dict[str, Any]]:
    """Features of an SO-101 style dataset: state, action, one video per camera (width, height), defaults."""
    features: dict[str, dict[str, Any]] = {
        STATE_KEY: {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)},
        ACTION_KEY: {"dtype": "float32", "shape": [len(action_names)], "names": list(action_names)},
    }
    for camera, (width, height) in cameras.items():
        features[IMAGE_KEY_PREFIX + camera] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
        }
    features.update(json.loads(json.dumps(DEFAULT_FEATURES)))
    return features


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=4, ensure_ascii=False) + "\n")
