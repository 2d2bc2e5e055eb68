"""Writing an SD-card image (.img or .img.xz) to a checked target and reading it back to verify.

`spinal image flash` drives it; with `keep_data` only the boot and root partitions are written, so an
update leaves the card's data partition (settings, identity, recordings) as it was.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from spinal.image.errors import FlashRefusedError, FlashVerifyError, ImageError
from spinal.image.layout import matches_for_update
from spinal.image.partitions import SECTOR_SIZE, parse_mbr, read_partition_table
from spinal.image.target import FlashTarget

CHUNK = 4 * 1024 * 1024
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class FlashResult:
    """What was written: the byte ranges, their total, and whether they were read back and matched."""

    ranges: tuple[tuple[int, int], ...]
    bytes_written: int
    verified: bool


def open_image(image: Path) -> BinaryIO:
    """The image's raw bytes as a stream, decompressing .xz on the fly."""
    if image.suffix == ".xz":
        return lzma.open(image, "rb")  # type: ignore[return-value]
    return open(image, "rb")


def image_size(image: Path) -> int | None:
    """Uncompressed size in bytes; for .xz read from the xz index (None when the xz tool is missing)."""
    if image.suffix != ".xz":
        return image.stat().st_size
    if shutil.which("xz") is None:
        return None
    done = subprocess.run(
        ["xz", "--robot", "--list", str(image)], capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "totals" and len(fields) > 4:
            return int(fields[4])
    return None


def check_checksum_file(image: Path) -> bool | None:
    """Compare the image with `IMAGE.sha256` next to it: True/False, or None when there is no such file."""
    sidecar = image.with_name(image.name + ".sha256")
    if not sidecar.exists():
        return None
    expected = sidecar.read_text().split()[0].lower() if sidecar.read_text().strip() else ""
    digest = hashlib.sha256()
    with open(image, "rb") as src:
        for block in iter(lambda: src.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest() == expected


def plan_ranges(image: Path, target: FlashTarget, keep_data: bool) -> tuple[tuple[int, int], ...]:
    """The byte ranges of the image to write: everything, or only boot+root when keeping the data partition."""
    size = image_size(image)
    if target.size is not None and size is not None and size > target.size:
        raise FlashRefusedError(
            f"{target.path} holds {target.size / 1e9:.1f} GB but the image needs {size / 1e9:.1f} GB; use a larger card"
        )
    if not keep_data:
        return ((0, size if size is not None else -1),)
    with open_image(image) as src:
        image_table = parse_mbr(src.read(SECTOR_SIZE))
    if not target.is_block_device and not target.path.exists():
        raise FlashRefusedError(
            f"{target.path} holds no spinal system to update; flash it without --keep-data"
        )
    card_table = read_partition_table(target.path)
    mismatch = matches_for_update(image_table, card_table)
    if mismatch:
        raise FlashRefusedError(
            f"cannot keep the data partition: {mismatch}; flash the whole card without --keep-data"
        )
    return ((image_table.get(1).start, image_table.get(2).end),)


def flash(
    image: Path,
    target: FlashTarget,
    *,
    keep_data: bool = False,
    verify: bool = True,
    progress: Progress | None = None,
) -> FlashResult:
    """Write `image` to `target` (already checked by `inspect_target`), flush it, and read it back."""
    ranges = plan_ranges(image, target, keep_data)
    total = image_size(image)
    # A new or replaced file may stay sparse (zero blocks skipped); a card, or a file being updated in place,
    # gets every byte because old data would otherwise show through.
    sparse = not target.is_block_device and not keep_data
    if target.is_block_device:
        flags = os.O_WRONLY | os.O_EXCL  # O_EXCL on a block device fails with EBUSY while the kernel uses it
    else:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if sparse else 0)
    written_digest = hashlib.sha256()
    written = 0
    try:
        fd = os.open(target.path, flags, 0o644)
    except OSError as exc:
        raise FlashRefusedError(
            f"cannot open {target.path} for writing: {exc.strerror}; is it busy or are you root?"
        ) from exc
    try:
        with open_image(image) as src:
            for offset, block in _blocks(src):
                for start, end in _clip(offset, len(block), ranges):
                    piece = block[start - offset : end - offset]
                    if not sparse or any(piece):
                        os.pwrite(fd, piece, start)
                    written_digest.update(piece)
                    written += len(piece)
                if progress:
                    progress("write", offset + len(block), total)
        if not target.is_block_device:
            end = max(e if e >= 0 else written for _, e in ranges)
            if os.fstat(fd).st_size < end:
                os.ftruncate(fd, end)
        os.fsync(fd)
        # Drop the cached pages so verification reads what the card stored, not what we just wrote.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as exc:
        raise ImageError(
            f"writing {target.path} failed at {written} bytes: {exc.strerror}; try another card or reader"
        ) from exc
    finally:
        os.close(fd)
    real_ranges = tuple((s, e if e >= 0 else written) for s, e in ranges)
    if verify:
        _verify(target.path, real_ranges, written_digest.hexdigest(), progress)
    return FlashResult(ranges=real_ranges, bytes_written=written, verified=verify)


def _verify(
    path: Path, ranges: tuple[tuple[int, int], ...], expected: str, progress: Progress | None
) -> None:
    digest = hashlib.sha256()
    total = sum(e - s for s, e in ranges)
    done = 0
    with open(path, "rb", buffering=0) as card:
        for start, end in ranges:
            card.seek(start)
            remaining = end - start
            while remaining:
                block = card.read(min(CHUNK, remaining))
                if not block:
                    raise FlashVerifyError(
                        f"{path} ended early while verifying; the card is smaller than it claims"
                    )
                digest.update(block)
                remaining -= len(block)
                done += len(block)
                if progress:
                    progress("verify", done, total)
    if digest.hexdigest() != expected:
        raise FlashVerifyError(
            f"{path} returned different data than was written; the card or reader is faulty, try another"
        )


def _blocks(src: BinaryIO) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while True:
        block = src.read(CHUNK)
        if not block:
            return
        yield offset, block
        offset += len(block)


def _clip(offset: int, length: int, ranges: tuple[tuple[int, int], ...]) -> Iterator[tuple[int, int]]:
    """The parts of [offset, offset+length) inside the ranges (an end of -1 means 'to the end')."""
    for start, end in ranges:
        lo = max(offset, start)
        hi = offset + length if end < 0 else min(offset + length, end)
        if lo < hi:
            yield lo, hi
