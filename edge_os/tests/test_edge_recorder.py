"""The recorder: complete episode files, discard, the disk guard, a full queue, crash recovery at start-up."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from spinal.recording import EpisodeReader, EpisodeStatus, EpisodeWriter, load_metadata
from spinal.robots import SO101_JOINTS
from spinal_edge.cameras import CameraFrame, CameraSettings, SyntheticCamera
from spinal_edge.control.loop import ControlLoop
from spinal_edge.control.ports import ActionOrigin, RobotMode
from spinal_edge.errors import DiskFullError, EpisodeError
from spinal_edge.recorder import EpisodeRecorder, RecorderState
from spinal_edge.settings import RecordingSettings
from spinal_edge.testing import KinematicArm, wait_for

JOINTS = SO101_JOINTS


def _jpeg(i: int) -> bytes:
    pixels = np.full((24, 32, 3), (i * 10) % 255, dtype=np.uint8)
    return simplejpeg.encode_jpeg(pixels, quality=70, colorspace="RGB")


def _recorder(root: Path, free: list[int] | None = None, **settings: object) -> EpisodeRecorder:
    rec = EpisodeRecorder(
        root,
        RecordingSettings(**settings),
        fps=30,
        joint_names=JOINTS,
        camera_sizes=lambda: {"front": (32, 24)},
        free_bytes=(lambda _p: free[0]) if free is not None else None,
    )
    rec.recover()
    rec.start()
    return rec


def _offer(rec: EpisodeRecorder, n: int, *, origin: ActionOrigin | None = None) -> list[bytes]:
    jpegs = []
    for i in range(n):
        t = time.monotonic_ns()
        rec.offer_frame(t, np.full(6, i, np.float32), np.full(6, -i, np.float32), RobotMode.POLICY, origin)
        jpeg = _jpeg(i)
        rec.offer_camera_frame(CameraFrame("front", i, t, jpeg, 32, 24))
        jpegs.append(jpeg)
    return jpegs


def test_a_stopped_episode_has_every_frame_and_jpeg(tmp_path: Path) -> None:
    rec = _recorder(tmp_path)
    try:
        started = rec.start_episode("pick up the cube")
        assert rec.recording and started.status == "recording"
        # Offered faster than the writer drains them: stop must still write every one first.
        jpegs = _offer(rec, 300, origin=ActionOrigin("sess-1", 7, 2))
        done = rec.stop_episode()
    finally:
        rec.stop()
    assert done.status == "complete" and done.frames == 300 and done.camera_frames == {"front": 300}
    reader = EpisodeReader(tmp_path / done.episode_id)
    assert reader.metadata.task == "pick up the cube" and reader.metadata.status == EpisodeStatus.COMPLETE
    frames = list(reader.iter_frames())
    assert [int(f.state[0]) for f in frames] == list(range(300))
    assert (
        frames[5].mode == "policy"
        and frames[5].source.session_id == "sess-1"
        and frames[5].source.seq_id == 7
    )
    assert [c.jpeg for c in reader.iter_camera_frames("front")] == jpegs
    assert rec.status()["state"] == "idle" and rec.status()["last_episode"]["episode_id"] == done.episode_id


def test_discard_deletes_the_episode(tmp_path: Path) -> None:
    rec = _recorder(tmp_path)
    try:
        episode = rec.start_episode("wave")
        _offer(rec, 5)
        discarded = rec.discard_episode()
    finally:
        rec.stop()
    assert discarded.status == "discarded"
    assert not (tmp_path / episode.episode_id).exists()


def test_episodes_started_within_one_second_get_ids_in_start_order(tmp_path: Path) -> None:
    rec = _recorder(tmp_path)
    started = []
    try:
        for i in range(6):
            started.append(rec.start_episode(f"quick {i}").episode_id)
            rec.stop_episode()
    finally:
        rec.stop()
    assert sorted(started) == started and len(set(started)) == 6
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == started


def test_episode_commands_out_of_order_are_refused_with_the_fix(tmp_path: Path) -> None:
    rec = _recorder(tmp_path)
    try:
        with pytest.raises(EpisodeError, match="no episode is recording; start one first"):
            rec.stop_episode()
        rec.start_episode("a")
        with pytest.raises(EpisodeError, match="stop or discard it first"):
            rec.start_episode("b")
        rec.stop_episode()
    finally:
        rec.stop()


_PLENTY, _LITTLE = 10_000_000_000, 50_000_000  # free bytes around a 100 MB guard


def _disk_fills(rec: EpisodeRecorder, free: list[int]) -> None:
    free[0] = _LITTLE
    wait_for(lambda: rec.state is RecorderState.DISK_FULL, timeout=10)


def _space_is_freed(rec: EpisodeRecorder, free: list[int]) -> None:
    free[0] = _PLENTY
    wait_for(lambda: rec.state is RecorderState.IDLE, timeout=10)


def test_the_disk_guard_stops_recording_cleanly_and_refuses_new_episodes(tmp_path: Path) -> None:
    free = [_PLENTY]
    rec = _recorder(tmp_path, free=free, min_free_mb=100)
    try:
        episode = rec.start_episode("fill the disk")
        _offer(rec, 10)
        _disk_fills(rec, free)
        assert not rec.recording
        assert rec.last_episode is not None and rec.last_episode.stop_reason == "disk guard"
        assert "disk_guard" in rec.warnings.codes()
        with pytest.raises(DiskFullError, match="pull and delete episodes to free space"):
            rec.start_episode("again")
        _space_is_freed(rec, free)
        rec.start_episode("again")
        rec.stop_episode()
    finally:
        rec.stop()
    assert load_metadata(tmp_path / episode.episode_id).status == EpisodeStatus.COMPLETE


def test_why_episodes_ended_survives_a_restart_of_the_recorder(tmp_path: Path) -> None:
    free = [_PLENTY]
    rec = _recorder(tmp_path, free=free, min_free_mb=100)
    try:
        stopped = rec.start_episode("stopped by a person")
        _offer(rec, 5)
        rec.stop_episode()
        guarded = rec.start_episode("cut by the disk guard")
        _offer(rec, 5)
        _disk_fills(rec, free)
        _space_is_freed(rec, free)
        closing = rec.start_episode("open when the daemon stops")
    finally:
        rec.stop()
    restarted = _recorder(tmp_path)  # a new daemon: nothing in memory, only the files
    restarted.stop()
    assert restarted.last_episode is None
    reasons = {
        e.episode_id: load_metadata(tmp_path / e.episode_id).stop_reason for e in (stopped, guarded, closing)
    }
    assert reasons == {
        stopped.episode_id: "stopped",
        guarded.episode_id: "disk guard",
        closing.episode_id: "daemon stopping",
    }


def test_an_episode_with_a_max_duration_ends_itself_and_is_kept(tmp_path: Path) -> None:
    rec = _recorder(tmp_path, max_episode_s=30.0)
    try:
        episode = rec.start_episode("the link may drop", max_duration_s=0.4)
        assert episode.max_duration_s == 0.4
        _offer(rec, 5)
        wait_for(lambda: not rec.recording, timeout=10)
        # The sooner limit wins: here the config's max_episode_s, with its own reason.
        rec.settings = RecordingSettings(max_episode_s=0.3)
        limited = rec.start_episode("the device's limit", max_duration_s=20.0)
        wait_for(lambda: not rec.recording, timeout=10)
    finally:
        rec.stop()
    meta = load_metadata(tmp_path / episode.episode_id)
    assert meta.status == EpisodeStatus.COMPLETE and meta.stop_reason == "max duration"
    assert rec.last_episode is not None and rec.last_episode.episode_id == limited.episode_id
    assert rec.last_episode.stop_reason == "max_episode_s reached"


def test_a_full_queue_refuses_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    rec = EpisodeRecorder(
        tmp_path, RecordingSettings(queue_frames=16), fps=30, joint_names=JOINTS, camera_sizes=dict
    )
    rec._recording_token = 1
    t0 = time.perf_counter()
    accepted = [
        rec.offer_frame(time.monotonic_ns(), np.zeros(6), np.zeros(6), RobotMode.IDLE, None)
        for _ in range(40)
    ]
    assert time.perf_counter() - t0 < 1.0
    assert accepted.count(True) == 16 and rec.refused == 24
    rec._housekeeping()  # what the writer thread does between items
    assert "recorder_queue_full" in rec.warnings.codes()
    assert "24 recorded item(s) were dropped" in rec.warnings.recent()[0].message


def test_an_episode_torn_by_a_crash_is_recovered_at_start_up(tmp_path: Path) -> None:
    writer = EpisodeWriter(
        tmp_path,
        episode_id="20250101T000000Z-abcdef",
        task="t",
        fps=30,
        state_names=JOINTS,
        cameras={"front": (32, 24)},
    )
    for i in range(30):
        writer.append_frame(timestamp=i / 30, state=np.zeros(6), action=np.zeros(6), mode="teleop")
    writer.sync()
    writer.abandon()  # what a power cut leaves: status still "recording"
    rec = EpisodeRecorder(tmp_path, RecordingSettings(), fps=30, joint_names=JOINTS, camera_sizes=dict)
    assert rec.recover() == ["20250101T000000Z-abcdef"]
    meta = load_metadata(tmp_path / "20250101T000000Z-abcdef")
    assert meta.status == EpisodeStatus.RECOVERED and meta.frame_count == 30
    assert "episode_recovered" in rec.warnings.codes()


def test_the_loop_records_its_ticks_and_the_cameras_frames(tmp_path: Path) -> None:
    arm = KinematicArm(leader=True)
    arm.start()
    camera = SyntheticCamera("front", CameraSettings(kind="synthetic", width=64, height=48, fps=30))
    camera.set_joint_source(lambda: arm.latest_state().positions)
    rec = EpisodeRecorder(
        tmp_path, RecordingSettings(), fps=50, joint_names=JOINTS, camera_sizes=lambda: {"front": (64, 48)}
    )
    rec.start()
    loop = ControlLoop(arm, {"front": camera}, rate_hz=50, recorder=rec)
    camera.start()
    loop.start()
    try:
        loop.request_mode(RobotMode.TELEOP, "test")
        arm.set_leader(np.array([5.0, 5, 5, 5, 5, 50]))
        rec.start_episode("mirror")

        def written() -> bool:  # what the episode holds, not what the loop offered before it started
            live = rec.current()
            return live is not None and live.frames >= 40 and live.camera_frames.get("front", 0) >= 10

        wait_for(written, timeout=20)
        done = rec.stop_episode()
    finally:
        loop.stop()
        camera.stop()
        rec.stop()
    reader = EpisodeReader(tmp_path / done.episode_id)
    frames = list(reader.iter_frames())
    assert len(frames) == done.frames >= 40
    assert {f.mode for f in frames} == {"teleop"}
    assert np.allclose(frames[-1].action, [5, 5, 5, 5, 5, 50])
    timestamps = [f.timestamp for f in frames]
    assert timestamps == sorted(timestamps) and timestamps[0] >= 0
    assert len(list(reader.iter_camera_frames("front"))) == done.camera_frames["front"] >= 10
