"""Errors of the on-device recording format: one tree under `RecordingError`.

Raised by `spinal.recording` (writer, recovery, reader); callers catch `RecordingError` or one leaf.
"""

from __future__ import annotations


class RecordingError(Exception):
    """Base class of every error raised by `spinal.recording`."""


class CorruptRecordingError(RecordingError):
    """A recorded episode on disk is damaged, truncated or not in the spinal recording format."""


class InvalidFrameError(RecordingError, ValueError):
    """A frame or camera image handed to the writer does not fit the episode (shape, type, time order)."""


class RecordingStateError(RecordingError):
    """The writer was used in the wrong state: the episode exists already, or the writer is closed."""
