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
from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config, wait_for
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


def test_an_episode_started_with_max_duration_stops_by_itself(serve) -> None:
    served = serve()
    started = served.client.post("/api/episode/start", json={"task": "lose the link", "max_duration_s": 0.5})
    assert started.status_code == 201 and started.json()["max_duration_s"] == 0.5
    assert started.json()["engine_reset_acked"] is False, "idle, and no policy engine: nothing to acknowledge"
    episode_id = started.json()["episode_id"]
    last = wait_for(lambda: served.client.get("/api/episode").json()["last_episode"], timeout=15)
    assert last["episode_id"] == episode_id and last["stop_reason"] == "max duration"
    assert served.client.get("/api/episode").json()["recording"] is False
    assert _listed(served)[episode_id]["stop_reason"] == "max duration"
    for bad in (0, -1, 86_401, "soon"):
        refused = served.client.post("/api/episode/start", json={"max_duration_s": bad})
        assert refused.status_code == 422, bad
    assert served.client.post("/api/episode/stop").status_code == 409, "nothing was started by a bad request"


def test_a_507_says_whether_the_disk_guard_or_another_recorder_failure_refused(serve, tmp_path: Path) -> None:
    guarded = serve(min_free_mb=1_000_000)  # a terabyte free: more than any test machine has
    refused = guarded.client.post("/api/episode/start", json={"task": "no space"})
    assert refused.status_code == 507
    assert refused.json()["error"] == "DiskFullError"
    assert "pull and delete episodes to free space" in refused.json()["detail"]
    guarded.close()

    broken = serve()
    episodes = tmp_path / "data" / "episodes"
    episodes.rmdir()
    episodes.write_text("a file where the episodes folder should be")
    refused = broken.client.post("/api/episode/start", json={"task": "cannot write"})
    assert refused.status_code == 507
    assert refused.json()["error"] == "RecorderError" and "could not be created" in refused.json()["detail"]


def test_the_boot_id_is_the_same_in_health_and_status_and_changes_with_a_restart(serve) -> None:
    first = serve()
    boot = first.anonymous.get("/healthz").json()["boot_id"]
    assert len(boot) >= 16 and first.client.get("/api/status").json()["boot_id"] == boot
    assert first.anonymous.get("/healthz").json()["boot_id"] == boot, "stable while the daemon runs"
    first.close()
    again = serve()
    rebooted = again.anonymous.get("/healthz").json()["boot_id"]
    assert rebooted != boot and again.client.get("/api/status").json()["boot_id"] == rebooted
