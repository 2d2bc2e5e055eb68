"""The live configuration: `edge.toml` plus an overlay of settings changed at runtime, kept on the data dir.

A change is merged, validated as a whole, written atomically, and only then applied; a bad change leaves the
previous configuration in force. Used by the daemon and by the API's settings endpoints (and the setup page).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinal.fsutil import write_json_atomic

from spinal_edge.config_file import validate_config
from spinal_edge.errors import ConfigError
from spinal_edge.settings import EdgeConfig

log = logging.getLogger(__name__)

OVERLAY_NAME = "edge.overlay.json"
# The overlay lives on the data dir, so the data dir itself cannot be moved by it.
_NOT_IN_OVERLAY = ("data_dir",)
_MAX_OVERLAY_BYTES = 1 << 20

SettingsListener = Callable[[EdgeConfig, EdgeConfig], None]

#: A saved value that removes the key from edge.toml's table too (null only drops a saved value): a camera
#: renamed on the setup page must not come back under its old name from the config file.
REMOVED: dict[str, Any] = {"$removed": True}


def is_removed(value: Any) -> bool:
    return isinstance(value, dict) and value == REMOVED


def deep_merge(base: dict[str, Any], patch: dict[str, Any], *, keep_removals: bool = False) -> dict[str, Any]:
    """`base` updated by `patch`, recursing into tables; a None value in `patch` removes the key, and so does
    REMOVED (kept as the value instead with `keep_removals`, which is how the overlay remembers it)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif is_removed(value):
            if keep_removals:
                out[key] = dict(REMOVED)
            else:
                out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and not is_removed(out[key]):
            out[key] = deep_merge(out[key], value, keep_removals=keep_removals)
        else:
            out[key] = copy.deepcopy(value)
    return out


class SettingsStore:
    """The configuration in force, its overlay file, and the listeners that apply changes."""

    def __init__(self, base_raw: dict[str, Any], *, source: str = "edge.toml") -> None:
        self._lock = threading.Lock()
        self._base_raw = copy.deepcopy(base_raw)
        self._source = source
        self._config = validate_config(base_raw, source=source)
        self._overlay: dict[str, Any] = {}
        self._listeners: list[SettingsListener] = []
        self.overlay_error: str = ""

    @property
    def config(self) -> EdgeConfig:
        return self._config

    @property
    def overlay(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._overlay)

    @property
    def overlay_path(self) -> Path:
        return self._config.data_dir / OVERLAY_NAME

    def add_listener(self, listener: SettingsListener) -> None:
        """Call `listener(old, new)` after every applied change (from the thread that made the change)."""
        self._listeners.append(listener)

    def load_overlay(self) -> None:
        """Apply the saved overlay at start-up; a bad one is set aside (named in `overlay_error`), never fatal."""
        path = self.overlay_path
        if not path.exists():
            return
        try:
            raw = path.read_bytes()
            if len(raw) > _MAX_OVERLAY_BYTES:
                raise ConfigError(f"{path}: the saved settings are larger than 1 MiB; delete the file.")
            overlay = json.loads(raw)
            if not isinstance(overlay, dict):
                raise ConfigError(f"{path}: the saved settings are not a JSON object; delete the file.")
            config = self._validated(overlay, source=str(path))
        except (ConfigError, OSError, ValueError) as exc:
            self.overlay_error = (
                f"{exc}" if isinstance(exc, ConfigError) else f"{path}: unreadable saved settings ({exc})."
            )
            log.error(
                "saved settings rejected; running on the config file alone",
                extra={"error": self.overlay_error},
            )
            return
        with self._lock:
            self._overlay = overlay
            self._config = config

    def update(self, patch: dict[str, Any]) -> EdgeConfig:
        """Merge `patch` into the overlay, validate, persist atomically, apply; raises ConfigError and keeps the
        previous configuration when the result is invalid."""
        for key in _NOT_IN_OVERLAY:
            if key in patch:
                raise ConfigError(
                    f"settings: {key} cannot be changed at runtime; change it in {self._source} and restart.",
                    field=key,
                )
        with self._lock:
            overlay = deep_merge(self._overlay, patch, keep_removals=True)
            new = self._validated(overlay, source="settings")
            write_json_atomic(self.overlay_path, overlay, sort_keys=True, mode=0o600, make_parents=True)
            old, self._overlay, self._config = self._config, overlay, new
            self.overlay_error = ""
        self._notify(old, new)
        return new

    def reset(self) -> EdgeConfig:
        """Drop every runtime change: back to the config file alone (the overlay file is removed)."""
        with self._lock:
            old = self._config
            self._overlay = {}
            self._config = validate_config(self._base_raw, source=self._source)
            self.overlay_path.unlink(missing_ok=True)
            new = self._config
        self._notify(old, new)
        return new

    def _validated(self, overlay: dict[str, Any], *, source: str) -> EdgeConfig:
        for key in _NOT_IN_OVERLAY:
            if key in overlay:
                raise ConfigError(f"{source}: {key} cannot be a saved setting; remove it there.", field=key)
        return validate_config(deep_merge(self._base_raw, overlay), source=source)

    def _notify(self, old: EdgeConfig, new: EdgeConfig) -> None:
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                log.exception("a settings listener failed")
