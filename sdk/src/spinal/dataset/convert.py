"""Convert a folder of spinal recordings into a LeRobotDataset v3.0 (`spinal dataset convert`).

Episodes are converted in parallel worker processes, then assembled in the order they were recorded (start time
in episode.json, then id), so the same input always gives byte-identical parquet files. A broken episode is reported and skipped; the rest convert.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from spinal.dataset import layout
from spinal.dataset.card import write_card
from spinal.dataset.errors import ConversionError, EpisodeConversionError
from spinal.dataset.stats import from_jsonable
from spinal.dataset.video import VideoSegment, VideoSettings
from spinal.dataset.workers import EpisodeWorkerPool
from spinal.dataset.writer import DatasetWriter, EpisodeInput
from spinal.recording import EpisodeMetadata, EpisodeStatus, RecordingError, load_metadata

TMP_DIR_NAME = ".spinal-convert-tmp"


@dataclass(frozen=True)
class ConvertOptions:
    """Knobs of a conversion; the defaults match LeRobot's own chunking."""

    repo_id: str
    video: VideoSettings = field(default_factory=VideoSettings)
    workers: int = 2
    chunks_size: int = layout.DEFAULT_CHUNKS_SIZE
    data_files_size_in_mb: int = layout.DEFAULT_DATA_FILE_SIZE_MB
    video_files_size_in_mb: int = layout.DEFAULT_VIDEO_FILE_SIZE_MB
    #: How stale (s) a camera frame may be for a row before the row counts as not covered by that camera;
    #: None means 2.5 frame periods.
    camera_tolerance_s: float | None = None
    overwrite: bool = False


@dataclass
class EpisodeOutcome:
    """What happened to one recorded episode."""

    episode_id: str
    converted: bool
    episode_index: int | None = None
    frames: int = 0
    reason: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConvertReport:
    """The result of a conversion, for people (`summary`) and scripts (`to_dict`)."""

    output: Path
    repo_id: str
    codec: str
    episodes: list[EpisodeOutcome]
    total_frames: int
    seconds: float

    @property
    def converted(self) -> list[EpisodeOutcome]:
        return [e for e in self.episodes if e.converted]

    @property
    def failed(self) -> list[EpisodeOutcome]:
        return [e for e in self.episodes if not e.converted]

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["output"] = str(self.output)
        return payload


ProgressHook = Callable[[str, float], None]


def find_recordings(raw_dir: Path) -> list[Path]:
    """Episode directories (those holding an episode.json) directly under `raw_dir`, sorted by id."""
    if not raw_dir.is_dir():
        raise ConversionError(f"{raw_dir} is not a folder; pass the folder that holds the episode folders")
    return sorted(p for p in raw_dir.iterdir() if p.is_dir() and (p / "episode.json").is_file())


def recording_order(episode_id: str, meta: EpisodeMetadata | None) -> tuple[bool, datetime, str]:
    """Sort key: episodes in the order they were recorded (`started_at`), then by id; unknown starts last.

    Not the id alone: ids of another recorder, or of episodes started within one second, need not sort in
    start order.
    """
    started = _parse_time(meta.started_at) if meta is not None else None
    return (started is None, started or _NO_TIME, episode_id)


