"""Secrets on the data partition: atomic owner-only writes that survive power loss.

Used by the admin account, the setup code, the TLS upload and the calibration wizard.
"""

from __future__ import annotations

import os
from pathlib import Path

from spinal_edge.settings_store import write_atomically


def write_private_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` (a crash leaves the old or the new file), created 0600, then given `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
    if mode != 0o600:
        os.chmod(path, mode)
