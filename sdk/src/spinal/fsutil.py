"""Durable file writes: replace a file atomically (temp file, fsync, rename, fsync of the folder).

Used wherever a crash or a power cut must leave either the old or the new file, never a torn one: episode
metadata, the `spinal record` journal, dataset metadata, and on the device its settings, secrets and calibrations.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["fsync_dir", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def fsync_dir(path: str | Path) -> None:
    """Persist a change of a folder's entries (a file created or renamed in it) so it survives power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(
    path: str | Path, data: bytes, *, mode: int | None = None, make_parents: bool = False
) -> None:
    """Replace `path` with `data`: a crash leaves the old or the new content, and the new one is on disk.

    `mode` sets the file's permission bits exactly (e.g. 0o600 for a secret, never looser, not even for a
    moment); None gives a new file's usual permissions (0o666 less the umask). `make_parents` creates the
    folder first. Concurrent writers of the same path each write whole files; the last rename wins.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so the rename is atomic; a unique name, so concurrent writers never share a temp file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if mode is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)  # not subject to the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(
    path: str | Path,
    text: str,
    *,
    encoding: str = "utf-8",
    mode: int | None = None,
    make_parents: bool = False,
) -> None:
    """`write_bytes_atomic` for text."""
    write_bytes_atomic(path, text.encode(encoding), mode=mode, make_parents=make_parents)


def write_json_atomic(
    path: str | Path,
    payload: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    mode: int | None = None,
    make_parents: bool = False,
) -> None:
    """`write_bytes_atomic` for a JSON document (UTF-8, a final newline)."""
    text = json.dumps(payload, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode(), mode=mode, make_parents=make_parents)
