"""`spinal dataset validate`: check everything LeRobot's loader relies on, one clear message per violation.

Checks info.json against LeRobot's schema, tasks, episode ranges, data rows (indices, timestamps, tasks),
video files (frame counts and presentation times per episode) and statistics. Used by the CLI and tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spinal.dataset import layout
from spinal.dataset.errors import DatasetFormatError
from spinal.dataset.reader import DatasetReader
from spinal.dataset.video import decode_frames, packet_times

_VIDEO_INFO_KEYS = ("video.height", "video.width", "video.codec", "video.pix_fmt", "video.fps")


@dataclass(frozen=True)
class Violation:
    """One thing a LeRobot loader would trip over: a short code, where it is, and what to do."""

    code: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.code}]"


@dataclass
class ValidationReport:
    root: Path
    violations: list[Violation] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, code: str, where: str, message: str) -> None:
        self.violations.append(Violation(code, where, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "violations": [asdict(v) for v in self.violations],
            "checked": self.checked,
        }


def validate_dataset(
    root: Path,
    *,
    decode: bool = False,
    tolerance_s: float = 1e-4,
    progress: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Validate the dataset at `root`; `decode=True` also decodes every video frame (slow, thorough)."""
    report = ValidationReport(Path(root))
    try:
        reader = DatasetReader(root)
    except DatasetFormatError as exc:
        report.add(
            "info.unreadable", str(Path(root) / layout.INFO_PATH), f"{exc}; convert or copy the dataset again"
        )
        return report
    step = progress or (lambda _: None)
    step("info.json")
    if not _check_info(reader, report):
        return report
    step("tasks")
    tasks = _check_tasks(reader, report)
    step("episodes")
    episodes = _check_episodes(reader, report, tasks)
    if episodes is None:
        return report
    step("data")
    _check_data(reader, report, episodes, tolerance_s)
    step("videos")
    _check_videos(reader, report, episodes, tolerance_s, decode)
    step("stats")
    _check_stats(reader, report)
    report.checked.update({"episodes": len(episodes), "frames": sum(e["length"] for e in episodes)})
    return report


# -- info.json -------------------------------------------------------------------------------------------


def _check_info(reader: DatasetReader, report: ValidationReport) -> bool:
    info, where = reader.info, layout.INFO_PATH
    ok = True
    if info.get("codebase_version") != layout.CODEBASE_VERSION:
        report.add(
            "info.version",
            where,
            f"codebase_version is {info.get('codebase_version')!r}; LeRobot v3 loaders need "
            f"{layout.CODEBASE_VERSION!r} (convert older datasets with LeRobot's v3.0 converter)",
        )
        ok = False
    for key, kind in (
        ("fps", int),
        ("total_episodes", int),
        ("total_frames", int),
        ("total_tasks", int),
        ("chunks_size", int),
        ("data_path", str),
        ("splits", dict),
    ):
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            report.add("info.field", where, f"{key!r} must be a {kind.__name__}; rewrite info.json")
            ok = False
    if isinstance(info.get("fps"), int) and info["fps"] <= 0:
        report.add("info.fps", where, "fps must be positive")
        ok = False
    data_path = info.get("data_path")
    if isinstance(data_path, str) and not ("{chunk_index" in data_path and "{file_index" in data_path):
        report.add("info.data_path", where, "data_path must contain {chunk_index} and {file_index}")
        ok = False
    features = info["features"]
    for key, ft in features.items():
        ok &= _check_feature(key, ft, report, info.get("fps"))
    for key, default in layout.DEFAULT_FEATURES.items():
        ft = features.get(key)
        if ft is None:
            report.add(
                "info.default_feature",
                where,
                f"feature {key!r} is missing; LeRobot needs it in every dataset",
            )
            ok = False
        elif isinstance(ft, dict) and (
            ft.get("dtype") != default["dtype"] or list(ft.get("shape", [])) != [1]
        ):
            report.add(
                "info.default_feature",
                where,
                f"feature {key!r} must be {default['dtype']} with shape [1], is {ft.get('dtype')} {ft.get('shape')}",
            )
            ok = False
    if layout.video_keys(features):
        video_path = info.get("video_path")
        if not isinstance(video_path, str) or "{video_key}" not in video_path:
            report.add(
                "info.video_path",
                where,
                "video_path must be a template with {video_key}, the dataset has videos",
            )
            ok = False
    return ok


