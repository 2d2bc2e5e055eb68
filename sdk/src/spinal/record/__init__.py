"""spinal.record: a recording session driven from the workstation (`spinal record`).

Arms a device in teleop or policy mode, records N episodes with reset periods between them (keys to end early,
re-record or stop), survives the device going away, then pulls and converts the kept episodes into a
LeRobotDataset v3 with the same code as `spinal device pull` and `spinal dataset convert`.
"""

from spinal.record.control import DeviceControl
from spinal.record.dataset_sync import SessionDataset, SyncReport
from spinal.record.errors import (
    ArmingError,
    DeviceLostError,
    DiskGuardError,
    RecorderFailure,
    RecordError,
    SessionSetupError,
)
from spinal.record.journal import JOURNAL_FILE, EpisodeFate, JournalEntry, SessionJournal
from spinal.record.keys import KeyDecoder, NoKeys, TerminalKeys
from spinal.record.options import RecordMode, SessionOptions
from spinal.record.session import AbortReport, EndedBy, RecordSession, SessionAborted, SessionResult
from spinal.record.snapshot import DeviceSnapshot, EpisodeInfo
from spinal.record.view import LiveView, PlainView, ViewModel

__all__ = [
    "JOURNAL_FILE",
    "AbortReport",
    "ArmingError",
    "DeviceControl",
    "DeviceLostError",
    "DeviceSnapshot",
    "DiskGuardError",
    "EndedBy",
    "EpisodeFate",
    "EpisodeInfo",
    "JournalEntry",
    "KeyDecoder",
    "LiveView",
    "NoKeys",
    "PlainView",
    "RecordError",
    "RecordMode",
    "RecordSession",
    "RecorderFailure",
    "SessionAborted",
    "SessionDataset",
    "SessionJournal",
    "SessionOptions",
    "SessionResult",
    "SessionSetupError",
    "SyncReport",
    "TerminalKeys",
    "ViewModel",
]
