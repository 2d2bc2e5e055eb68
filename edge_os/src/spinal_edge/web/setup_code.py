"""The first-boot setup code: proof that the person at the page can read the device's console or SD card.

Written by the image's first boot (or by the daemon in dev and demo); the setup page accepts it only while no
admin password exists. Format: one line, e.g. `K7QM-2XHD-RT9C` (letters and digits without 0/O/1/I).
"""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from spinal.fsutil import write_text_atomic

from spinal_edge.web.errors import SetupCodeError

SETUP_CODE_FILE = "setup-code"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_GROUPS, _GROUP_CHARS = 3, 4
# Accept any reasonably strong code the image might write, not only our own format.
_ACCEPTED = re.compile(r"^[A-Z0-9]{8,64}$")


def generate_setup_code() -> str:
    """A fresh code: 12 characters from a 32-letter alphabet (60 bits), grouped by 4 for reading aloud."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(_GROUPS * _GROUP_CHARS))
    return "-".join(chars[i : i + _GROUP_CHARS] for i in range(0, len(chars), _GROUP_CHARS))


def normalize_setup_code(text: str) -> str:
    """The comparable form of a typed code: upper case, without spaces or dashes."""
    return re.sub(r"[\s\-]", "", text).upper()


class SetupCode:
    """The code in `<data_dir>/setup-code`, plus copies a person can read (e.g. the FAT boot partition)."""

    def __init__(self, path: Path, *, mirror_paths: Sequence[Path] = ()) -> None:
        self.path = path
        self.mirror_paths = tuple(mirror_paths)

    def read(self) -> str | None:
        """The code as written (first non-empty line), or None when there is no usable code file."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")[:1024]
        except (FileNotFoundError, IsADirectoryError):
            return None
        for line in text.splitlines():
            if line.strip():
                code = line.strip()
                return code if _ACCEPTED.match(normalize_setup_code(code)) else None
        return None

    def ensure(self) -> tuple[str, bool]:
        """The current code, generating and storing one when there is none; returns (code, created)."""
        code = self.read()
        if code is not None:
            return code, False
        return self.regenerate(), True

    def regenerate(self) -> str:
        """Write a new code (factory reset) to the data dir and every mirror; returns it."""
        code = generate_setup_code()
        write_text_atomic(self.path, code + "\n", mode=0o600, make_parents=True)
        for mirror in self.mirror_paths:
            # A missing boot partition must not stop a reset; the console still shows the code.
            with contextlib.suppress(OSError):
                write_text_atomic(mirror, code + "\n", mode=0o644, make_parents=True)
        return code

    def check(self, typed: str) -> None:
        """Raise SetupCodeError unless `typed` is the code (constant-time compare)."""
        code = self.read()
        if code is None:
            raise SetupCodeError(
                f"This device has no setup code ({self.path}); restart the daemon to make one."
            )
        given = normalize_setup_code(typed[:128]).encode()
        if not hmac.compare_digest(given, normalize_setup_code(code).encode()):
            raise SetupCodeError("That setup code is wrong; copy it from the console or setup-code.txt.")
