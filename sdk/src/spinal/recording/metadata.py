"""The `episode.json` of a recorded episode, its file names and the names a recording may use.

Written by `EpisodeWriter` and recovery; read by `EpisodeReader`, the device API and the dataset converter.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spinal.fsutil import write_json_atomic
from spinal.recording.errors import CorruptRecordingError
from spinal.robots import SO101_FEATURE_NAMES, SO101_ROBOT_TYPE

FORMAT_NAME = "spinal-recording"
FORMAT_VERSION = 1

METADATA_FILE = "episode.json"
FRAMES_FILE = "frames.arrows"
FRAMES_INDEX_FILE = "frames.idx"

#: Joint feature names of an SO-101 arm exactly as LeRobot names them (state and action).
SO101_JOINT_NAMES = SO101_FEATURE_NAMES

EPISODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CAMERA_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
MAX_FPS = 1000
MAX_IMAGE_SIDE = 8192


class EpisodeStatus(StrEnum):
    """Where an episode is in its life: being written, closed cleanly, repaired after a crash, or thrown away."""

    RECORDING = "recording"
    COMPLETE = "complete"
    RECOVERED = "recovered"
    DISCARDED = "discarded"


class FrameMode(StrEnum):
    """Which source drove the arm at a frame."""

    TELEOP = "teleop"
    POLICY = "policy"
    IDLE = "idle"


def is_valid_episode_id(episode_id: str) -> bool:
    """True for ids that are safe as one directory name (letters, digits, `._-`, no `..`)."""
    return bool(EPISODE_ID_PATTERN.match(episode_id)) and ".." not in episode_id


def camera_files(camera: str) -> tuple[str, str]:
    """The MJPEG stream file and its index file for one camera."""
    return f"camera-{camera}.mjpeg", f"camera-{camera}.idx"


def new_episode_id(now: datetime | None = None, suffix: str | None = None, *, sequence: int = 0) -> str:
    """A time-sortable episode id such as `20250101T120000.123Z-000001-3f9a1c`.

    UTC time to the millisecond, then `sequence` (orders ids stamped in the same millisecond; see
    `EpisodeIdSequence`), then a random suffix so that ids of two devices, or two boots of a device whose clock
    restarted at the same time, never clash.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{sequence:06d}-{suffix or secrets.token_hex(3)}"


class EpisodeIdSequence:
    """The ids of one recorder run (one boot of the device), sorting in the order they were handed out.

    The stamp never goes back, even when the wall clock does (an NTP step on a Pi without a real-time clock),
    and the per-run sequence number orders ids stamped in the same millisecond. Thread-safe.
    """

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._last: datetime | None = None
        self._sequence = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            now = self._clock().astimezone(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if self._last is not None and now < self._last:
                now = self._last
            self._last = now
            self._sequence += 1
            return new_episode_id(now, sequence=self._sequence)


class CameraSpec(BaseModel):
    """The size of the JPEG frames one camera delivers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    width: Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]
    height: Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]


class RecoveryInfo(BaseModel):
    """What crash recovery cut off an episode (bytes per file) and when it ran."""

    model_config = ConfigDict(extra="ignore")

    recovered_at: str
    truncated_bytes: dict[str, int] = Field(default_factory=dict)


class EpisodeMetadata(BaseModel):
    """Everything `episode.json` says about one recorded episode."""

    model_config = ConfigDict(extra="ignore")

    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    episode_id: str
    task: str
    fps: Annotated[int, Field(gt=0, le=MAX_FPS)]
    robot_type: str = SO101_ROBOT_TYPE
    state_names: list[str]
    action_names: list[str]
    cameras: dict[str, CameraSpec] = Field(default_factory=dict)
    #: Wall-clock start for humans only; recorded times are on the monotonic clock.
    started_at: str = ""
    ended_at: str | None = None
    status: EpisodeStatus = EpisodeStatus.RECORDING
    frame_count: Annotated[int, Field(ge=0)] = 0
    duration_s: Annotated[float, Field(ge=0)] = 0.0
    camera_frame_counts: dict[str, int] = Field(default_factory=dict)
    #: Why the recorder ended the episode (e.g. `stopped`, `disk guard`, `max duration`); empty when unknown.
    stop_reason: str = ""
    recovery: RecoveryInfo | None = None

    @field_validator("episode_id")
    @classmethod
    def _episode_id_is_a_safe_name(cls, value: str) -> str:
        if not is_valid_episode_id(value):
            raise ValueError("must be 1-128 characters of letters, digits, '.', '_' or '-', without '..'")
        return value

    @field_validator("state_names", "action_names")
    @classmethod
    def _names_are_distinct(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one joint")
        if len(set(value)) != len(value) or any(not n or "/" in n for n in value):
            raise ValueError("must be distinct, non-empty and free of '/'")
        return value

    @field_validator("cameras")
    @classmethod
    def _camera_names_are_safe(cls, value: dict[str, CameraSpec]) -> dict[str, CameraSpec]:
        for name in value:
            if not CAMERA_NAME_PATTERN.match(name):
                raise ValueError(f"camera name {name!r} must be 1-32 of lowercase letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _format_is_known(self) -> EpisodeMetadata:
        if self.format != FORMAT_NAME:
            raise ValueError(f"format is {self.format!r}, expected {FORMAT_NAME!r}")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} is newer than this SDK reads ({FORMAT_VERSION}); "
                "upgrade spinal"
            )
        return self

    def file_names(self) -> list[str]:
        """Every file the episode directory holds, in a stable order."""
        names = [METADATA_FILE, FRAMES_FILE, FRAMES_INDEX_FILE]
        for camera in self.cameras:
            names.extend(camera_files(camera))
        return names

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")


def load_metadata(episode_dir: Path) -> EpisodeMetadata:
    """Read and validate `episode.json`; any problem becomes one `CorruptRecordingError`."""
    path = episode_dir / METADATA_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorruptRecordingError(
            f"{path} is missing: {episode_dir.name} is not a spinal episode directory"
        ) from None
    except OSError as exc:
        raise CorruptRecordingError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecordingError(f"{path} is not valid JSON ({exc}); the file is damaged") from exc
    try:
        return EpisodeMetadata.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        raise CorruptRecordingError(
            f"{path}: field {where} is invalid ({first['msg']}); the file is damaged or not a spinal episode"
        ) from exc


def save_metadata(episode_dir: Path, metadata: EpisodeMetadata) -> None:
    """Atomically replace `episode.json`."""
    write_json_atomic(episode_dir / METADATA_FILE, metadata.to_json_dict())


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
