"""The episode recorder: a writer thread that appends the loop's frames and the cameras' JPEGs to crash-safe files.

The control loop offers values without waiting (a full queue refuses and counts); the API starts, stops and
discards episodes through commands the thread executes. A disk-space guard stops recording cleanly before the
data partition fills; on start-up, episodes torn by a crash are recovered (`spinal.recording`).
"""

from __future__ import annotations

import logging
import math
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from spinal.recording import (
    ActionSource,
    CameraSpec,
    EpisodeIdSequence,
    EpisodeStatus,
    EpisodeWriter,
    RecordingError,
    recover_recordings,
)

from spinal_edge.cameras.frames import CameraFrame
from spinal_edge.control.ports import ActionOrigin, RobotMode
from spinal_edge.errors import DiskFullError, EpisodeError, RecorderError
from spinal_edge.settings import RecordingSettings
from spinal_edge.warnings_log import WarningLog

log = logging.getLogger(__name__)

_DISK_CHECK_S = 0.5
_COMMAND_TIMEOUT_S = 15.0
#: Stop reasons for the two time limits: the one the client asked for at start, and the config's.
MAX_DURATION_REASON = "max duration"
MAX_EPISODE_S_REASON = "max_episode_s reached"


class RecorderState(StrEnum):
    IDLE = "idle"
    RECORDING = "recording"
    DISK_FULL = "disk_full"  # stopped by the disk guard; a new episode needs free space
    ERROR = "error"  # the last episode ended on a write error


@dataclass
class EpisodeSummary:
    """One episode as the API reports it."""

    episode_id: str
    task: str
    status: str
    frames: int = 0
    camera_frames: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    bytes_written: int = 0
    stop_reason: str = ""
    max_duration_s: float | None = None  # the limit the client asked for at start, if any


@dataclass(frozen=True, slots=True)
class _Frame:
    token: int
    t_mono_ns: int
    state: np.ndarray
    action: np.ndarray
    mode: str
    origin: ActionOrigin | None


@dataclass(frozen=True, slots=True)
class _CameraItem:
    token: int
    frame: CameraFrame


@dataclass
class _Command:
    name: str
    args: dict[str, Any]
    reply: Future[EpisodeSummary]


