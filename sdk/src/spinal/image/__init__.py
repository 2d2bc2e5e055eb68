"""SD-card image tools: the partition table and layout, the preseed format, boot-partition files, flashing.

The `spinal image` commands and the device's first-boot setup are built from these modules.
"""

from spinal.image.errors import (
    FlashRefusedError,
    FlashVerifyError,
    ImageError,
    PartitionTableError,
    PreseedError,
    ToolMissingError,
)
from spinal.image.layout import ImageLayout
from spinal.image.partitions import Partition, PartitionTable, parse_mbr, read_partition_table
from spinal.image.preseed import PRESEED_FILENAME, Preseed, TlsFiles, WifiNetwork

__all__ = [
    "PRESEED_FILENAME",
    "FlashRefusedError",
    "FlashVerifyError",
    "ImageError",
    "ImageLayout",
    "Partition",
    "PartitionTable",
    "PartitionTableError",
    "Preseed",
    "PreseedError",
    "TlsFiles",
    "ToolMissingError",
    "WifiNetwork",
    "parse_mbr",
    "read_partition_table",
]
