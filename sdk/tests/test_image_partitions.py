"""The image's partition layout: what sfdisk writes from ImageLayout reads back the same, and update checks."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from spinal.image.errors import PartitionTableError
from spinal.image.layout import ImageLayout, MiB, matches_for_update
from spinal.image.partitions import Partition, PartitionTable, parse_mbr, read_partition_table


def _write_layout(path: Path, layout: ImageLayout, disk_id: int = 0x5EED1234) -> None:
    with open(path, "wb") as handle:
        handle.truncate(layout.total_size)
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(path)],
        input=layout.sfdisk_script(disk_id).encode(),
        check=True,
    )


def test_sfdisk_writes_the_layout_that_reads_back(tmp_path: Path) -> None:
    layout = ImageLayout(first_offset=4 * MiB, boot_size=8 * MiB, root_size=16 * MiB, data_size=2 * MiB)
    image = tmp_path / "disk.img"
    _write_layout(image, layout)

    table = read_partition_table(image)

    assert table.disk_id == 0x5EED1234
    assert table.partitions == (layout.boot, layout.root, layout.data)
    assert table.boot_partition() == layout.boot
    assert layout.boot.bootable and layout.boot.is_fat
    assert layout.root.is_linux and layout.data.is_linux
    assert layout.root.start == layout.boot.end and layout.data.start == layout.root.end


def test_default_layout_is_mib_aligned_and_fits_a_4gb_card() -> None:
    layout = ImageLayout()
    for part in (layout.boot, layout.root, layout.data):
        assert part.start % MiB == 0 and part.size % MiB == 0
    assert layout.total_size < 4 * 10**9


def test_layout_rejects_sizes_that_are_not_whole_mib() -> None:
    with pytest.raises(ValueError, match="whole number of MiB"):
        ImageLayout(root_size=MiB + 512)


def test_a_sector_without_signature_is_not_a_partition_table() -> None:
    with pytest.raises(PartitionTableError, match="no MBR signature"):
        parse_mbr(b"\0" * 512)


def test_a_gpt_disk_is_refused_with_a_clear_message() -> None:
    sector = bytearray(512)
    sector[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0xEE, b"\0\0\0", 1, 1000)
    sector[510:512] = b"\x55\xaa"
    with pytest.raises(PartitionTableError, match="GPT"):
        parse_mbr(bytes(sector))


def test_a_disk_without_fat_partition_has_no_boot_partition() -> None:
    table = PartitionTable(disk_id=1, partitions=(Partition(number=1, type_id=0x83, start=MiB, size=MiB),))
    with pytest.raises(PartitionTableError, match="no FAT boot partition"):
        table.boot_partition()


def test_reading_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(PartitionTableError, match="cannot read"):
        read_partition_table(tmp_path / "nope.img")


def _table(layout: ImageLayout, data_size: int | None = None) -> PartitionTable:
    data = layout.data if data_size is None else Partition(3, 0x83, layout.data.start, data_size)
    return PartitionTable(disk_id=7, partitions=(layout.boot, layout.root, data))


def test_update_accepts_a_card_whose_data_partition_grew() -> None:
    layout = ImageLayout()
    assert matches_for_update(_table(layout), _table(layout, data_size=28 * 1024 * MiB)) is None


def test_update_refuses_a_card_with_another_root_size() -> None:
    image = _table(ImageLayout())
    card = _table(ImageLayout(root_size=1024 * MiB))
    assert matches_for_update(image, card) == "partition 2 on the card differs from the image's"


def test_update_refuses_a_card_without_data_partition() -> None:
    layout = ImageLayout()
    card = PartitionTable(disk_id=7, partitions=(layout.boot, layout.root))
    assert "no spinal data partition" in (matches_for_update(_table(layout), card) or "")
