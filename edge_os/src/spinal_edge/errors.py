"""The daemon's error tree: one base class, one subclass per area.

Raised by the config loader, the recorder, the episode controller and the API; the API maps them to HTTP codes.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error the edge daemon raises on purpose."""


class ConfigError(EdgeError):
    """A config file or a settings change is invalid; the message names the file, the field and the fix."""

    def __init__(self, message: str, *, source: str = "", field: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.field = field


class ModeError(EdgeError):
    """A mode change cannot happen now (e.g. teleop without a leader arm, policy without an engine)."""


class EpisodeError(EdgeError):
    """An episode command does not fit the recorder's state (e.g. stop while nothing records)."""


class RecorderError(EdgeError):
    """The recorder cannot write (data directory not writable, episode files not created, recorder stalled)."""


class DiskFullError(RecorderError):
    """The disk guard refuses recording: free space on the data partition is below [recording] min_free_mb."""


class DeviceError(EdgeError):
    """A hardware part (camera, MCU link) is missing or failed to open."""