class EpisodeRecorder:
    """Owns the `EpisodeWriter` of the current episode; every file operation happens on its thread."""

    def __init__(
        self,
        episodes_dir: Path,
        settings: RecordingSettings,
        *,
        fps: float,
        joint_names: Sequence[str],
        camera_sizes: Callable[[], dict[str, tuple[int, int]]],
        warnings: WarningLog | None = None,
        free_bytes: Callable[[Path], int] | None = None,
    ) -> None:
        self.episodes_dir = Path(episodes_dir)
        self.settings = settings
        self.fps = fps
        self.joint_names = tuple(joint_names)
        self._camera_sizes = camera_sizes
        self.warnings = warnings or WarningLog()
        self._free_bytes = free_bytes or (lambda p: shutil.disk_usage(p).free)
        self._data: queue.Queue[_Frame | _CameraItem] = queue.Queue(maxsize=settings.queue_frames)
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: EpisodeWriter | None = None
        self._current: EpisodeSummary | None = None
        self._episode_ids = EpisodeIdSequence()  # ids sort in start order within this run
        self._token = 0
        self._recording_token = 0  # the loop offers only while this is non-zero
        self._started_ns = 0
        self._last_sync = 0.0
        self._last_disk_check = 0.0
        self.state = RecorderState.IDLE
        self.last_episode: EpisodeSummary | None = None
        self.last_error = ""
        self.free_bytes_seen: int | None = None
        self.refused = 0  # offers refused because the queue was full
        self._refused_reported = 0
        self.rejected = 0  # items the writer refused (out-of-order or invalid), counted and skipped
        self.episodes_finished = 0
        self.recovered: list[str] = []

    # -- the loop side (never blocks) -----------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._recording_token != 0

    def offer_frame(
        self,
        t_mono_ns: int,
        state: np.ndarray,
        action: np.ndarray,
        mode: RobotMode,
        origin: ActionOrigin | None,
    ) -> bool:
        token = self._recording_token
        if not token:
            return False
        item = _Frame(
            token,
            t_mono_ns,
            np.array(state, dtype=np.float32),
            np.array(action, dtype=np.float32),
            str(mode),
            origin,
        )
        return self._offer(item)

    def offer_camera_frame(self, frame: CameraFrame) -> bool:
        token = self._recording_token
        if not token:
            return False
        return self._offer(_CameraItem(token, frame))

    def _offer(self, item: _Frame | _CameraItem) -> bool:
        try:
            self._data.put_nowait(item)
        except queue.Full:
            self.refused += 1
            return False
        return True

    # -- the API side ------------------------------------------------------------------------------------

    def start_episode(self, task: str, *, max_duration_s: float | None = None) -> EpisodeSummary:
        """Open a new episode with `task`; raises EpisodeError while one records, DiskFullError when the disk
        guard refuses, RecorderError when the files cannot be created.

        With `max_duration_s` the recorder ends the episode itself (kept, stop reason `max duration`) once it
        has run that long, so a client that loses its link to the device does not record forever.
        """
        return self._call("start", task=task, max_duration_s=max_duration_s)

    def stop_episode(self, reason: str = "stopped") -> EpisodeSummary:
        """Finish the current episode and keep it."""
        return self._call("stop", reason=reason)

    def discard_episode(self) -> EpisodeSummary:
        """Finish the current episode and delete its files."""
        return self._call("discard")

    def current(self) -> EpisodeSummary | None:
        """The episode being recorded, with its counts as of now (read from the writer thread's objects)."""
        current, writer = self._current, self._writer
        if current is None:
            return None
        live = EpisodeSummary(**{**current.__dict__, "camera_frames": dict(current.camera_frames)})
        if writer is not None:
            live.frames = writer.frame_count
            live.bytes_written = writer.bytes_written
            live.duration_s = round((time.monotonic_ns() - self._started_ns) / 1e9, 3)
        return live

    def status(self) -> dict[str, Any]:
        current = self.current()
        return {
            "state": self.state.value,
            "episode": None if current is None else _summary_dict(current),
            "last_episode": None if self.last_episode is None else _summary_dict(self.last_episode),
            "queue_depth": self._data.qsize(),
            "queue_capacity": self.settings.queue_frames,
            "refused": self.refused,
            "rejected": self.rejected,
            "episodes_finished": self.episodes_finished,
            "free_bytes": self.free_bytes_seen,
            "min_free_bytes": self.settings.min_free_mb * 1_000_000,
            "last_error": self.last_error,
            "recovered": list(self.recovered),
        }

    def _call(self, name: str, **args: Any) -> EpisodeSummary:
        if self._thread is None or not self._thread.is_alive():
            raise RecorderError("the recorder is not running; check the daemon log")
        reply: Future[EpisodeSummary] = Future()
        self._commands.put(_Command(name, args, reply))
        try:
            return reply.result(timeout=_COMMAND_TIMEOUT_S)
        except TimeoutError:
            raise RecorderError("the recorder did not answer within 15 s; the disk may be stalled") from None

    # -- life cycle ------------------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Repair episodes a crash left open (call before `start`); returns the ids marked recovered."""
        self.episodes_dir.mkdir(parents=True, exist_ok=True)
        recovered: list[str] = []
        for report in recover_recordings(self.episodes_dir):
            if report.error:
                self.warnings.add(
                    "episode_unrecoverable",
                    f"episode {report.episode_id} could not be recovered: {report.error}",
                )
            elif report.changed or report.previous_status == EpisodeStatus.RECORDING.value:
                recovered.append(report.episode_id)
                log.warning(
                    "episode recovered after a crash",
                    extra={"episode_id": report.episode_id, "frames": report.frame_count},
                )
        if recovered:
            self.warnings.add(
                "episode_recovered",
                f"{len(recovered)} episode(s) torn by a crash were recovered: " + ", ".join(recovered),
            )
        self.recovered = recovered
        return recovered

    def start(self) -> None:
        if self._thread is not None:
            return
        self.episodes_dir.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish a running episode (kept) and end the thread."""
        if self._thread is None:
            return
        if self._writer is not None:
            try:
                self.stop_episode(reason="daemon stopping")
            except Exception:
                log.exception("finishing the episode at shutdown failed")
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None

    # -- the recorder thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._serve_commands()
            try:
                item = self._data.get(timeout=0.05)
            except queue.Empty:
                item = None
            if item is not None:
                self._write(item)
                # Drain what else is there in one go: fewer wake-ups, and commands still get served promptly.
                for _ in range(256):
                    try:
                        self._write(self._data.get_nowait())
                    except queue.Empty:
                        break
            self._housekeeping()

    def _serve_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                handler = {"start": self._do_start, "stop": self._do_stop, "discard": self._do_discard}[
                    command.name
                ]
                command.reply.set_result(handler(**command.args))
            except Exception as exc:
                command.reply.set_exception(exc)

    def _do_start(self, task: str, max_duration_s: float | None = None) -> EpisodeSummary:
        if self._writer is not None:
            raise EpisodeError(
                f"episode {self._current.episode_id if self._current else '?'} is recording; stop or discard it first"
            )
        self._check_disk(force=True)
        if self.state is RecorderState.DISK_FULL:
            raise DiskFullError(self.last_error)
        episode_id = self._episode_ids.next()
        sizes = self._camera_sizes()
        cameras = {name: CameraSpec(width=w, height=h) for name, (w, h) in sizes.items()}
        started_ns = time.monotonic_ns()
        try:
            writer = EpisodeWriter(
                self.episodes_dir,
                episode_id=episode_id,
                task=task,
                fps=max(1, round(self.fps)),
                state_names=[f"{j}.pos" for j in self.joint_names],
                cameras=cameras,
                auto_sync_s=self.settings.fsync_interval_s,
                started_monotonic_s=started_ns / 1e9,
            )
        except (RecordingError, OSError) as exc:
            raise RecorderError(f"episode {episode_id} could not be created: {exc}") from None
        self._writer = writer
        self._started_ns = started_ns
        self._last_sync = time.monotonic()
        self._current = EpisodeSummary(
            episode_id=episode_id,
            task=task,
            status=EpisodeStatus.RECORDING.value,
            camera_frames=dict.fromkeys(cameras, 0),
            max_duration_s=max_duration_s,
        )
        self._token += 1
        self.state = RecorderState.RECORDING
        self.last_error = ""
        self._recording_token = self._token
        log.info("episode started", extra={"episode_id": episode_id, "task": task})
        return self._snapshot()

    def _do_stop(self, reason: str) -> EpisodeSummary:
        return self._finish(EpisodeStatus.COMPLETE, reason)

    def _do_discard(self) -> EpisodeSummary:
        summary = self._finish(EpisodeStatus.DISCARDED, "discarded")
        shutil.rmtree(self.episodes_dir / summary.episode_id, ignore_errors=True)
        return summary

    def _finish(self, status: EpisodeStatus, reason: str) -> EpisodeSummary:
        if self._writer is None:
            raise EpisodeError("no episode is recording; start one first")
        token, self._recording_token = self._recording_token, 0
        # Everything the loop offered before the stop belongs to this episode: write it first.
        while True:
            try:
                item = self._data.get_nowait()
            except queue.Empty:
                break
            if item.token == token:
                self._write(item)
        writer, self._writer = self._writer, None
        summary = self._snapshot()
        try:
            meta = writer.close(status, stop_reason=reason)
            summary.status = meta.status.value
            summary.frames = meta.frame_count
            summary.duration_s = meta.duration_s
            summary.camera_frames = dict(meta.camera_frame_counts)
        except (RecordingError, OSError) as exc:
            writer.abandon()
            self._fail(f"episode {summary.episode_id} could not be closed ({exc}); it will be recovered")
            summary.status = EpisodeStatus.RECORDING.value
        summary.stop_reason = reason
        self._current = None
        self.last_episode = summary
        self.episodes_finished += 1
        if self.state is RecorderState.RECORDING:
            self.state = RecorderState.IDLE
        log.info(
            "episode finished",
            extra={
                "episode_id": summary.episode_id,
                "status": summary.status,
                "frames": summary.frames,
                "reason": reason,
            },
        )
        return summary

    def _write(self, item: _Frame | _CameraItem) -> None:
        writer = self._writer
        if writer is None or item.token != self._token:
            return  # offered for an episode that has ended
        try:
            if isinstance(item, _Frame):
                t = item.t_mono_ns / 1e9 - writer.started_monotonic_s
                if t < 0:
                    return  # ticked before the episode began
                source = None if item.origin is None else ActionSource(*item.origin)
                writer.append_frame(
                    timestamp=t, state=item.state, action=item.action, mode=item.mode, source=source
                )
            else:
                frame = item.frame
                t = frame.t_mono_ns / 1e9 - writer.started_monotonic_s
                if t < 0 or frame.camera not in writer.metadata.cameras:
                    return
                writer.append_camera_frame(frame.camera, frame.jpeg, t)
                if self._current is not None:
                    counts = self._current.camera_frames
                    counts[frame.camera] = counts.get(frame.camera, 0) + 1
        except RecordingError as exc:
            self.rejected += 1
            if self.rejected in (1, 10, 100, 1000):
                log.warning(
                    "recorder skipped an invalid item", extra={"error": str(exc), "count": self.rejected}
                )
        except OSError as exc:
            self._fail(f"writing episode {self._current.episode_id if self._current else '?'} failed ({exc})")
            self._abort_after_write_error()

    def _housekeeping(self) -> None:
        writer = self._writer
        now = time.monotonic()
        if self.refused != self._refused_reported:
            dropped = self.refused - self._refused_reported
            self._refused_reported = self.refused
            self.warnings.add(
                "recorder_queue_full",
                f"{dropped} recorded item(s) were dropped because the recorder's queue was full; the data disk is"
                " too slow for this rate and these cameras",
            )
        if writer is not None and now - self._last_sync >= self.settings.fsync_interval_s:
            try:
                writer.sync()
            except (RecordingError, OSError) as exc:
                self._fail(f"syncing episode files failed ({exc})")
                self._abort_after_write_error()
                return
            self._last_sync = now
        limit = self._time_limit()
        if (
            writer is not None
            and limit is not None
            and (time.monotonic_ns() - self._started_ns) / 1e9 >= limit[0]
        ):
            self._finish(EpisodeStatus.COMPLETE, limit[1])
            return
        self._check_disk()

    def _time_limit(self) -> tuple[float, str] | None:
        """The sooner of the episode's own limit and the config's `max_episode_s`, with its stop reason."""
        limits = []
        asked = self._current.max_duration_s if self._current is not None else None
        if asked is not None and asked > 0:
            limits.append((asked, MAX_DURATION_REASON))
        if self.settings.max_episode_s > 0:
            limits.append((self.settings.max_episode_s, MAX_EPISODE_S_REASON))
        return (
            min(limits) if limits else None
        )  # on a tie, "max duration" (the client asked for it) sorts first

    def _check_disk(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_disk_check < _DISK_CHECK_S:
            return
        self._last_disk_check = now
        try:
            free = self._free_bytes(self.episodes_dir)
        except OSError as exc:
            self._fail(f"the data directory {self.episodes_dir} is not usable ({exc})")
            return
        self.free_bytes_seen = free
        limit = self.settings.min_free_mb * 1_000_000
        if free >= limit:
            if self.state is RecorderState.DISK_FULL:
                self.state = RecorderState.IDLE
            return
        message = (
            f"only {free // 1_000_000} MB are free on the data partition (the guard is {self.settings.min_free_mb} MB);"
            " recording stopped: pull and delete episodes to free space"
        )
        if self._writer is not None:
            self._finish(EpisodeStatus.COMPLETE, "disk guard")
            self.warnings.add("disk_guard", message)
        self.state = RecorderState.DISK_FULL
        self.last_error = message

    def _fail(self, message: str) -> None:
        log.error("recorder error", extra={"error": message})
        self.warnings.add("recorder_error", message)
        self.last_error = message
        self.state = RecorderState.ERROR

    def _abort_after_write_error(self) -> None:
        writer, self._writer = self._writer, None
        self._recording_token = 0
        if writer is not None:
            writer.abandon()  # the files stay; start-up recovery keeps what reached the disk
        if self._current is not None:
            self._current.stop_reason = "write error"
            self.last_episode, self._current = self._current, None

    def _snapshot(self) -> EpisodeSummary:
        current = self._current
        writer = self._writer
        if current is None:
            raise EpisodeError("no episode is recording")
        if writer is not None:
            current.frames = writer.frame_count
            current.bytes_written = writer.bytes_written
            current.duration_s = round((time.monotonic_ns() - self._started_ns) / 1e9, 3)
        return EpisodeSummary(**{**current.__dict__, "camera_frames": dict(current.camera_frames)})


def _summary_dict(summary: EpisodeSummary) -> dict[str, Any]:
    d = dict(summary.__dict__)
    d["camera_frames"] = dict(summary.camera_frames)
    d["duration_s"] = round(d["duration_s"], 3) if math.isfinite(d["duration_s"]) else 0.0
    return d
