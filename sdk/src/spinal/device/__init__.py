"""spinal.device: the workstation client of a spinal device's HTTP API (status, episodes, pull).

Used by `spinal device ...`; pulled episodes land in the folder layout `spinal dataset convert` reads.
"""

from spinal.device.client import DeviceClient, DownloadResult
from spinal.device.errors import (
    ChecksumMismatchError,
    DeviceAuthError,
    DeviceError,
    DeviceResponseError,
    DeviceUnreachableError,
    DownloadCancelled,
)
from spinal.device.models import EpisodeFile, EpisodeSummary
from spinal.device.pull import PullReport, pull_episodes

__all__ = [
    "ChecksumMismatchError",
    "DeviceAuthError",
    "DeviceClient",
    "DeviceError",
    "DeviceResponseError",
    "DeviceUnreachableError",
    "DownloadCancelled",
    "DownloadResult",
    "EpisodeFile",
    "EpisodeSummary",
    "PullReport",
    "pull_episodes",
]
