"""The MCU link's errors: one tree under McuLinkError, so a caller catches one type.

Raised by spinal_edge.mcu.driver, framing and messages; calibration files raise CalibrationError.
"""

from __future__ import annotations


class McuLinkError(Exception):
    """Something went wrong talking to the servo microcontroller."""


class McuNotConnected(McuLinkError):
    """The link is down (port missing, unplugged, or the MCU is not answering); the driver keeps retrying."""


class McuTimeout(McuLinkError):
    """The MCU did not answer within the allowed time."""


class McuProtocolError(McuLinkError):
    """A frame or payload broke the link protocol (firmware/PROTOCOL.md)."""


class McuVersionMismatch(McuProtocolError):
    """The firmware speaks another protocol version than this driver; flash matching firmware."""


class McuCommandRejected(McuLinkError):
    """The MCU answered a command with ERROR; `code` and the MCU's sentence say why."""

    def __init__(self, code: int, code_name: str, message: str, command: str) -> None:
        super().__init__(f"MCU rejected {command}: {message} ({code_name})")
        self.code = code
        self.code_name = code_name
        self.message = message
        self.command = command


class McuConfigError(McuLinkError, ValueError):
    """The link configuration given to the driver is invalid; the message names the field and the fix."""


class CalibrationError(ValueError):
    """A calibration file is missing, unreadable or inconsistent; the message names the file, field and fix."""
