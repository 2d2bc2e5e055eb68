"""Runtime settings: validated before they apply, saved atomically, the previous config kept on error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spinal_edge.errors import ConfigError
from spinal_edge.settings import EdgeConfig
from spinal_edge.settings_store import OVERLAY_NAME, SettingsStore, deep_merge


def _store(tmp_path: Path) -> SettingsStore:
    return SettingsStore({"data_dir": str(tmp_path), "loop": {"rate_hz": 30}}, source="edge.toml")


def test_a_valid_change_applies_saves_and_notifies(tmp_path: Path) -> None:
    store = _store(tmp_path)
    seen: list[tuple[float, float]] = []
    store.add_listener(lambda old, new: seen.append((old.loop.rate_hz, new.loop.rate_hz)))
    new = store.update({"loop": {"rate_hz": 60}})
    assert new.loop.rate_hz == 60 and store.config.loop.rate_hz == 60
    assert seen == [(30, 60)]
    assert json.loads((tmp_path / OVERLAY_NAME).read_text()) == {"loop": {"rate_hz": 60}}
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left behind"


def test_an_invalid_change_keeps_the_previous_config_and_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.update({"inference": {"task": "stack the cubes"}})
    before = (tmp_path / OVERLAY_NAME).read_bytes()
    with pytest.raises(ConfigError, match=r"\[loop\] rate_hz = 1000 is invalid .* set it between 1 and 100"):
        store.update({"loop": {"rate_hz": 1000}})
    assert store.config.loop.rate_hz == 30
    assert store.config.inference.task == "stack the cubes"
    assert (tmp_path / OVERLAY_NAME).read_bytes() == before


def test_saved_changes_come_back_after_a_restart(tmp_path: Path) -> None:
    _store(tmp_path).update({"loop": {"rate_hz": 45}, "inference": {"task": "wave"}})
    restarted = _store(tmp_path)
    assert restarted.config.loop.rate_hz == 30
    restarted.load_overlay()
    assert restarted.config.loop.rate_hz == 45 and restarted.config.inference.task == "wave"
    assert restarted.overlay_error == ""


def test_a_corrupt_saved_file_is_set_aside_not_fatal(tmp_path: Path) -> None:
    (tmp_path / OVERLAY_NAME).write_text('{"loop": {"rate_hz": ')
    store = _store(tmp_path)
    store.load_overlay()
    assert isinstance(store.config, EdgeConfig) and store.config.loop.rate_hz == 30
    assert OVERLAY_NAME in store.overlay_error


def test_a_saved_value_that_no_longer_validates_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / OVERLAY_NAME).write_text(json.dumps({"http": {"port": 99999}}))
    store = _store(tmp_path)
    store.load_overlay()
    assert store.config.http.port == 8080
    assert "[http] port = 99999 is invalid" in store.overlay_error


def test_the_data_dir_cannot_move_at_runtime(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(ConfigError, match="data_dir cannot be changed at runtime"):
        store.update({"data_dir": "/tmp/elsewhere"})


def test_null_removes_a_saved_value_and_reset_forgets_all(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.update({"loop": {"rate_hz": 60}, "inference": {"task": "t"}})
    store.update({"loop": {"rate_hz": None}})
    assert store.config.loop.rate_hz == 30 and store.config.inference.task == "t"
    store.reset()
    assert store.config.inference.task == "" and not (tmp_path / OVERLAY_NAME).exists()


def test_deep_merge_recurses_into_tables_only() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1, 2]}
    assert deep_merge(base, {"a": {"b": 5}, "d": [3]}) == {"a": {"b": 5, "c": 2}, "d": [3]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1, 2]}