def _parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def convert_recordings(
    raw_dir: Path, out_dir: Path, options: ConvertOptions, progress: ProgressHook | None = None
) -> ConvertReport:
    """Convert every usable episode under `raw_dir` into a dataset at `out_dir`.

    `progress(kind, amount)` is called with ("total", frames) once, then ("frames", n) as work is done.
    Raises `ConversionError` when nothing can be converted or the output folder is unusable.
    """
    started = time.monotonic()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    video = options.video.resolved()
    episode_dirs = find_recordings(raw_dir)
    _prepare_output(out_dir, options.overwrite)
    outcomes: dict[str, EpisodeOutcome] = {}
    candidates: list[tuple[Path, EpisodeMetadata]] = []
    for episode_dir in episode_dirs:
        try:
            meta = load_metadata(episode_dir)
        except RecordingError as exc:
            outcomes[episode_dir.name] = EpisodeOutcome(episode_dir.name, False, reason=str(exc))
            continue
        if meta.status in (EpisodeStatus.RECORDING, EpisodeStatus.DISCARDED):
            outcomes[episode_dir.name] = EpisodeOutcome(
                episode_dir.name,
                False,
                reason=f"status is {meta.status.value}; only complete or recovered episodes are converted",
            )
            continue
        candidates.append((episode_dir, meta))
    candidates.sort(key=lambda item: recording_order(item[0].name, item[1]))
    if not candidates:
        shutil.rmtree(out_dir, ignore_errors=True)
        detail = "; ".join(f"{o.episode_id}: {o.reason}" for o in outcomes.values()) or "none found"
        raise ConversionError(f"no convertible episode under {raw_dir} ({detail})")

    reference = candidates[0][1]
    fps = reference.fps
    tolerance = options.camera_tolerance_s if options.camera_tolerance_s is not None else 2.5 / fps
    tmp = out_dir / TMP_DIR_NAME
    tmp.mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "episode_dir": str(episode_dir),
            "tmp_dir": str(tmp),
            "fps": fps,
            "state_names": reference.state_names,
            "action_names": reference.action_names,
            "cameras": list(reference.cameras),
            "camera_sizes": {cam: [spec.width, spec.height] for cam, spec in reference.cameras.items()},
            "camera_tolerance_s": tolerance,
            "video": asdict(video),
        }
        for episode_dir, _ in candidates
    ]
    if progress:
        progress("total", float(sum(meta.frame_count for _, meta in candidates)))
    features = layout.so101_features(
        reference.state_names,
        reference.action_names,
        {cam: (spec.width, spec.height) for cam, spec in reference.cameras.items()},
    )
    writer = DatasetWriter(
        out_dir,
        fps=fps,
        robot_type=reference.robot_type,
        features=features,
        chunks_size=options.chunks_size,
        data_files_size_in_mb=options.data_files_size_in_mb,
        video_files_size_in_mb=options.video_files_size_in_mb,
    )

    def on_event(message: dict[str, Any]) -> None:
        if progress and message.get("event") == "progress":
            progress("frames", float(message.get("frames", 0)))

    results: dict[int, dict[str, Any]] = {}
    next_position = 0
    try:
        for position, result in EpisodeWorkerPool(options.workers).run(jobs, on_event):
            results[position] = result
            while next_position in results:
                episode_dir = candidates[next_position][0]
                outcomes[episode_dir.name] = _assemble(
                    writer, results.pop(next_position), episode_dir.name, fps
                )
                next_position += 1
        if writer.total_episodes == 0:
            detail = "; ".join(f"{o.episode_id}: {o.reason}" for o in outcomes.values())
            raise ConversionError(f"no episode under {raw_dir} could be converted ({detail})")
        writer.finish()
        write_card(out_dir, options.repo_id)
    except BaseException:
        if writer.total_episodes == 0:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    starts = {episode_dir.name: meta for episode_dir, meta in candidates}
    ordered = [outcomes[name] for name in sorted(outcomes, key=lambda n: recording_order(n, starts.get(n)))]
    return ConvertReport(
        out_dir, options.repo_id, video.codec, ordered, writer.total_frames, time.monotonic() - started
    )


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise ConversionError(f"{out_dir} is not empty; choose a new output folder or pass --overwrite")
        if not (out_dir / layout.INFO_PATH).exists() and not (out_dir / TMP_DIR_NAME).exists():
            raise ConversionError(
                f"{out_dir} is not empty and does not hold a dataset; refusing to overwrite it"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def _assemble(writer: DatasetWriter, result: dict[str, Any], name: str, fps: int) -> EpisodeOutcome:
    if not result.get("ok"):
        return EpisodeOutcome(name, False, reason=result.get("error", "unknown error"))
    try:
        try:
            with pa.memory_map(result["data_path"], "r") as source:
                data = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowException) as exc:
            return EpisodeOutcome(name, False, reason=f"its converted rows cannot be read back: {exc}")
        length = result["length"]
        videos = {
            layout.IMAGE_KEY_PREFIX + cam: VideoSegment(Path(path), 0.0, length)
            for cam, path in result["videos"].items()
        }
        try:
            written = writer.add_episode(
                EpisodeInput(
                    data=data, tasks=[result["task"]], videos=videos, stats=from_jsonable(result["stats"])
                )
            )
        except EpisodeConversionError as exc:  # rejected before anything was written
            return EpisodeOutcome(name, False, reason=str(exc))
    finally:
        for path in [result.get("data_path"), *result.get("videos", {}).values()]:
            if path:
                Path(path).unlink(missing_ok=True)
    notes = {
        key: result[key]
        for key in ("status", "source_frames", "held_ticks", "trimmed_rows", "stale_camera_rows")
        if key in result
    }
    return EpisodeOutcome(name, True, written.episode_index, written.length, notes=notes)
