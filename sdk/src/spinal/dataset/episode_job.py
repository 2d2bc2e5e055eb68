"""Convert one recorded episode into dataset pieces: resampled rows, one mp4 per camera, episode statistics.

Runs inside a converter worker process (see `spinal.dataset.workers`); takes and returns plain JSON data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import simplejpeg

from spinal.dataset.errors import EpisodeConversionError
from spinal.dataset.layout import ACTION_KEY, IMAGE_KEY_PREFIX, STATE_KEY
from spinal.dataset.stats import ImageStatsAccumulator, sample_positions, to_jsonable, vector_stats
from spinal.dataset.video import EpisodeVideoEncoder, VideoSettings
from spinal.recording import EpisodeReader, EpisodeStatus
from spinal.recording.schema import ACTION, STATE, TIMESTAMP

Emit = Callable[[dict[str, Any]], None]
PROGRESS_EVERY = 32
#: A camera frame may be taken this long after its control tick and still count as "at or before" it.
CAPTURE_SLACK_S = 1e-3


def convert_episode(job: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Run one job; errors a person can act on come back as `{"ok": false, "error": ...}`."""
    episode_dir = Path(job["episode_dir"])
    try:
        return _convert(job, episode_dir, emit)
    except EpisodeConversionError as exc:
        return {"ok": False, "episode_id": episode_dir.name, "error": str(exc)}


def _convert(job: dict[str, Any], episode_dir: Path, emit: Emit) -> dict[str, Any]:
    from spinal.recording import RecordingError

    fps = int(job["fps"])
    cameras: list[str] = list(job["cameras"])
    tolerance = float(job["camera_tolerance_s"])
    out_dir = Path(job["tmp_dir"]) / episode_dir.name
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        reader = EpisodeReader(episode_dir)
        meta = reader.metadata
        _check_compatible(meta, job)
        ts, state, action = _read_rows(reader)
        plan = _plan_rows(ts, fps)
        picks = {
            cam: _camera_positions(reader.camera_index(cam).timestamp, ts[plan], tolerance) for cam in cameras
        }
        lo, hi, stale = _trim(picks, len(plan), meta.episode_id)
        rows = plan[lo : hi + 1]
        length = len(rows)
        data_path = out_dir / "data.arrow"
        _write_rows(data_path, state[rows], action[rows])
        stats = {
            STATE_KEY: vector_stats(state[rows]),
            ACTION_KEY: vector_stats(action[rows]),
        }
        videos = {}
        for cam in cameras:
            positions = picks[cam][0][lo : hi + 1]
            spec = meta.cameras[cam]
            path = out_dir / f"{cam}.mp4"
            stats[IMAGE_KEY_PREFIX + cam] = _encode_camera(
                reader, cam, positions, path, fps, spec.width, spec.height, job, emit, len(cameras)
            )
            videos[cam] = str(path)
        frame_index = np.arange(length, dtype=np.int64)
        stats["timestamp"] = vector_stats((frame_index / fps).astype(np.float32))
        stats["frame_index"] = vector_stats(frame_index)
    except RecordingError as exc:
        raise EpisodeConversionError(str(exc)) from exc
    except OSError as exc:
        raise EpisodeConversionError(f"episode {episode_dir.name}: {exc}") from exc
    return {
        "ok": True,
        "episode_id": meta.episode_id,
        "task": meta.task,
        "status": meta.status.value,
        "length": length,
        "source_frames": int(len(ts)),
        "held_ticks": int(length - len(np.unique(rows))),
        "trimmed_rows": int(len(plan) - length),
        "stale_camera_rows": stale,
        "data_path": str(data_path),
        "videos": videos,
        "stats": to_jsonable(stats),
    }


def _check_compatible(meta: Any, job: dict[str, Any]) -> None:
    where = f"episode {meta.episode_id}"
    if meta.status in (EpisodeStatus.RECORDING, EpisodeStatus.DISCARDED):
        raise EpisodeConversionError(
            f"{where} is {meta.status.value}; only complete or recovered episodes convert"
        )
    if meta.fps != job["fps"]:
        raise EpisodeConversionError(
            f"{where} was recorded at {meta.fps} fps, the dataset is {job['fps']} fps"
        )
    if meta.state_names != job["state_names"] or meta.action_names != job["action_names"]:
        raise EpisodeConversionError(f"{where} names its joints differently from the first episode")
    wanted = {cam: tuple(size) for cam, size in job["camera_sizes"].items()}
    have = {cam: (spec.width, spec.height) for cam, spec in meta.cameras.items()}
    if have != wanted:
        raise EpisodeConversionError(f"{where} has cameras {have}, the dataset has {wanted}")


