"""The MBR partition table of an SD-card image or card, read without mounting anything.

`spinal image configure` uses it to find the boot partition's offset for mtools; `spinal image flash` uses it
to check, before an update that keeps the data partition, that the card's layout matches the image's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from spinal.image.errors import PartitionTableError

SECTOR_SIZE = 512
_ENTRY = struct.Struct("<B3sB3sII")
_FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E}
_LINUX_TYPE = 0x83
_EXTENDED_TYPES = {0x05, 0x0F, 0x85}
_GPT_PROTECTIVE = 0xEE


@dataclass(frozen=True)
class Partition:
    """One primary partition: its number (1-4), MBR type id, byte offset and byte size."""

    number: int
    type_id: int
    start: int
    size: int
    bootable: bool = False

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def is_fat(self) -> bool:
        return self.type_id in _FAT_TYPES

    @property
    def is_linux(self) -> bool:
        return self.type_id == _LINUX_TYPE


@dataclass(frozen=True)
class PartitionTable:
    """The disk identifier and primary partitions of an MBR disk, in partition-number order."""

    disk_id: int
    partitions: tuple[Partition, ...]

    def get(self, number: int) -> Partition:
        for part in self.partitions:
            if part.number == number:
                return part
        raise PartitionTableError(f"the disk has no partition {number}; is this a spinal image?")

    def boot_partition(self) -> Partition:
        """The first FAT partition: where the Raspberry Pi firmware, kernel and preseed file live."""
        for part in self.partitions:
            if part.is_fat:
                return part
        raise PartitionTableError("the disk has no FAT boot partition; is this a spinal image or card?")


def parse_mbr(sector: bytes) -> PartitionTable:
    """Parse the first 512 bytes of a disk; raise PartitionTableError when they hold no MBR."""
    if len(sector) < SECTOR_SIZE or sector[510:512] != b"\x55\xaa":
        raise PartitionTableError("the first sector has no MBR signature; is this a disk image (.img)?")
    (disk_id,) = struct.unpack_from("<I", sector, 440)
    parts = []
    for index in range(4):
        status, _, type_id, _, first_lba, sectors = _ENTRY.unpack_from(sector, 446 + 16 * index)
        if type_id == 0 or sectors == 0:
            continue
        if type_id == _GPT_PROTECTIVE:
            raise PartitionTableError("the disk uses a GPT partition table; spinal images use MBR")
        if type_id in _EXTENDED_TYPES:
            continue
        parts.append(
            Partition(
                number=index + 1,
                type_id=type_id,
                start=first_lba * SECTOR_SIZE,
                size=sectors * SECTOR_SIZE,
                bootable=status == 0x80,
            )
        )
    return PartitionTable(disk_id=disk_id, partitions=tuple(parts))


def read_partition_table(path: Path) -> PartitionTable:
    """Read the MBR of an image file or a block device."""
    try:
        with open(path, "rb") as disk:
            sector = disk.read(SECTOR_SIZE)
    except OSError as exc:
        raise PartitionTableError(
            f"cannot read {path}: {exc.strerror}; check the path and permissions"
        ) from exc
    return parse_mbr(sector)