def _check_feature(key: str, ft: Any, report: ValidationReport, fps: Any) -> bool:
    where = f"{layout.INFO_PATH} feature {key!r}"
    if "/" in key:
        report.add("feature.name", where, "feature names must not contain '/'; rename the feature")
        return False
    if not isinstance(ft, dict) or not isinstance(ft.get("dtype"), str):
        report.add("feature.dtype", where, "each feature needs a 'dtype' string")
        return False
    shape = ft.get("shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        report.add("feature.shape", where, "'shape' must be a list of positive integers")
        return False
    if "names" not in ft:
        report.add("feature.names", where, "'names' is missing (use null when there are none)")
        return False
    names = ft["names"]
    if isinstance(names, list) and len(shape) == 1 and shape != [1] and len(names) != shape[0]:
        report.add("feature.names", where, f"{len(names)} names for a shape of {shape}")
        return False
    if ft["dtype"] == "video":
        if len(shape) != 3:
            report.add("feature.shape", where, "a video feature's shape is [height, width, channels]")
            return False
        info = ft.get("info")
        if not isinstance(info, dict) or any(k not in info for k in _VIDEO_INFO_KEYS):
            report.add("feature.video_info", where, f"'info' must hold {', '.join(_VIDEO_INFO_KEYS)}")
            return False
        if [info["video.height"], info["video.width"]] != shape[:2]:
            report.add(
                "feature.video_info",
                where,
                f"video info says {info['video.width']}x{info['video.height']}, shape says {shape}",
            )
            return False
        if isinstance(fps, int) and info["video.fps"] != fps:
            report.add(
                "feature.video_info",
                where,
                f"video fps {info['video.fps']} differs from the dataset fps {fps}",
            )
            return False
    elif ft["dtype"] not in ("image", "string", "language"):
        try:
            layout.arrow_type(ft)
        except ValueError as exc:
            report.add("feature.dtype", where, f"{exc}")
            return False
    return True


# -- tasks and episodes ----------------------------------------------------------------------------------


def _check_tasks(reader: DatasetReader, report: ValidationReport) -> list[str]:
    try:
        tasks = reader.tasks
    except DatasetFormatError as exc:
        report.add("tasks.unreadable", layout.TASKS_PATH, f"{exc}; rewrite meta/tasks.parquet")
        return []
    if len(tasks) != reader.info["total_tasks"]:
        report.add(
            "tasks.count",
            layout.TASKS_PATH,
            f"{len(tasks)} tasks, info.json says {reader.info['total_tasks']}",
        )
    if len(set(tasks)) != len(tasks) or any(not t for t in tasks):
        report.add("tasks.unique", layout.TASKS_PATH, "task strings must be non-empty and distinct")
    return tasks


def _episode_columns(reader: DatasetReader) -> list[str]:
    columns = [
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    ]
    for key in reader.video_keys:
        columns += [
            f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
        ]
    return columns


def _check_episodes(reader: DatasetReader, report: ValidationReport, tasks: list[str]) -> list[dict] | None:
    where = layout.EPISODES_DIR
    try:
        episodes = reader.episodes
    except DatasetFormatError as exc:
        report.add("episodes.unreadable", where, f"{exc}; rewrite the episode metadata")
        return None
    missing = [c for c in _episode_columns(reader) if any(c not in e for e in episodes)]
    if missing:
        report.add(
            "episodes.columns",
            where,
            f"columns {', '.join(missing)} are missing; LeRobot reads them per episode",
        )
        return None
    _check_episode_stat_columns(reader, report)
    indices = [e["episode_index"] for e in episodes]
    if indices != list(range(len(episodes))):
        report.add("episodes.index", where, "episode_index must run 0, 1, 2, ... without gaps or repeats")
    if len(episodes) != reader.info["total_episodes"]:
        report.add(
            "episodes.count",
            where,
            f"{len(episodes)} episodes, info.json says {reader.info['total_episodes']}",
        )
    expected_split = f"0:{len(episodes)}"
    if reader.info.get("splits", {}).get("train") != expected_split:
        report.add("info.splits", layout.INFO_PATH, f"splits.train should be {expected_split!r}")
    fps = reader.fps
    position = 0
    missing_files: dict[Path, list[int]] = {}
    for ep in episodes:
        name = f"episode {ep['episode_index']}"
        length, lo, hi = ep["length"], ep["dataset_from_index"], ep["dataset_to_index"]
        if not isinstance(length, int) or length <= 0 or hi - lo != length:
            report.add(
                "episodes.length",
                name,
                f"length {length} does not equal dataset_to_index - dataset_from_index ({hi} - {lo})",
            )
        if lo != position:
            report.add(
                "episodes.contiguous",
                name,
                f"dataset_from_index is {lo}, expected {position} (episodes must tile the rows)",
            )
        position = hi
        ep_tasks = ep["tasks"] or []
        if not ep_tasks or any(t not in tasks for t in ep_tasks):
            report.add("episodes.tasks", name, f"tasks {ep_tasks} are not all in meta/tasks.parquet")
        missing_files.setdefault(reader.data_path(ep), []).append(ep["episode_index"])
        for key in reader.video_keys:
            missing_files.setdefault(reader.video_path(ep, key), []).append(ep["episode_index"])
            start, end = ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"]
            if abs((end - start) - length / fps) > 1e-3:
                report.add(
                    "episodes.video_range",
                    name,
                    f"{key} spans {start:.4f}-{end:.4f} s, which is not {length} frames at {fps} fps",
                )
    for path, users in missing_files.items():
        if not path.is_file():
            kind = "episodes.video_file" if path.suffix == ".mp4" else "episodes.data_file"
            listed = ", ".join(map(str, users[:5])) + (" ..." if len(users) > 5 else "")
            report.add(
                kind,
                str(path.relative_to(reader.root)),
                f"is missing but episode(s) {listed} point to it; copy the dataset again",
            )
    if position != reader.info["total_frames"]:
        report.add(
            "episodes.total_frames",
            where,
            f"episodes hold {position} frames, info.json says {reader.info['total_frames']}",
        )
    return episodes


def _check_episode_stat_columns(reader: DatasetReader, report: ValidationReport) -> None:
    for path in reader.episode_files():
        names = set(pq.read_schema(path).names)
        missing = [
            f"stats/{key}/{stat}"
            for key, ft in reader.features.items()
            if ft.get("dtype") not in ("string", "language")
            for stat in ("min", "max", "mean", "std", "count")
            if f"stats/{key}/{stat}" not in names
        ]
        if missing:
            report.add(
                "episodes.stats",
                str(path.relative_to(reader.root)),
                f"per-episode statistics {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} are missing; "
                "run `spinal dataset stats` to recompute them",
            )


# -- data rows -------------------------------------------------------------------------------------------


class _RowProblems:
    """Collects row-level problems per (episode, kind) so each becomes one message."""

    def __init__(self) -> None:
        self.first: dict[tuple[Any, str], str] = {}
        self.count: dict[tuple[Any, str], int] = {}

    def add(self, episode: Any, code: str, rows: np.ndarray, detail: str) -> None:
        n = int(rows.sum()) if rows.dtype == bool else len(rows)
        if n == 0:
            return
        key = (episode, code)
        self.count[key] = self.count.get(key, 0) + n
        self.first.setdefault(key, detail)


def _check_data(
    reader: DatasetReader, report: ValidationReport, episodes: list[dict], tolerance: float
) -> None:
    features = reader.features
    expected = {
        key: layout.arrow_type(features[key])
        for key in layout.data_columns(features)
        if features[key]["dtype"] not in ("image", "string", "language")
    }
    files = reader.data_files()
    if not files:
        report.add("data.missing", layout.DATA_DIR, "no data parquet files; the dataset has no rows")
        return
    for path in files:
        schema = pq.read_schema(path)
        for key, arrow in expected.items():
            index = schema.get_field_index(key)
            if index < 0:
                report.add("data.column", str(path.relative_to(reader.root)), f"column {key!r} is missing")
            elif not schema.field(index).type.equals(arrow):
                report.add(
                    "data.type",
                    str(path.relative_to(reader.root)),
                    f"column {key!r} is {schema.field(index).type}, info.json implies {arrow}",
                )
    if any(v.code in ("data.column",) for v in report.violations):
        return
    starts = np.array([e["dataset_from_index"] for e in episodes], dtype=np.int64)
    ends = np.array([e["dataset_to_index"] for e in episodes], dtype=np.int64)
    file_of = {e["episode_index"]: reader.data_path(e) for e in episodes}
    numeric = [k for k, t in expected.items() if k not in layout.INDEX_KEYS and _is_float(t)]
    problems = _RowProblems()
    next_index = 0
    fps = reader.fps
    total_tasks = (
        len(reader.tasks)
        if not any(v.code.startswith("tasks.unreadable") for v in report.violations)
        else None
    )
    columns = ["index", "episode_index", "frame_index", "timestamp", "task_index", *numeric]
    for path, batch in reader.iter_batches(columns=columns):
        rel = str(path.relative_to(reader.root))
        for column in batch.column_names:
            if batch.column(column).null_count:
                report.add("data.nulls", rel, f"column {column!r} has empty values")
        index = batch.column("index").to_numpy(zero_copy_only=False)
        if len(index) == 0:
            continue
        if index[0] != next_index or np.any(np.diff(index) != 1):
            report.add(
                "data.index",
                rel,
                f"'index' must count up by one across files; found {index[0]} where {next_index} was due",
            )
        next_index = int(index[-1]) + 1
        episode = batch.column("episode_index").to_numpy(zero_copy_only=False)
        slot = np.searchsorted(ends, index, side="right")
        valid = (slot < len(episodes)) & (index >= starts[np.minimum(slot, len(episodes) - 1)])
        expected_ep = np.where(valid, slot, -1)
        for ep_id in np.unique(episode):
            rows = episode == ep_id
            if ep_id in file_of and file_of[ep_id] != path:
                problems.add(
                    int(ep_id), "data.file", rows, f"rows are in {rel}, the episode metadata points elsewhere"
                )
            problems.add(
                int(ep_id),
                "data.episode_index",
                rows & (expected_ep != ep_id),
                "rows lie outside the episode's index range",
            )
            ok_rows = rows & (expected_ep == ep_id)
            if not ok_rows.any():
                continue
            frame = batch.column("frame_index").to_numpy(zero_copy_only=False)
            expected_frame = index - starts[int(ep_id)] if ep_id < len(starts) else frame
            bad_frame = ok_rows & (frame != expected_frame)
            problems.add(
                int(ep_id),
                "data.frame_index",
                bad_frame,
                "frame_index must count 0, 1, 2, ... within the episode",
            )
            ts = batch.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
            allowed = tolerance + np.spacing(np.abs(ts).astype(np.float32)).astype(np.float64)
            off = ok_rows & (np.abs(ts - frame / fps) > allowed)
            if off.any():
                first = int(np.flatnonzero(off)[0])
                problems.add(
                    int(ep_id),
                    "data.timestamp",
                    off,
                    f"timestamp differs from frame_index / fps by more than {tolerance} s "
                    f"(frame {frame[first]}: {ts[first]:.6f} vs {frame[first] / fps:.6f})",
                )
        task = batch.column("task_index").to_numpy(zero_copy_only=False)
        if total_tasks is not None:
            bad = (task < 0) | (task >= total_tasks)
            for ep_id in np.unique(episode[bad]):
                problems.add(
                    int(ep_id),
                    "data.task_index",
                    bad & (episode == ep_id),
                    "task_index is not in meta/tasks.parquet",
                )
        for key in numeric:
            values = batch.column(key)
            flat = values.flatten() if pa.types.is_fixed_size_list(values.type) else values
            array = flat.to_numpy(zero_copy_only=False)
            if not np.isfinite(array).all():
                report.add("data.not_finite", rel, f"column {key!r} holds NaN or infinite values")
    if next_index != reader.info["total_frames"]:
        report.add(
            "data.rows",
            layout.DATA_DIR,
            f"data files hold {next_index} rows, info.json says {reader.info['total_frames']}",
        )
    for (episode, code), detail in problems.first.items():
        report.add(code, f"episode {episode}", f"{problems.count[(episode, code)]} rows: {detail}")


def _is_float(arrow: pa.DataType) -> bool:
    inner = arrow.value_type if pa.types.is_fixed_size_list(arrow) or pa.types.is_list(arrow) else arrow
    return pa.types.is_floating(inner)


# -- videos ----------------------------------------------------------------------------------------------


def _check_videos(
    reader: DatasetReader, report: ValidationReport, episodes: list[dict], tolerance: float, decode: bool
) -> None:
    fps = reader.fps
    for key in reader.video_keys:
        info = reader.features[key]["info"]
        by_file: dict[Path, list[dict]] = {}
        for ep in episodes:
            by_file.setdefault(reader.video_path(ep, key), []).append(ep)
        for path, eps in sorted(by_file.items()):
            if not path.is_file():
                continue  # reported once with the episodes that point to it
            rel = str(path.relative_to(reader.root))
            try:
                packets = packet_times(path)
            except Exception as exc:  # PyAV raises many types for damaged files
                report.add("video.unreadable", rel, f"cannot be demuxed ({exc}); re-encode or copy it again")
                continue
            if packets.codec != info["video.codec"]:
                report.add(
                    "video.codec", rel, f"codec is {packets.codec}, info.json says {info['video.codec']}"
                )
            if (packets.width, packets.height) != (info["video.width"], info["video.height"]):
                report.add(
                    "video.size",
                    rel,
                    f"frames are {packets.width}x{packets.height}, info.json says {info['video.width']}x{info['video.height']}",
                )
            if packets.pix_fmt != info["video.pix_fmt"]:
                report.add(
                    "video.pix_fmt",
                    rel,
                    f"pixel format is {packets.pix_fmt}, info.json says {info['video.pix_fmt']}",
                )
            for ep in eps:
                start = ep[f"videos/{key}/from_timestamp"]
                length = ep["length"]
                expected = start + np.arange(length) / fps
                inside = (packets.times >= start - 0.5 / fps) & (packets.times < start + (length - 0.5) / fps)
                times = packets.times[inside]
                name = f"episode {ep['episode_index']}"
                if len(times) != length:
                    report.add(
                        "video.frame_count",
                        name,
                        f"{key} has {len(times)} frames in its range of {rel}, the episode has {length} rows",
                    )
                    continue
                worst = float(np.max(np.abs(times - expected))) if length else 0.0
                if worst > tolerance:
                    report.add(
                        "video.timestamps",
                        name,
                        f"{key} frame times are off by up to {worst:.6f} s from from_timestamp + frame_index / fps "
                        f"(LeRobot's tolerance is {tolerance} s)",
                    )
                # Without --decode only each episode's first frame is decoded (cheap, catches broken streams).
                size = (info["video.height"], info["video.width"])
                _decode_episode(path, rel, ep, key, fps, tolerance, report, size, limit=None if decode else 1)
    report.checked["video_files"] = sum(
        len({reader.video_path(ep, key) for ep in episodes}) for key in reader.video_keys
    )


def _decode_episode(path, rel, ep, key, fps, tolerance, report, size, limit: int | None = None) -> None:
    start, length = ep[f"videos/{key}/from_timestamp"], ep["length"]
    count = 0
    try:
        for t, rgb in decode_frames(path, start, length if limit is None else min(limit, length), fps):
            if rgb.shape[:2] != tuple(size):
                report.add(
                    "video.decode",
                    f"episode {ep['episode_index']}",
                    f"{key} decodes to {rgb.shape[1]}x{rgb.shape[0]}",
                )
                return
            if abs(t - (start + count / fps)) > tolerance:
                report.add(
                    "video.decode",
                    f"episode {ep['episode_index']}",
                    f"{key} decoded frame {count} is at {t:.6f} s, expected {start + count / fps:.6f} s",
                )
                return
            count += 1
    except Exception as exc:  # any decoder failure is a violation, not a crash
        report.add(
            "video.decode", f"episode {ep['episode_index']}", f"{key} in {rel} cannot be decoded ({exc})"
        )
        return
    wanted = length if limit is None else min(limit, length)
    if count != wanted:
        report.add(
            "video.decode",
            f"episode {ep['episode_index']}",
            f"{key} decoded {count} frames, expected {wanted}",
        )


# -- stats -----------------------------------------------------------------------------------------------


def _check_stats(reader: DatasetReader, report: ValidationReport) -> None:
    where = layout.STATS_PATH
    try:
        stats = reader.stats()
    except DatasetFormatError as exc:
        report.add("stats.unreadable", where, f"{exc}; run `spinal dataset stats`")
        return
    if stats is None:
        report.add(
            "stats.missing", where, "is missing; LeRobot normalizes with it (run `spinal dataset stats`)"
        )
        return
    for key, ft in reader.features.items():
        if ft.get("dtype") in ("string", "language"):
            continue
        entry = stats.get(key)
        if not isinstance(entry, dict):
            report.add("stats.feature", where, f"no statistics for {key!r}; run `spinal dataset stats`")
            continue
        absent = [s for s in layout.STAT_NAMES if s not in entry]
        if absent:
            report.add("stats.keys", where, f"{key!r} lacks {', '.join(absent)}; run `spinal dataset stats`")
            continue
        visual = ft["dtype"] in ("video", "image")
        want = (3, 1, 1) if visual else tuple(ft["shape"])
        for stat in layout.STAT_NAMES:
            value = np.asarray(entry[stat], dtype=np.float64)
            shape = (1,) if stat == "count" else want
            if value.shape != shape:
                report.add(
                    "stats.shape",
                    where,
                    f"{key!r} {stat} has shape {list(value.shape)}, expected {list(shape)}",
                )
                break
            if not np.isfinite(value).all():
                report.add("stats.value", where, f"{key!r} {stat} holds NaN or infinite values")
                break
        else:
            if np.any(
                np.asarray(entry["min"], dtype=np.float64) > np.asarray(entry["max"], dtype=np.float64)
            ):
                report.add("stats.value", where, f"{key!r} has a min above its max")
            if not (
                isinstance(entry["count"], list)
                and entry["count"]
                and entry["count"][0] > 0
                and math.isfinite(entry["count"][0])
            ):
                report.add("stats.value", where, f"{key!r} count must be a positive number")
