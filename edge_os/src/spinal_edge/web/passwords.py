"""Admin password hashing with scrypt (a memory-hard KDF from the standard library), per-password salt.

Used by `AdminAccount`; the stored form is `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64, no padding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from spinal_edge.web.errors import AccountFileError, PasswordPolicyError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
_SALT_BYTES = 16
_HASH_BYTES = 32
_STORED = re.compile(
    r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{16,64})\$([A-Za-z0-9+/]{32,88})$"
)
# Bounds on parameters read back from disk, so a tampered account file cannot make a login take minutes.
_LN_RANGE = range(10, 21)
_R_RANGE = range(1, 17)
_P_RANGE = range(1, 5)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def check_password_policy(password: str, confirmation: str | None = None) -> None:
    """Raise PasswordPolicyError naming what to change when `password` is not acceptable as the admin password."""
    if confirmation is not None and not hmac.compare_digest(password.encode(), confirmation.encode()):
        raise PasswordPolicyError("The two passwords differ; type the same password in both fields.")
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordPolicyError(f"The password is too short; use at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordPolicyError(f"The password is too long; use at most {MAX_PASSWORD_CHARS} characters.")
    if password.strip() != password or not password.isprintable():
        raise PasswordPolicyError(
            "The password starts or ends with a space or contains control characters; remove them."
        )
    if len(set(password)) < 4:
        raise PasswordPolicyError("The password repeats too few characters; use at least 4 different ones.")


@dataclass(frozen=True, slots=True)
class PasswordHasher:
    """scrypt with cost 2**log2_n; the default (32 MiB, ~0.1-0.3 s on a Raspberry Pi 4) resists offline guessing."""

    log2_n: int = 15
    r: int = 8
    p: int = 1

    def hash(self, password: str) -> str:
        """The stored form of `password` with a fresh random salt."""
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = _scrypt(password, salt, self.log2_n, self.r, self.p)
        return f"$scrypt$ln={self.log2_n},r={self.r},p={self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, stored: str) -> bool:
        """True when `password` hashes to `stored` (constant-time compare); AccountFileError if `stored` is bad."""
        match = _STORED.match(stored)
        if not match:
            raise AccountFileError("The stored admin password is not in a known format; reset the device.")
        ln, r, p = (int(match.group(i)) for i in (1, 2, 3))
        if ln not in _LN_RANGE or r not in _R_RANGE or p not in _P_RANGE:
            raise AccountFileError("The stored admin password has out-of-range parameters; reset the device.")
        salt, expected = _unb64(match.group(4)), _unb64(match.group(5))
        if len(password) > MAX_PASSWORD_CHARS:
            # Still burn one hash so the answer time does not reveal the length rule.
            _scrypt("", salt, ln, r, p)
            return False
        return hmac.compare_digest(_scrypt(password, salt, ln, r, p), expected)

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than this hasher's (upgrade it at next login)."""
        return not stored.startswith(f"$scrypt$ln={self.log2_n},r={self.r},p={self.p}$")

    def burn(self) -> None:
        """Spend one hash's time; used when there is no account, so timing does not tell."""
        _scrypt("", b"\0" * _SALT_BYTES, self.log2_n, self.r, self.p)


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int) -> bytes:
    n = 1 << ln
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=_HASH_BYTES
    )
