"""Recording through the device API over real HTTP on 127.0.0.1: what a client like `spinal record` relies on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from spinal_edge.assembly import make_recorder
from spinal_edge.cameras import CameraSettings, SyntheticCamera
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.settings_store import SettingsStore
from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config
from spinal_edge.warnings_log import WarningLog

pytestmark = pytest.mark.slow


def _daemon(data_dir: Path, **recording: Any) -> EdgeDaemon:
    store = SettingsStore(
        data_dir_config(data_dir, loop={"rate_hz": 50}, web={"enabled": False}, recording=recording)
    )
    camera = SyntheticCamera("front", CameraSettings(kind="synthetic", width=64, height=48, fps=20))
    warnings = WarningLog()
    recorder = make_recorder(store.config, {"front": camera}, warnings)
    return EdgeDaemon(
        store, arm=KinematicArm(leader=True), cameras={"front": camera}, recorder=recorder, warnings=warnings
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServedDaemon]]:
    """Starts a daemon with a recorder on `tmp_path/data` (again after a restart); stops every one it started."""
    started: list[ServedDaemon] = []

    def start(**recording: Any) -> ServedDaemon:
        served = ServedDaemon(_daemon(tmp_path / "data", **recording)).__enter__()
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.close()


def _listed(served: ServedDaemon) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in served.client.get("/api/episodes").json()["episodes"]}


def test_the_stop_reason_is_listed_with_the_episodes_after_a_restart(serve) -> None:
    first = serve()
    episode = first.client.post("/api/episode/start", json={"task": "stack the cups"}).json()
    stopped = first.client.post("/api/episode/stop").json()
    assert stopped["stop_reason"] == "stopped"
    first.close()
    again = serve()
    assert again.client.get("/api/episode").json()["last_episode"] is None, "a new daemon remembers nothing"
    listed = _listed(again)[episode["episode_id"]]
    assert listed["stop_reason"] == "stopped" and listed["status"] == "complete"
