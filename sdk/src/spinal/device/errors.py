"""Errors of the device client: one tree under `DeviceError`.

Raised by `spinal.device` (client and pull); the CLI maps them to exit codes.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base class of every error raised by `spinal.device`."""


class DeviceUnreachableError(DeviceError):
    """The device did not answer (wrong address, offline, or the connection broke)."""


class DeviceAuthError(DeviceError):
    """The device refused the request's token."""


class DeviceResponseError(DeviceError):
    """The device answered with an error status or a body this client cannot use."""

    def __init__(
        self, message: str, *, status_code: int | None = None, error: str | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        #: The HTTP status, the API's error class and its one-sentence detail, when the device sent them.
        self.status_code = status_code
        self.error = error
        self.detail = detail


class ChecksumMismatchError(DeviceError):
    """A downloaded file does not have the sha256 the device listed for it."""


class DownloadCancelled(DeviceError):
    """A download was stopped on request; its partial file is kept so the next pull resumes it."""
