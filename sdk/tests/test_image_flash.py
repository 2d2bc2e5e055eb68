"""`spinal image flash`: writing and verifying, updating with the data partition kept, and refusing targets
that would destroy something (the system disk, mounted disks, partitions, non-disks)."""

from __future__ import annotations

import lzma
import os
import stat
import subprocess
from pathlib import Path

import pytest
from spinal.cli import app
from spinal.image.errors import FlashRefusedError
from spinal.image.flash import flash
from spinal.image.layout import ImageLayout, MiB
from spinal.image.target import FlashTarget, SystemView, inspect_target
from typer.testing import CliRunner

LAYOUT = ImageLayout(first_offset=1 * MiB, boot_size=2 * MiB, root_size=3 * MiB, data_size=1 * MiB)
runner = CliRunner()


def _make_image(path: Path, fill: bytes, layout: ImageLayout = LAYOUT) -> Path:
    """A disk image with the partition table and every partition filled with a recognisable byte."""
    with open(path, "wb") as handle:
        handle.truncate(layout.total_size)
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(path)],
                   input=layout.sfdisk_script(0x1234).encode(), check=True)  # fmt: skip
    with open(path, "r+b") as handle:
        for part in (layout.boot, layout.root, layout.data):
            handle.seek(part.start)
            handle.write(fill * part.size)
    return path


def _file_target(path: Path) -> FlashTarget:
    return inspect_target(path)


def test_flash_to_a_file_writes_the_exact_image_and_verifies(tmp_path: Path) -> None:
    image = _make_image(tmp_path / "a.img", b"A")
    card = tmp_path / "card.bin"
    result = flash(image, _file_target(card))
    assert result.verified
    assert card.read_bytes() == image.read_bytes()


def test_flash_decompresses_xz_images(tmp_path: Path) -> None:
    image = _make_image(tmp_path / "a.img", b"B")
    packed = tmp_path / "a.img.xz"
    packed.write_bytes(lzma.compress(image.read_bytes()))
    card = tmp_path / "card.bin"
    flash(packed, _file_target(card))
    assert card.read_bytes() == image.read_bytes()


def test_an_update_keeps_the_grown_data_partition(tmp_path: Path) -> None:
    card = _make_image(tmp_path / "card.bin", b"O")
    grown = ImageLayout(first_offset=LAYOUT.first_offset, boot_size=LAYOUT.boot_size, root_size=LAYOUT.root_size,
                        data_size=5 * MiB)  # fmt: skip
    with open(card, "r+b") as handle:
        handle.truncate(grown.total_size)
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(card)],
                   input=grown.sfdisk_script(0x1234).encode(), check=True)  # fmt: skip
    with open(card, "r+b") as handle:
        handle.seek(grown.data.start)
        handle.write(b"D" * grown.data.size)
    mbr_before = card.read_bytes()[:512]
    new = _make_image(tmp_path / "new.img", b"N")

    result = flash(new, _file_target(card), keep_data=True)

    data = card.read_bytes()
    assert result.ranges == ((LAYOUT.boot.start, LAYOUT.root.end),)
    assert data[:512] == mbr_before
    assert set(data[LAYOUT.boot.start : LAYOUT.root.end]) == {ord("N")}
    assert set(data[grown.data.start : grown.data.end]) == {ord("D")}


def test_an_update_refuses_a_card_with_another_layout(tmp_path: Path) -> None:
    other = ImageLayout(first_offset=1 * MiB, boot_size=2 * MiB, root_size=2 * MiB, data_size=1 * MiB)
    card = _make_image(tmp_path / "card.bin", b"O", other)
    before = card.read_bytes()
    new = _make_image(tmp_path / "new.img", b"N")
    with pytest.raises(FlashRefusedError, match="partition 2 on the card differs"):
        flash(new, _file_target(card), keep_data=True)
    assert card.read_bytes() == before


