"""`EpisodeWriter`: appends one episode's frames and camera JPEGs to crash-safe files.

Called synchronously from the edge daemon's recorder thread; cheap per frame (no JPEG decode, batched Arrow).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from spinal.fsutil import fsync_dir
from spinal.recording import _index
from spinal.recording.errors import InvalidFrameError, RecordingStateError
from spinal.recording.metadata import (
    FRAMES_FILE,
    FRAMES_INDEX_FILE,
    SO101_ROBOT_TYPE,
    CameraSpec,
    EpisodeMetadata,
    EpisodeStatus,
    FrameMode,
    camera_files,
    is_valid_episode_id,
    save_metadata,
    utc_now_iso,
)
from spinal.recording.schema import END_OF_STREAM, ActionSource, frames_schema

_MODES = frozenset(m.value for m in FrameMode)
_JPEG_SOI = b"\xff\xd8"
_DATA_BUFFER = 1 << 20


class _CameraStream:
    """One camera's MJPEG file and index; index records wait in memory until the JPEG bytes are durable."""

    def __init__(self, episode_dir: Path, name: str) -> None:
        mjpeg_name, index_name = camera_files(name)
        self.name = name
        self.data: BinaryIO = open(episode_dir / mjpeg_name, "xb", buffering=_DATA_BUFFER)  # noqa: SIM115
        self.index: BinaryIO = open(episode_dir / index_name, "xb")  # noqa: SIM115
        self.index.write(_index.pack_header(_index.KIND_CAMERA, 0))
        self.offset = 0
        self.count = 0
        self.last_timestamp = -math.inf
        self.pending = bytearray()


