"""The device's single admin account: its password hash in a 0600 JSON file on the data partition.

Used by the setup flow (first password), login, password change and factory reset.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from spinal.fsutil import write_json_atomic

from spinal_edge.web.errors import AccountFileError
from spinal_edge.web.passwords import PasswordHasher, check_password_policy

ACCOUNT_FILE = "web/admin.json"
_MAX_FILE_BYTES = 4096


class AdminAccount:
    """Whether a password is set, setting it, and checking it. A damaged file keeps the page locked."""

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        """True once an admin password exists; a present but damaged file also counts (fail closed)."""
        return self.path.exists()

    def set_password(self, password: str, confirmation: str | None = None) -> None:
        """Check the policy, hash, and store atomically (0600); raises PasswordPolicyError with the fix."""
        check_password_policy(password, confirmation)
        self._store(password)

    def verify(self, password: str) -> bool:
        """True when `password` is the admin password; False when none is set (after the same work)."""
        with self._lock:
            stored = self._read_hash()
        if stored is None:
            self.hasher.burn()
            return False
        ok = self.hasher.verify(password, stored)
        if ok and self.hasher.needs_rehash(stored):
            self._store(password)  # upgrade the hash parameters of an accepted password
        return ok

    def _store(self, password: str) -> None:
        record = {
            "version": 1,
            "user": "admin",
            "hash": self.hasher.hash(password),
            "changed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self._lock:
            write_json_atomic(self.path, record, mode=0o600, make_parents=True)

    def clear(self) -> None:
        """Forget the password (factory reset): the setup code is asked for again."""
        with self._lock:
            self.path.unlink(missing_ok=True)

    def _read_hash(self) -> str | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AccountFileError(f"{self.path}: cannot read the admin account ({exc.strerror}).") from exc
        if len(raw) > _MAX_FILE_BYTES:
            raise AccountFileError(f"{self.path}: the admin account file is too large; reset the device.")
        try:
            record = json.loads(raw)
            stored = record["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AccountFileError(
                f"{self.path}: the admin account file is damaged; reset the device."
            ) from exc
        if not isinstance(stored, str):
            raise AccountFileError(f"{self.path}: the admin account file is damaged; reset the device.")
        return stored
