"""The disk image from a finished root filesystem: a FAT boot partition (mkfs.vfat + mtools), a read-only
ext4 root and an empty ext4 data partition (mkfs.ext4 -d), and an MBR table (sfdisk), without loop devices
or mounts, so it builds anywhere the tools are installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from spinal.image.layout import BOOT_LABEL, DATA_LABEL, ROOT_LABEL, ImageLayout

_COPY_CHUNK = 1024 * 1024
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}


def _run(args: list[str], **kwargs: object) -> None:
    subprocess.run(args, check=True, **kwargs)  # type: ignore[call-overload]


def make_boot_partition(boot_dir: Path, dest: Path, layout: ImageLayout) -> None:
    """A FAT32 file system holding everything under `boot_dir` (firmware, kernel, initrd, device trees)."""
    dest.unlink(missing_ok=True)
    # 1 KiB clusters keep a 256 MiB FAT32 above its minimum cluster count.
    _run(["mkfs.vfat", "-F", "32", "-s", "2", "-n", BOOT_LABEL, "-C", str(dest), str(layout.boot_size // 1024)],
         stdout=subprocess.DEVNULL)  # fmt: skip
    entries = sorted(str(p) for p in boot_dir.iterdir())
    if not entries:
        raise RuntimeError(f"{boot_dir} is empty: the kernel and firmware were not installed")
    _run(["mcopy", "-s", "-m", "-i", str(dest), *entries, "::/"], env={**os.environ, **_MTOOLS_ENV})


def make_ext4(dest: Path, size: int, label: str, source: Path | None) -> None:
    dest.unlink(missing_ok=True)
    with open(dest, "wb") as handle:
        handle.truncate(size)
    args = ["mkfs.ext4", "-q", "-F", "-L", label, "-b", "4096", "-T", "default"]
    if source is not None:
        # The root is never written on the device: no journal, no reserved blocks.
        args += ["-O", "^has_journal", "-m", "0", "-E", "root_owner=0:0", "-d", str(source)]
    else:
        args += ["-m", "1"]
    _run([*args, str(dest)])


def copy_into(src: Path, dest_fd: int, offset: int) -> None:
    """Copy a partition image into the disk image at `offset`, leaving zero blocks as holes."""
    with open(src, "rb") as handle:
        position = offset
        while block := handle.read(_COPY_CHUNK):
            if any(block):
                os.pwrite(dest_fd, block, position)
            position += len(block)


def assemble_image(rootfs: Path, work: Path, image: Path, layout: ImageLayout, disk_id: int) -> None:
    """Build `image` from `rootfs`; the boot files move out of rootfs/boot/firmware (the FAT partition's mount
    point on the device) to work/boot-files, once, and from there into the FAT partition."""
    work.mkdir(parents=True, exist_ok=True)
    boot_mountpoint = rootfs / "boot" / "firmware"
    boot_files = work / "boot-files"
    if any(boot_mountpoint.iterdir()):
        if boot_files.exists():
            shutil.rmtree(boot_files)
        shutil.move(boot_mountpoint, boot_files)
        boot_mountpoint.mkdir(mode=0o755)
    parts = {"boot": work / "boot.vfat", "root": work / "root.ext4", "data": work / "data.ext4"}
    make_boot_partition(boot_files, parts["boot"], layout)
    make_ext4(parts["root"], layout.root_size, ROOT_LABEL, rootfs)
    make_ext4(parts["data"], layout.data_size, DATA_LABEL, None)
    image.unlink(missing_ok=True)
    with open(image, "wb") as handle:
        handle.truncate(layout.total_size)
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(image)],
         input=layout.sfdisk_script(disk_id).encode())  # fmt: skip
    fd = os.open(image, os.O_WRONLY)
    try:
        copy_into(parts["boot"], fd, layout.boot.start)
        copy_into(parts["root"], fd, layout.root.start)
        copy_into(parts["data"], fd, layout.data.start)
        os.fsync(fd)
    finally:
        os.close(fd)
    for path in parts.values():
        path.unlink()


def compress(image: Path, level: int) -> Path:
    """`IMAGE.xz` next to the image (multi-threaded xz) and its `.sha256` in sha256sum's format.
    Level 1 is ~6x faster than 6 on two cores for a ~20 % larger file."""
    packed = image.with_name(image.name + ".xz")
    with open(packed, "wb") as out:
        _run(["xz", "--threads=0", f"-{level}", "--stdout", str(image)], stdout=out)
    digest = hashlib.sha256()
    with open(packed, "rb") as handle:
        while block := handle.read(_COPY_CHUNK):
            digest.update(block)
    packed.with_name(packed.name + ".sha256").write_text(f"{digest.hexdigest()}  {packed.name}\n")
    return packed


def used_bytes(path: Path) -> int:
    """Bytes a directory tree occupies (what the root partition must hold)."""
    done = subprocess.run(
        ["du", "-sb", "--one-file-system", str(path)], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[0])
