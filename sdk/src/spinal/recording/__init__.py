"""spinal.recording: the crash-safe on-device episode format (writer, recovery, reader).

The edge daemon's recorder writes with `EpisodeWriter`; the SDK converter reads with `EpisodeReader`.
"""

from spinal.recording.errors import (
    CorruptRecordingError,
    InvalidFrameError,
    RecordingError,
    RecordingStateError,
)
from spinal.recording.metadata import (
    FRAMES_FILE,
    FRAMES_INDEX_FILE,
    METADATA_FILE,
    SO101_JOINT_NAMES,
    SO101_ROBOT_TYPE,
    CameraSpec,
    EpisodeIdSequence,
    EpisodeMetadata,
    EpisodeStatus,
    FrameMode,
    camera_files,
    is_valid_episode_id,
    load_metadata,
    new_episode_id,
)
from spinal.recording.reader import CameraFrame, CameraIndex, EpisodeReader, Frame
from spinal.recording.recover import RecoveryReport, recover_recording, recover_recordings
from spinal.recording.schema import ActionSource
from spinal.recording.writer import EpisodeWriter

__all__ = [
    "FRAMES_FILE",
    "FRAMES_INDEX_FILE",
    "METADATA_FILE",
    "SO101_JOINT_NAMES",
    "SO101_ROBOT_TYPE",
    "ActionSource",
    "CameraFrame",
    "CameraIndex",
    "CameraSpec",
    "CorruptRecordingError",
    "EpisodeIdSequence",
    "EpisodeMetadata",
    "EpisodeReader",
    "EpisodeStatus",
    "EpisodeWriter",
    "Frame",
    "FrameMode",
    "InvalidFrameError",
    "RecordingError",
    "RecordingStateError",
    "RecoveryReport",
    "camera_files",
    "is_valid_episode_id",
    "load_metadata",
    "new_episode_id",
    "recover_recording",
    "recover_recordings",
]
