"""Files on the FAT boot partition of an image file or card, read and written with mtools at the partition's
offset (no mounting, no loop device, no root). Used by `spinal image configure`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from spinal.image.errors import ImageError, ToolMissingError
from spinal.image.partitions import read_partition_table


class BootPartition:
    """The FAT boot partition inside the disk image or block device at `disk`."""

    def __init__(self, disk: Path) -> None:
        for tool in ("mcopy", "mdir", "mdel"):
            if shutil.which(tool) is None:
                raise ToolMissingError(f"{tool} is not installed; install mtools (e.g. apt install mtools)")
        self.disk = disk
        self.partition = read_partition_table(disk).boot_partition()
        self._drive = f"{disk}@@{self.partition.start}"

    def _run(self, args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        with tempfile.TemporaryDirectory(prefix="spinal-mtools-") as home:
            # An empty config so a person's ~/.mtoolsrc cannot redirect the drive; skip the geometry check
            # mtools does for floppies.
            rc = Path(home, "mtoolsrc")
            rc.write_text("")
            env = {**os.environ, "MTOOLSRC": str(rc), "MTOOLS_SKIP_CHECK": "1"}
            return subprocess.run(args, input=stdin, capture_output=True, env=env, check=False)

    def names(self) -> list[str]:
        """File names in the partition's root directory."""
        done = self._run(["mdir", "-b", "-i", self._drive, "::/"])
        if done.returncode != 0:
            raise ImageError(f"cannot list the boot partition of {self.disk}: {_first_line(done.stderr)}")
        return [
            line.rsplit("/", 1)[-1]
            for line in done.stdout.decode(errors="replace").splitlines()
            if line.strip()
        ]

    def exists(self, name: str) -> bool:
        return name.lower() in (n.lower() for n in self.names())

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        if not self.exists(name):
            return None
        done = self._run(["mcopy", "-n", "-i", self._drive, f"::/{name}", "-"])
        if done.returncode != 0:
            raise ImageError(f"cannot read {name} from {self.disk}: {_first_line(done.stderr)}")
        return done.stdout

    def write(self, name: str, data: bytes) -> None:
        """Create or replace the file; the bytes travel on a pipe, never in a command line or a temp file."""
        done = self._run(["mcopy", "-o", "-i", self._drive, "-", f"::/{name}"], stdin=data)
        if done.returncode != 0:
            raise ImageError(f"cannot write {name} to {self.disk}: {_first_line(done.stderr)}")

    def delete(self, name: str) -> None:
        if not self.exists(name):
            return
        done = self._run(["mdel", "-i", self._drive, f"::/{name}"])
        if done.returncode != 0:
            raise ImageError(f"cannot delete {name} from {self.disk}: {_first_line(done.stderr)}")


def _first_line(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip()
    return text.splitlines()[0] if text else "mtools failed"