def _root_mount() -> tuple[tuple[int, int], str]:
    """The device numbers and source path (e.g. /dev/vda) of the file system mounted at /."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            major, minor = (int(x) for x in fields[2].split(":"))
            return (major, minor), fields[fields.index("-") + 2]
    raise AssertionError("no root mount")


def test_the_real_root_disk_is_refused_by_its_name() -> None:
    (major, _), source = _root_mount()
    if major == 0 or not Path(source).is_block_device():
        pytest.skip("the root file system is not on a block device here")
    # A partition (/dev/sda2) is refused as a partition; a whole disk (/dev/vda) as the system disk.
    with pytest.raises(FlashRefusedError, match="runs from|is a partition"):
        inspect_target(Path(source))


def test_a_fake_device_node_for_the_root_disk_is_still_refused(tmp_path: Path) -> None:
    (major, minor), _ = _root_mount()
    if major == 0:
        pytest.skip("the root file system is not on a block device here")
    fake = tmp_path / "sdz"
    try:
        os.mknod(fake, stat.S_IFBLK | 0o600, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("creating device nodes needs root")
    # Only the check runs: nothing is ever opened for writing here.
    with pytest.raises(FlashRefusedError, match="runs from|is a partition|in use"):
        inspect_target(fake)


def test_things_that_are_not_disks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FlashRefusedError, match="neither a disk nor a regular file"):
        inspect_target(Path("/dev/null"))
    with pytest.raises(FlashRefusedError, match="neither a disk"):
        inspect_target(tmp_path)
    with pytest.raises(FlashRefusedError, match="does not exist"):
        inspect_target(tmp_path / "missing-dir" / "card")


# A fake sysfs and mount table: disk 8:0 (sda, partitions 8:1, 8:2) runs the system, 8:16 (sdb) is a card with
# partition 8:17, 8:32 (sdc) backs a LUKS volume 253:0, 179:0 (mmcblk0) is a free card.
def _fake_system(tmp_path: Path, mounts: list[tuple[str, str]]) -> SystemView:
    devices = tmp_path / "sys" / "devices"
    links = tmp_path / "sys" / "dev" / "block"
    links.mkdir(parents=True)

    def add(path: str, dev: str, partition: bool = False, size: int = 62_333_952) -> Path:
        node = devices / path
        node.mkdir(parents=True)
        (node / "dev").write_text(dev + "\n")
        (node / "size").write_text(f"{size}\n")
        (node / "ro").write_text("0\n")
        for sub in ("holders", "slaves"):
            (node / sub).mkdir()
        if partition:
            (node / "partition").write_text("1\n")
        (links / dev).symlink_to(node)
        return node

    add("sda", "8:0")
    add("sda/sda1", "8:1", partition=True)
    add("sda/sda2", "8:2", partition=True)
    add("sdb", "8:16")
    add("sdb/sdb1", "8:17", partition=True)
    sdc = add("sdc", "8:32")
    dm = add("dm-0", "253:0")
    (dm / "slaves" / "sdc").symlink_to(sdc)
    (sdc / "holders" / "dm-0").symlink_to(dm)
    add("mmcblk0", "179:0")
    mountinfo = tmp_path / "mountinfo"
    lines = [f"{i} 1 {dev} / {point} rw - ext4 /dev/x rw" for i, (point, dev) in enumerate(mounts, start=20)]
    mountinfo.write_text("\n".join(lines) + "\n")
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename Type Size Used Priority\n")
    return SystemView(mountinfo=mountinfo, swaps=swaps, sys_dev_block=links)


def _check(tmp_path: Path, system: SystemView, dev: tuple[int, int]) -> FlashTarget:
    from spinal.image.target import _inspect_block_device

    return _inspect_block_device(tmp_path / "node", dev, system)


def test_the_disk_holding_root_is_refused_through_its_partition(tmp_path: Path) -> None:
    system = _fake_system(tmp_path, [("/", "8:2"), ("/boot", "8:1")])
    with pytest.raises(FlashRefusedError, match="runs from"):
        _check(tmp_path, system, (8, 0))


def test_a_card_with_a_mounted_partition_is_refused_naming_the_mount(tmp_path: Path) -> None:
    system = _fake_system(tmp_path, [("/", "8:2"), ("/media/me/SPINALBOOT", "8:17")])
    with pytest.raises(FlashRefusedError, match=r"in use \(/media/me/SPINALBOOT\); unmount"):
        _check(tmp_path, system, (8, 16))


def test_a_disk_under_an_encrypted_root_is_the_system_disk(tmp_path: Path) -> None:
    system = _fake_system(tmp_path, [("/", "253:0")])
    with pytest.raises(FlashRefusedError, match="runs from"):
        _check(tmp_path, system, (8, 32))


def test_a_partition_is_refused_in_favour_of_the_whole_card(tmp_path: Path) -> None:
    system = _fake_system(tmp_path, [("/", "8:2")])
    with pytest.raises(FlashRefusedError, match="is a partition"):
        _check(tmp_path, system, (8, 17))


def test_a_free_card_is_accepted_with_its_size(tmp_path: Path) -> None:
    system = _fake_system(tmp_path, [("/", "8:2"), ("/mnt/x", "8:17")])
    target = _check(tmp_path, system, (179, 0))
    assert target.is_block_device and target.size == 62_333_952 * 512
    assert "31.9 GB" in target.description


def test_cli_flash_refuses_to_proceed_without_confirmation(tmp_path: Path) -> None:
    image = _make_image(tmp_path / "a.img", b"A")
    card = tmp_path / "card.bin"
    result = runner.invoke(app, ["image", "flash", str(image), str(card)])
    assert result.exit_code == 2
    assert "add --yes to confirm" in result.output
    assert not card.exists()


def test_cli_flash_checks_the_published_checksum_first(tmp_path: Path) -> None:
    image = _make_image(tmp_path / "a.img", b"A")
    (tmp_path / "a.img.sha256").write_text("0" * 64 + "  a.img\n")
    result = runner.invoke(app, ["image", "flash", "--yes", str(image), str(tmp_path / "card.bin")])
    assert result.exit_code == 2
    assert "does not match a.img.sha256" in result.output


def test_cli_flash_writes_and_reports_verified(tmp_path: Path) -> None:
    image = _make_image(tmp_path / "a.img", b"A")
    card = tmp_path / "card.bin"
    result = runner.invoke(app, ["image", "flash", "--yes", str(image), str(card)])
    assert result.exit_code == 0, result.output
    assert "written and verified" in result.output
    assert card.read_bytes() == image.read_bytes()
