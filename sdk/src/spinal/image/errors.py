"""Errors of the SD-card image tools (`spinal image configure` / `spinal image flash`) and the device's boot setup.

One tree under `ImageError`: the CLI catches that one type and prints its one-sentence message.
"""

from __future__ import annotations


class ImageError(Exception):
    """Something about an SD-card image, a preseed or a flash target is wrong; the message says what and the fix."""


class PartitionTableError(ImageError):
    """The image or card has no readable MBR partition table, or not the partitions a spinal image has."""


class PreseedError(ImageError):
    """A preseed value (Wi-Fi, server, hostname, certificate, SSH key) is invalid."""


class ToolMissingError(ImageError):
    """An external program the operation needs (mtools, ...) is not installed."""


class FlashRefusedError(ImageError):
    """The flash target is unsafe (mounted, the system disk, too small) or not a disk."""


class FlashVerifyError(ImageError):
    """What was read back from the card after writing differs from the image."""