class EpisodeWriter:
    """Writes one episode under `root/episode_id`; not thread-safe (one recorder thread owns it).

    Timestamps are seconds since the episode started on the monotonic clock (see `since_start`).
    Call `sync()` at least once a second (or rely on `auto_sync_s`), then `close()`.
    """

    def __init__(
        self,
        root: Path,
        *,
        episode_id: str,
        task: str,
        fps: int,
        state_names: Sequence[str],
        action_names: Sequence[str] | None = None,
        cameras: Mapping[str, CameraSpec | tuple[int, int]] | None = None,
        robot_type: str = SO101_ROBOT_TYPE,
        batch_frames: int = 256,
        auto_sync_s: float | None = 1.0,
        started_monotonic_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not is_valid_episode_id(episode_id):
            raise InvalidFrameError(
                f"episode id {episode_id!r} is not a safe directory name; use letters, digits, '.', '_', '-'"
            )
        if batch_frames < 1:
            raise InvalidFrameError(f"batch_frames must be at least 1, got {batch_frames}")
        specs = {
            name: spec if isinstance(spec, CameraSpec) else CameraSpec(width=spec[0], height=spec[1])
            for name, spec in (cameras or {}).items()
        }
        try:
            self._metadata = EpisodeMetadata(
                episode_id=episode_id,
                task=task,
                fps=fps,
                robot_type=robot_type,
                state_names=list(state_names),
                action_names=list(action_names if action_names is not None else state_names),
                cameras=specs,
                started_at=utc_now_iso(),
                camera_frame_counts=dict.fromkeys(specs, 0),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise InvalidFrameError(f"episode {episode_id}: {exc}") from exc
        self._clock = clock
        self.started_monotonic_s = clock() if started_monotonic_s is None else started_monotonic_s
        self._auto_sync_s = auto_sync_s
        self._dir = Path(root) / episode_id
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
            self._dir.mkdir()
        except FileExistsError:
            raise RecordingStateError(
                f"episode directory {self._dir} exists already; choose a new episode id"
            ) from None
        save_metadata(self._dir, self._metadata)

        self._schema = frames_schema()
        schema_bytes = self._schema.serialize().to_pybytes()
        self._frames: BinaryIO = open(self._dir / FRAMES_FILE, "xb", buffering=_DATA_BUFFER)  # noqa: SIM115
        self._frames.write(schema_bytes)
        self._frames_offset = len(schema_bytes)
        self._frames_index: BinaryIO = open(self._dir / FRAMES_INDEX_FILE, "xb")  # noqa: SIM115
        self._frames_index.write(_index.pack_header(_index.KIND_FRAMES, len(schema_bytes)))
        self._pending_frame_records = bytearray()
        self._cameras = {name: _CameraStream(self._dir, name) for name in specs}

        n_state, n_action = len(self._metadata.state_names), len(self._metadata.action_names)
        self._capacity = batch_frames
        self._state = np.empty((batch_frames, n_state), dtype=np.float32)
        self._action = np.empty((batch_frames, n_action), dtype=np.float32)
        self._timestamps = np.empty(batch_frames, dtype=np.float64)
        self._modes: list[str] = []
        self._sessions: list[str | None] = []
        self._seqs: list[int | None] = []
        self._source_episodes: list[int | None] = []
        self._state_offsets = pa.array(np.arange(0, (batch_frames + 1) * n_state, n_state, dtype=np.int32))
        self._action_offsets = pa.array(np.arange(0, (batch_frames + 1) * n_action, n_action, dtype=np.int32))
        self._rows = 0
        self._frame_count = 0
        self._batch_first_index = 0
        self._last_timestamp = -math.inf
        self._closed = False
        self._rejected = 0
        self._bytes_written = len(schema_bytes)
        self._last_sync = clock()
        self.sync()
        fsync_dir(self._dir)

    # -- what the recorder thread calls -------------------------------------------------------------

    @property
    def episode_dir(self) -> Path:
        return self._dir

    @property
    def metadata(self) -> EpisodeMetadata:
        return self._metadata.model_copy(deep=True)

    @property
    def frame_count(self) -> int:
        return self._frame_count

    @property
    def rejected(self) -> int:
        """How many frames and camera images were refused as invalid (for the daemon's counters)."""
        return self._rejected

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the files so far (for the daemon's disk-space guard)."""
        return self._bytes_written

    def since_start(self, monotonic_s: float) -> float:
        """Convert a monotonic-clock instant to seconds since the episode started."""
        return monotonic_s - self.started_monotonic_s

    def append_frame(
        self,
        *,
        timestamp: float,
        state: Sequence[float] | np.ndarray,
        action: Sequence[float] | np.ndarray,
        mode: str = FrameMode.IDLE,
        source: ActionSource | None = None,
    ) -> int:
        """Append one control-loop frame; returns its frame index."""
        self._check_open()
        if not (math.isfinite(timestamp) and timestamp >= self._last_timestamp and timestamp >= 0):
            raise self._reject(
                f"frame timestamp {timestamp!r} must be finite, >= 0 and not before the previous frame "
                f"({self._last_timestamp}); pass seconds since the episode start on the monotonic clock"
            )
        if mode not in _MODES:
            raise self._reject(f"frame mode {mode!r} is not one of {sorted(_MODES)}")
        row = self._rows
        try:
            self._state[row] = state
            self._action[row] = action
        except (ValueError, TypeError) as exc:
            raise self._reject(
                f"state must have {self._state.shape[1]} and action {self._action.shape[1]} numbers ({exc})"
            ) from None
        if not (np.isfinite(self._state[row]).all() and np.isfinite(self._action[row]).all()):
            raise self._reject("state and action must be finite numbers (no NaN or inf)")
        self._timestamps[row] = timestamp
        self._modes.append(str(mode))
        if source is None:
            self._sessions.append(None)
            self._seqs.append(None)
            self._source_episodes.append(None)
        else:
            self._sessions.append(str(source.session_id))
            self._seqs.append(int(source.seq_id))
            self._source_episodes.append(int(source.episode_id))
        self._rows = row + 1
        self._last_timestamp = timestamp
        index = self._frame_count
        self._frame_count += 1
        if self._rows == self._capacity:
            self._write_batch()
        self._maybe_auto_sync()
        return index

    def append_camera_frame(self, camera: str, jpeg: bytes | bytearray | memoryview, timestamp: float) -> int:
        """Append one camera JPEG exactly as captured (no decode); returns the camera's frame index."""
        self._check_open()
        stream = self._cameras.get(camera)
        if stream is None:
            raise self._reject(f"camera {camera!r} is not part of this episode ({sorted(self._cameras)})")
        if len(jpeg) < 4 or bytes(jpeg[:2]) != _JPEG_SOI:
            raise self._reject(f"camera {camera!r} frame is not a JPEG (it must start with FF D8)")
        if not (math.isfinite(timestamp) and timestamp >= stream.last_timestamp and timestamp >= 0):
            raise self._reject(
                f"camera {camera!r} timestamp {timestamp!r} must be finite, >= 0 and not before the previous one"
            )
        length = len(jpeg)
        stream.data.write(jpeg)
        stream.pending += _index.pack_record(
            stream.count, timestamp, stream.offset, length, 1, zlib.crc32(jpeg)
        )
        stream.offset += length
        stream.last_timestamp = timestamp
        index = stream.count
        stream.count += 1
        self._bytes_written += length + _index.RECORD_SIZE
        self._maybe_auto_sync()
        return index

    def sync(self) -> None:
        """Make everything appended so far durable (write the open batch, flush, fsync data then indexes)."""
        self._check_open()
        if self._rows:
            self._write_batch()
        self._frames.flush()
        os.fsync(self._frames.fileno())
        for stream in self._cameras.values():
            stream.data.flush()
            os.fsync(stream.data.fileno())
        # Index records are written only once the bytes they point to are on disk.
        self._frames_index.write(self._pending_frame_records)
        self._pending_frame_records.clear()
        self._frames_index.flush()
        os.fsync(self._frames_index.fileno())
        for stream in self._cameras.values():
            stream.index.write(stream.pending)
            stream.pending.clear()
            stream.index.flush()
            os.fsync(stream.index.fileno())
        self._last_sync = self._clock()

    def close(
        self, status: EpisodeStatus | str = EpisodeStatus.COMPLETE, *, stop_reason: str = ""
    ) -> EpisodeMetadata:
        """Finish the episode with `status` (complete or discarded) and return its final metadata.

        `stop_reason` (why the recorder ended it) is kept in episode.json for whoever lists the episode later.
        """
        status = EpisodeStatus(status)
        if status not in (EpisodeStatus.COMPLETE, EpisodeStatus.DISCARDED):
            raise InvalidFrameError(f"an episode closes as complete or discarded, not {status.value}")
        self._check_open()
        self.sync()
        self._frames.write(END_OF_STREAM)
        self._frames.flush()
        os.fsync(self._frames.fileno())
        self._release_files()
        self._closed = True
        meta = self._metadata
        meta.status = status
        meta.frame_count = self._frame_count
        meta.duration_s = max(self._last_timestamp, 0.0) if self._frame_count else 0.0
        meta.camera_frame_counts = {name: s.count for name, s in self._cameras.items()}
        meta.ended_at = utc_now_iso()
        meta.stop_reason = stop_reason
        save_metadata(self._dir, meta)
        return self.metadata

    def abandon(self) -> None:
        """Release the files without finishing, as a crash would (the episode stays `recording`)."""
        if not self._closed:
            self._release_files()
            self._closed = True

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.close()
        else:
            # Keep what is there durable; start-up recovery will mark the episode recovered.
            try:
                self.sync()
            finally:
                self.abandon()

    # -- internals ----------------------------------------------------------------------------------

    def _reject(self, message: str) -> InvalidFrameError:
        self._rejected += 1
        return InvalidFrameError(message)

    def _check_open(self) -> None:
        if self._closed:
            raise RecordingStateError(f"episode {self._metadata.episode_id} is closed; start a new writer")

    def _maybe_auto_sync(self) -> None:
        if self._auto_sync_s is not None and self._clock() - self._last_sync >= self._auto_sync_s:
            self.sync()

    def _write_batch(self) -> None:
        n = self._rows
        n_state, n_action = self._state.shape[1], self._action.shape[1]
        state = pa.ListArray.from_arrays(
            self._state_offsets.slice(0, n + 1), pa.array(self._state[:n].reshape(n * n_state))
        )
        action = pa.ListArray.from_arrays(
            self._action_offsets.slice(0, n + 1), pa.array(self._action[:n].reshape(n * n_action))
        )
        first = self._batch_first_index
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(self._timestamps[:n].copy()),
                pa.array(np.arange(first, first + n, dtype=np.int64)),
                state,
                action,
                pa.array(self._modes, pa.string()),
                pa.array(self._sessions, pa.string()),
                pa.array(self._seqs, pa.int64()),
                pa.array(self._source_episodes, pa.int64()),
            ],
            schema=self._schema,
        )
        message = batch.serialize()
        self._frames.write(message)
        self._pending_frame_records += _index.pack_record(
            first, float(self._timestamps[0]), self._frames_offset, message.size, n, zlib.crc32(message)
        )
        self._frames_offset += message.size
        self._bytes_written += message.size + _index.RECORD_SIZE
        self._batch_first_index = first + n
        self._rows = 0
        self._modes.clear()
        self._sessions.clear()
        self._seqs.clear()
        self._source_episodes.clear()

    def _release_files(self) -> None:
        for f in (self._frames, self._frames_index):
            f.close()
        for stream in self._cameras.values():
            stream.data.close()
            stream.index.close()
