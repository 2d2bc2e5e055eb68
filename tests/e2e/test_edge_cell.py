"""End to end: `spinal-server --demo`, the firmware in MicroPython on the simulated rig, and `spinal-edge` as a
process, all on 127.0.0.1 — the arm follows the policy, episodes record completely and survive `kill -9`, the arm
holds while the server is gone and resumes when it is back, teleop mirrors the leader.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import simplejpeg
from spinal.recording import EpisodeReader, EpisodeStatus, load_metadata
from spinal_edge.demo import DemoCell
from spinal_edge.mcu import ArmCalibration
from spinal_edge.testing import wait_for

pytestmark = pytest.mark.slow

CAL = ArmCalibration.so101_default()
STARTUP_S = 180.0


def _streaming(status: dict) -> bool:
    return status["inference"].get("state") == "streaming" and status["mode"] == "policy"


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoCell]:
    with DemoCell(tmp_path_factory.mktemp("policy-cell")) as running:
        running.wait_status(_streaming, timeout=STARTUP_S)
        yield running


def _true_ticks(cell: DemoCell) -> np.ndarray:
    positions = cell.rig.true_positions()
    return np.array([positions[i] for i in sorted(positions)])


def _record(cell: DemoCell, frames: int, task: str = "e2e") -> dict:
    started = cell.client.post("/api/episode/start", json={"task": task})
    assert started.status_code == 201, started.text
    # The policy cell's server acknowledges the new policy episode before recording begins.
    assert started.json()["engine_reset_acked"] is True, started.text
    cell.wait_status(lambda s: (s["recorder"]["episode"] or {}).get("frames", 0) >= frames, timeout=120)
    stopped = cell.client.post("/api/episode/stop")
    assert stopped.status_code == 200, stopped.text
    return stopped.json()


def test_the_arm_follows_the_policys_chunks(cell: DemoCell) -> None:
    episode = _record(cell, 90, task="follow")
    reader = EpisodeReader(cell.data_dir / "episodes" / episode["episode_id"])
    frames = list(reader.iter_frames())
    policy_frames = [f for f in frames if f.mode == "policy" and f.source is not None]
    assert len(policy_frames) >= 60, "the policy drove the arm for the whole episode"
    assert len({f.source.seq_id for f in policy_frames}) >= 2, "actions came from more than one chunk"
    actions = np.array([f.action for f in frames])
    states = np.array([f.state for f in frames])  # what the MCU read back from the simulated servos
    moving = [j for j in range(6) if np.ptp(actions[:, j]) > 5.0]
    assert moving, "the demo policy moves joints"
    for j in moving:
        # The servos follow the commanded actions with some lag: the best-aligned correlation is high.
        best = max(
            np.corrcoef(actions[: len(actions) - lag, j], states[lag:, j])[0, 1] for lag in range(0, 15)
        )
        assert best > 0.8, f"joint {j} does not follow its actions (best correlation {best:.2f})"
    assert np.ptp(_true_ticks(cell)) >= 0  # the rig is alive
    true_before = _true_ticks(cell)
    wait_for(lambda: np.abs(_true_ticks(cell) - true_before).max() > 20, timeout=30)


def test_an_episode_is_recorded_complete_and_downloads_with_checksums(cell: DemoCell) -> None:
    episode = _record(cell, 60, task="pick up the cube")
    assert episode["status"] == "complete" and episode["frames"] >= 60
    listing = cell.client.get("/api/episodes").json()["episodes"]
    entry = next(e for e in listing if e["id"] == episode["episode_id"])
    assert entry["status"] == "complete" and entry["offered"] and entry["task"] == "pick up the cube"
    for file in entry["files"]:
        body = cell.client.get(f"/api/episodes/{entry['id']}/files/{file['name']}").content
        assert len(body) == file["size"] and hashlib.sha256(body).hexdigest() == file["sha256"]
    reader = EpisodeReader(cell.data_dir / "episodes" / episode["episode_id"])
    assert reader.frame_count == episode["frames"] == reader.metadata.frame_count
    assert reader.metadata.status == EpisodeStatus.COMPLETE
    jpegs = list(reader.iter_camera_frames("front"))
    assert len(jpegs) == reader.metadata.camera_frame_counts["front"] >= 30
    assert simplejpeg.decode_jpeg(jpegs[-1].jpeg).shape == (192, 256, 3)


def test_without_the_server_the_arm_holds_and_the_policy_resumes_when_it_returns(cell: DemoCell) -> None:
    cell.kill_server()
    status = cell.wait_status(lambda s: s["inference"]["state"] in ("stalled", "reconnecting"), timeout=60)
    # Once the queued actions ran out (or went stale) nothing moves: sample the MCU's report and the rig.
    cell.wait_status(
        lambda s: s["inference"].get("queue_depth", 1) == 0 or s["inference"]["state"] == "stalled",
        timeout=60,
    )
    time.sleep(0.5)  # let the last commanded step settle
    reported, true = [], []
    for _ in range(15):
        reported.append(cell.status()["mcu"]["positions"])
        true.append(_true_ticks(cell))
        time.sleep(0.1)
    reported_arr, true_arr = np.array(reported), np.array(true)
    assert np.ptp(reported_arr, axis=0).max() < 2.0, "the MCU reports no motion beyond tolerance"
    assert np.ptp(true_arr, axis=0).max() < 15, "the simulated servos stand still"
    assert status["mode"] == "policy", "a server outage is not a fault: the daemon waits in policy mode"

    cell.start_server()
    cell.wait_status(_streaming, timeout=STARTUP_S)
    held = _true_ticks(cell)
    wait_for(lambda: np.abs(_true_ticks(cell) - held).max() > 20, timeout=60)


def test_kill_9_mid_episode_then_restart_recovers_the_episode(tmp_path: Path) -> None:
    with DemoCell(tmp_path / "crash-cell") as cell:
        cell.wait_status(_streaming, timeout=STARTUP_S)
        started = cell.client.post("/api/episode/start", json={"task": "survive a crash"}).json()
        episode_dir = cell.data_dir / "episodes" / started["episode_id"]
        first = cell.wait_status(
            lambda s: (s["recorder"]["episode"] or {}).get("frames", 0) >= 45, timeout=120
        )
        frames_then = first["recorder"]["episode"]["frames"]
        camera_then = first["recorder"]["episode"]["camera_frames"]["front"]
        # Everything written more than a second before the crash must survive it: the recorder syncs at least
        # every second (fsync_interval_s = 1.0); 0.5 s more covers one sync's own duration on a loaded machine.
        waited_from = time.monotonic()
        cell.wait_status(
            lambda s: (
                s["recorder"]["episode"]["frames"] >= frames_then + 15
                and time.monotonic() - waited_from > 1.5
            ),
            timeout=120,
        )
        pid = cell.daemon.pid
        os.kill(pid, signal.SIGKILL)
        cell.daemon.proc.wait(30)
        assert load_metadata(episode_dir).status == EpisodeStatus.RECORDING, "the crash left the episode open"

        cell.start_daemon(timeout=STARTUP_S)
        status = cell.status()
        assert started["episode_id"] in status["recorder"]["recovered"]
        assert "episode_recovered" in {w["code"] for w in status["warnings"]}
        meta = load_metadata(episode_dir)
        assert meta.status == EpisodeStatus.RECOVERED
        assert meta.frame_count >= frames_then, (
            f"lost frames older than a second ({meta.frame_count} < {frames_then})"
        )
        assert meta.camera_frame_counts["front"] >= camera_then
        reader = EpisodeReader(episode_dir)
        assert reader.frame_count == meta.frame_count
        assert len(list(reader.iter_camera_frames("front"))) == meta.camera_frame_counts["front"]
        listing = cell.client.get("/api/episodes").json()["episodes"]
        assert next(e for e in listing if e["id"] == started["episode_id"])["offered"]


def test_teleop_mirrors_the_leader_onto_the_follower(tmp_path: Path) -> None:
    with DemoCell(tmp_path / "teleop-cell", leader=True, start_mode="teleop") as cell:
        cell.wait_status(lambda s: s["mode"] == "teleop", timeout=STARTUP_S)
        for pose in (
            [2048 + 300, 2048 - 250, 2048 + 200, 2048 - 150, 2048 + 100, 2048 + 350],
            [2048 - 200, 2048 + 150, 2048 - 300, 2048 + 250, 2048 - 100, 2048 - 300],
        ):
            cell.rig.drive_leader(lambda t, pose=pose: pose)

            def mirrored(pose: list[int] = pose) -> bool:
                return bool(np.abs(_true_ticks(cell) - np.array(pose)).max() < 25)

            wait_for(mirrored, timeout=60)
        assert cell.status()["mode"] == "teleop"


def test_the_api_refuses_requests_without_the_token(cell: DemoCell) -> None:
    with httpx.Client(base_url=cell.url, timeout=10) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/api/status").status_code == 401
        assert anonymous.post("/api/mode", json={"mode": "idle"}).status_code == 401
        assert anonymous.get("/api/episodes").status_code == 401
