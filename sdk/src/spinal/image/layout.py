"""The partition layout of the spinal SD-card image: FAT boot, read-only ext4 root, ext4 data that grows.

The image builder (`images/build_image.py`) turns it into an sfdisk script; `spinal image flash --keep-data`
relies on boot and root having the same place and size in every image so an update leaves data untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from spinal.image.partitions import SECTOR_SIZE, Partition, PartitionTable

MiB = 1024 * 1024

BOOT_LABEL = "SPINALBOOT"
ROOT_LABEL = "spinal-root"
DATA_LABEL = "spinal-data"


@dataclass(frozen=True)
class ImageLayout:
    """Sizes in bytes; every start and size is a whole number of MiB (SD cards erase in MiB-aligned blocks)."""

    first_offset: int = 4 * MiB
    boot_size: int = 256 * MiB
    root_size: int = 2048 * MiB
    data_size: int = 64 * MiB

    def __post_init__(self) -> None:
        for name in ("first_offset", "boot_size", "root_size", "data_size"):
            value = getattr(self, name)
            if value <= 0 or value % MiB:
                raise ValueError(f"layout {name}={value} must be a positive whole number of MiB")

    @property
    def boot(self) -> Partition:
        return Partition(number=1, type_id=0x0C, start=self.first_offset, size=self.boot_size, bootable=True)

    @property
    def root(self) -> Partition:
        return Partition(number=2, type_id=0x83, start=self.boot.end, size=self.root_size)

    @property
    def data(self) -> Partition:
        return Partition(number=3, type_id=0x83, start=self.root.end, size=self.data_size)

    @property
    def total_size(self) -> int:
        return self.data.end

    def sfdisk_script(self, disk_id: int) -> str:
        """The input for `sfdisk IMAGE` that writes this layout as an MBR table."""
        lines = ["label: dos", f"label-id: 0x{disk_id:08x}", "unit: sectors", ""]
        for part in (self.boot, self.root, self.data):
            flag = ", bootable" if part.bootable else ""
            lines.append(
                f"start={part.start // SECTOR_SIZE}, size={part.size // SECTOR_SIZE}, type={part.type_id:x}{flag}"
            )
        return "\n".join(lines) + "\n"


def matches_for_update(image: PartitionTable, card: PartitionTable) -> str | None:
    """None when boot and root sit at the same place and size on both and the card's data partition starts
    where the image's does; otherwise one sentence saying what differs."""
    for number in (1, 2):
        want = image.get(number)
        have = next((p for p in card.partitions if p.number == number), None)
        if have is None or (have.start, have.size, have.type_id) != (want.start, want.size, want.type_id):
            return f"partition {number} on the card differs from the image's"
    want_data = image.get(3)
    have_data = next((p for p in card.partitions if p.number == 3), None)
    if have_data is None or have_data.start != want_data.start or not have_data.is_linux:
        return "the card has no spinal data partition where the image expects it"
    return None
