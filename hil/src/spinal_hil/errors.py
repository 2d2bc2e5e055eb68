"""The HIL rig's errors: one tree under RigError.

Raised by spinal_hil.rig, spinal_hil.firmware_process and the CLI.
"""

from __future__ import annotations


class RigError(Exception):
    """The rig could not be set up or asked to do something it cannot do; the message says what to fix."""


class FirmwareNotFound(RigError):
    """The firmware sources or the `micropython` interpreter could not be located."""


class FirmwareExited(RigError):
    """The firmware process ended on its own; its log tail is in the message."""


class NeedsSimulation(RigError):
    """The operation needs the simulated rig (true positions, fault injection), not real hardware."""
