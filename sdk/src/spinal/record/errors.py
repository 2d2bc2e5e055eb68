"""Errors of a recording session: one tree under `RecordError`.

Raised by `spinal.record`; `spinal record` turns each into one clear sentence and an exit code.
"""

from __future__ import annotations


class RecordError(Exception):
    """Base class of every error a recording session raises on purpose."""


class SessionSetupError(RecordError):
    """The options, the output folder or the session being resumed do not allow a start."""


class ArmingError(RecordError):
    """The device refused the recording mode, or its policy never became ready."""


class DiskGuardError(RecordError):
    """The device's disk guard stopped the episode or refuses new ones: its data partition is nearly full."""


class RecorderFailure(RecordError):
    """The device's recorder failed (a write error) or refused an episode command it should have taken."""


class DeviceLostError(RecordError):
    """The device stayed unreachable for longer than the reconnect timeout."""