def _read_rows(reader: EpisodeReader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_state, n_action = len(reader.metadata.state_names), len(reader.metadata.action_names)
    ts, states, actions = [], [], []
    for batch in reader.iter_batches():
        n = batch.num_rows
        ts.append(batch.column(TIMESTAMP).to_numpy())
        states.append(batch.column(STATE).flatten().to_numpy().reshape(n, n_state))
        actions.append(batch.column(ACTION).flatten().to_numpy().reshape(n, n_action))
    if not ts:
        raise EpisodeConversionError(f"episode {reader.metadata.episode_id} has no frames")
    return np.concatenate(ts), np.concatenate(states), np.concatenate(actions)


def _plan_rows(ts: np.ndarray, fps: int) -> np.ndarray:
    """For each slot of the nominal fps grid, the recorded tick nearest to it (a missed tick repeats one)."""
    slots = int(np.floor((ts[-1] - ts[0]) * fps + 0.5)) + 1
    grid = ts[0] + np.arange(slots, dtype=np.float64) / fps
    right = np.clip(np.searchsorted(ts, grid, side="left"), 0, len(ts) - 1)
    left = np.clip(right - 1, 0, len(ts) - 1)
    return np.where(np.abs(ts[right] - grid) < np.abs(grid - ts[left]), right, left)


def _camera_positions(
    camera_ts: np.ndarray, row_ts: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the latest camera frame taken at or before the tick, and whether it is fresh enough."""
    if len(camera_ts) == 0:
        return np.zeros(len(row_ts), dtype=np.int64), np.zeros(len(row_ts), dtype=bool)
    pos = np.searchsorted(camera_ts, row_ts + CAPTURE_SLACK_S, side="right") - 1
    early = pos < 0
    pos = np.maximum(pos, 0)
    gap = np.where(early, camera_ts[0] - row_ts, row_ts - camera_ts[pos])
    return pos.astype(np.int64), gap <= tolerance


def _trim(
    picks: dict[str, tuple[np.ndarray, np.ndarray]], n_rows: int, episode_id: str
) -> tuple[int, int, dict[str, int]]:
    """Keep rows from the first to the last one every camera covers; count stale rows in between."""
    if not picks:
        return 0, n_rows - 1, {}
    fresh = np.logical_and.reduce([fresh for _, fresh in picks.values()])
    covered = np.flatnonzero(fresh)
    if len(covered) == 0:
        raise EpisodeConversionError(
            f"episode {episode_id}: camera frames do not line up in time with the recorded frames "
            f"(cameras {', '.join(picks)}); the camera files are empty or damaged"
        )
    lo, hi = int(covered[0]), int(covered[-1])
    stale = {cam: int((~fresh_rows[lo : hi + 1]).sum()) for cam, (_, fresh_rows) in picks.items()}
    return lo, hi, stale


def _write_rows(path: Path, state: np.ndarray, action: np.ndarray) -> None:
    def fixed(values: np.ndarray) -> pa.Array:
        values = np.ascontiguousarray(values, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])

    table = pa.table({STATE_KEY: fixed(state), ACTION_KEY: fixed(action)})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _encode_camera(
    reader: EpisodeReader,
    camera: str,
    positions: np.ndarray,
    path: Path,
    fps: int,
    width: int,
    height: int,
    job: dict[str, Any],
    emit: Emit,
    n_cameras: int,
) -> dict[str, np.ndarray]:
    settings = VideoSettings(**job["video"])
    sampled = np.zeros(len(positions), dtype=bool)
    sampled[sample_positions(len(positions))] = True
    image_stats = ImageStatsAccumulator()
    unique_positions = np.unique(positions)
    frames = reader.iter_camera_frames(camera, unique_positions.tolist())
    encoder = EpisodeVideoEncoder(path, fps=fps, width=width, height=height, settings=settings)
    try:
        current_pos, rgb = -1, None
        for row, pos in enumerate(positions):
            if pos != current_pos:
                frame = next(frames)
                rgb = _decode(frame.jpeg, camera, int(pos), width, height, reader.metadata.episode_id)
                current_pos = pos
            encoder.add(rgb)
            if sampled[row]:
                image_stats.add(rgb)
            if (row + 1) % PROGRESS_EVERY == 0:
                emit({"event": "progress", "frames": PROGRESS_EVERY / n_cameras})
        encoder.close()
    except BaseException:
        encoder.abort()
        raise
    emit({"event": "progress", "frames": (len(positions) % PROGRESS_EVERY) / n_cameras})
    return image_stats.result()


def _decode(jpeg: bytes, camera: str, pos: int, width: int, height: int, episode_id: str) -> np.ndarray:
    try:
        rgb = simplejpeg.decode_jpeg(jpeg, colorspace="RGB")
    except ValueError as exc:
        raise EpisodeConversionError(
            f"episode {episode_id}: JPEG {pos} of camera {camera} cannot be decoded ({exc})"
        ) from None
    if rgb.shape[:2] != (height, width):
        raise EpisodeConversionError(
            f"episode {episode_id}: camera {camera} frame {pos} is {rgb.shape[1]}x{rgb.shape[0]}, "
            f"episode.json says {width}x{height}"
        )
    return rgb
