"""Zenoh key expressions of a served policy, and the sanitizer that makes user strings safe key chunks.

`@lerobot/<model_id>/<revision>/<task>/...`: a verbatim root chunk, single-depth wildcards only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spinal.protocol.constants import DEFAULT_KEY_ROOT
from spinal.protocol.errors import KeyExpressionError

RESERVED_SEGMENTS = frozenset({"status", "session", "server", "obs", "action", "reset", "alive", "telemetry"})
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.\-]+")
_VERBATIM_ROOT = re.compile(r"^@[A-Za-z0-9_.\-]+$")
MAX_SEGMENT_CHARS = 128


def sanitize_key_segment(value: str) -> str:
    """One safe key chunk: runs of characters outside [A-Za-z0-9_.-] become '-', ends trimmed of '-' and '.'.

    Empty results and reserved chunks (status, session, server, obs, action, reset, alive, telemetry) are refused.
    """
    if not isinstance(value, str):
        raise KeyExpressionError(f"a key segment must be a string, got {type(value).__name__}")
    cleaned = _UNSAFE_RUN.sub("-", value.strip()).strip("-.")
    if not cleaned:
        raise KeyExpressionError(
            f"{value!r:.60} sanitizes to an empty key chunk; use letters, digits, _ . or -"
        )
    if len(cleaned) > MAX_SEGMENT_CHARS:
        raise KeyExpressionError(f"key segment {cleaned[:40]!r}... is over {MAX_SEGMENT_CHARS} characters")
    if cleaned in RESERVED_SEGMENTS:
        raise KeyExpressionError(
            f"{cleaned!r} is a reserved key chunk ({', '.join(sorted(RESERVED_SEGMENTS))})"
        )
    return cleaned


def validate_root(root: str) -> str:
    """The root must be one verbatim chunk (`@name`), so third-party `**` subscribers never match the tree."""
    if not isinstance(root, str) or not _VERBATIM_ROOT.match(root):
        raise KeyExpressionError(
            f"key root {root!r:.60} must be a single verbatim chunk such as '@lerobot' ('@' then letters, digits, _ . -)"
        )
    return root


@dataclass(frozen=True, slots=True)
class ServiceKeys:
    """The key expressions of one served (model, revision, task) under a root chunk."""

    prefix: str

    @classmethod
    def for_service(
        cls,
        model_id: str,
        revision: str | None = "main",
        task: str | None = "default",
        *,
        root: str = DEFAULT_KEY_ROOT,
    ) -> ServiceKeys:
        """`<root>/<model_id>/<revision>/<task>` with every user segment sanitized."""
        parts = [
            validate_root(root),
            sanitize_key_segment(model_id),
            sanitize_key_segment(revision or "main"),
            sanitize_key_segment(task or "default"),
        ]
        return cls("/".join(parts))

    # per service
    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def session(self) -> str:
        return f"{self.prefix}/session"

    @property
    def server_alive(self) -> str:
        return f"{self.prefix}/server/alive"

    # per client
    def obs(self, client_uuid: str) -> str:
        return self._client(client_uuid, "obs")

    def action(self, client_uuid: str) -> str:
        return self._client(client_uuid, "action")

    def reset(self, client_uuid: str) -> str:
        return self._client(client_uuid, "reset")

    def alive(self, client_uuid: str) -> str:
        return self._client(client_uuid, "alive")

    def telemetry(self, client_uuid: str) -> str:
        return self._client(client_uuid, "telemetry")

    # single-depth wildcards, never `**`
    @property
    def all_obs(self) -> str:
        return f"{self.prefix}/*/obs"

    @property
    def all_reset(self) -> str:
        return f"{self.prefix}/*/reset"

    @property
    def all_alive(self) -> str:
        return f"{self.prefix}/*/alive"

    @property
    def all_telemetry(self) -> str:
        return f"{self.prefix}/*/telemetry"

    def _client(self, client_uuid: str, leaf: str) -> str:
        return f"{self.prefix}/{sanitize_key_segment(client_uuid)}/{leaf}"

    def client_uuid_from_key(self, key: str) -> str:
        """The client chunk of a per-client key under this service (`<prefix>/<uuid>/<leaf>`)."""
        key = str(key)
        if not key.startswith(self.prefix + "/"):
            raise KeyExpressionError(f"key {key[:80]!r} is not under service {self.prefix!r}")
        rest = key[len(self.prefix) + 1 :].split("/")
        if len(rest) != 2 or not rest[0] or rest[0] in RESERVED_SEGMENTS:
            raise KeyExpressionError(f"key {key[:80]!r} is not a per-client key of {self.prefix!r}")
        return rest[0]


def client_uuid_from_key(key: str) -> str:
    """The second-to-last chunk of a per-client key (`.../<uuid>/obs`)."""
    parts = str(key).split("/")
    if len(parts) < 2 or not parts[-2]:
        raise KeyExpressionError(f"key {str(key)[:80]!r} has no client chunk")
    return parts[-2]
