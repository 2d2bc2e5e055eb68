"""Deciding whether a flash target is safe to overwrite: a whole disk that holds no mounted filesystem, no swap,
no device-mapper volume and is not the disk this computer runs from; or a regular file. Used by `spinal image flash`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from spinal.image.errors import FlashRefusedError

DevNum = tuple[int, int]


@dataclass(frozen=True)
class SystemView:
    """Where the kernel describes mounts, swap and block devices (real paths by default; a fake tree in tests)."""

    mountinfo: Path = Path("/proc/self/mountinfo")
    swaps: Path = Path("/proc/swaps")
    sys_dev_block: Path = Path("/sys/dev/block")


@dataclass(frozen=True)
class FlashTarget:
    """A checked place to write an image: a whole block device (size known) or a regular file (size None)."""

    path: Path
    is_block_device: bool
    size: int | None
    description: str


def inspect_target(path: Path, system: SystemView | None = None) -> FlashTarget:
    """Return the target when it is safe to overwrite; raise FlashRefusedError saying why not otherwise."""
    system = system or SystemView()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if path.parent.is_dir():
            return FlashTarget(path=path, is_block_device=False, size=None, description=f"new file {path}")
        raise FlashRefusedError(f"{path} does not exist; give the card's device, e.g. /dev/sdb") from None
    if stat.S_ISREG(st.st_mode):
        return FlashTarget(path=path, is_block_device=False, size=None, description=f"file {path}")
    if not stat.S_ISBLK(st.st_mode):
        raise FlashRefusedError(
            f"{path} is neither a disk nor a regular file; give the card's device, e.g. /dev/sdb"
        )
    return _inspect_block_device(path, (os.major(st.st_rdev), os.minor(st.st_rdev)), system)


def _inspect_block_device(path: Path, dev: DevNum, system: SystemView) -> FlashTarget:
    node = system.sys_dev_block / f"{dev[0]}:{dev[1]}"
    if not node.exists():
        raise FlashRefusedError(f"{path} is not a block device the kernel lists; check the path")
    node = node.resolve()
    if (node / "partition").exists():
        raise FlashRefusedError(f"{path} is a partition; give the whole card (e.g. /dev/sdb, not /dev/sdb1)")
    own = {dev} | {_read_dev(child / "dev") for child in node.iterdir() if (child / "partition").exists()}
    users = _disk_users(system)
    root_disks = users.get("/", set())
    if dev in root_disks:
        raise FlashRefusedError(f"{path} is the disk this computer runs from; choose the SD card's device")
    for where, disks in sorted(users.items()):
        if dev in disks:
            action = "turn that swap off" if where == "swap" else f"unmount {where}"
            raise FlashRefusedError(f"{path} is in use ({where}); {action} first (or choose another device)")
    for child_dev in own:
        holders = system.sys_dev_block / f"{child_dev[0]}:{child_dev[1]}" / "holders"
        if holders.is_dir() and any(holders.iterdir()):
            raise FlashRefusedError(f"{path} is held by a device-mapper, RAID or LVM volume; close it first")
    if _read_text(node / "ro") == "1":
        raise FlashRefusedError(f"{path} is read-only; check the SD card's lock switch")
    size = int(_read_text(node / "size") or "0") * 512
    if size == 0:
        raise FlashRefusedError(f"{path} has no medium (size 0); insert the card")
    model = _read_text(node / "device" / "model")
    label = f"{model}, " if model else ""
    return FlashTarget(
        path=path, is_block_device=True, size=size, description=f"{path} ({label}{size / 1e9:.1f} GB)"
    )


def _disk_users(system: SystemView) -> dict[str, set[DevNum]]:
    """For each mount point (and 'swap'), the whole disks underneath it."""
    users: dict[str, set[DevNum]] = {}
    for mountpoint, dev, source in _mounts(system.mountinfo):
        devs = {dev} if dev[0] != 0 else set()
        source_dev = _block_dev_of(source)
        if source_dev:
            devs.add(source_dev)
        disks = set().union(*(_disks_under(d, system) for d in devs)) if devs else set()
        if disks:
            users.setdefault(mountpoint, set()).update(disks)
    for source in _swap_sources(system.swaps):
        source_dev = _block_dev_of(source)
        if source_dev:
            users.setdefault("swap", set()).update(_disks_under(source_dev, system))
    return users


def _disks_under(dev: DevNum, system: SystemView, depth: int = 0) -> set[DevNum]:
    """The whole disks a block device lives on: a partition's parent, or a device-mapper volume's slaves."""
    node = system.sys_dev_block / f"{dev[0]}:{dev[1]}"
    if depth > 16 or not node.exists():
        return set()
    node = node.resolve()
    if (node / "partition").exists():
        node = node.parent
    slaves = node / "slaves"
    if slaves.is_dir() and any(slaves.iterdir()):
        found: set[DevNum] = set()
        for slave in slaves.iterdir():
            found |= _disks_under(_read_dev(slave / "dev"), system, depth + 1)
        return found
    return {_read_dev(node / "dev")}


def _mounts(mountinfo: Path) -> list[tuple[str, DevNum, str]]:
    mounts = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        major, minor = (int(x) for x in fields[2].split(":"))
        source = fields[fields.index("-") + 2]
        mounts.append((_unescape(fields[4]), (major, minor), _unescape(source)))
    return mounts


def _swap_sources(swaps: Path) -> list[str]:
    if not swaps.exists():
        return []
    return [line.split()[0] for line in swaps.read_text().splitlines()[1:] if line.strip()]


def _block_dev_of(source: str) -> DevNum | None:
    if not source.startswith("/"):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    return (os.major(st.st_rdev), os.minor(st.st_rdev)) if stat.S_ISBLK(st.st_mode) else None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as three-digit octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _read_dev(path: Path) -> DevNum:
    major, minor = (int(x) for x in path.read_text().strip().split(":"))
    return (major, minor)


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
