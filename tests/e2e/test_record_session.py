"""`spinal record` against the real device API (the edge daemon's FastAPI app served by uvicorn on 127.0.0.1,
its recorder writing real episode files), with the in-memory arm standing in for the MCU and a leader arm:
teleop sessions, keys on a real pseudo-terminal, --pull-every, --resume, the disk guard, episodes ended on
the device, refused modes and tokens.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from spinal.dataset import DatasetReader, validate_dataset
from spinal.device import DeviceClient
from spinal.record import (
    DeviceControl,
    EndedBy,
    EpisodeFate,
    NoKeys,
    PlainView,
    RecordSession,
    SessionDataset,
    SessionJournal,
    SessionOptions,
    SessionResult,
    TerminalKeys,
)
from spinal.record.view import Phase
from spinal.recording import EpisodeReader
from spinal_edge.assembly import build_daemon
from spinal_edge.settings_store import SettingsStore
from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config, wait_for

TASK = "stack the blocks"
WAIT_S = 60.0  # generous: a loaded 2-core machine


def _device(data_dir: Path, *, leader: bool = True, token: str | None = None, port: int = 0) -> ServedDaemon:
    raw = data_dir_config(
        data_dir,
        loop={"rate_hz": 30},
        cameras={"front": {"kind": "synthetic", "width": 96, "height": 72, "fps": 15}},
        recording={"min_free_mb": 16},
    )
    daemon = build_daemon(SettingsStore(raw), arm=KinematicArm(leader=leader))
    return ServedDaemon(daemon, token=token, port=port)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[ServedDaemon]:
    with _device(tmp_path / "device") as served:
        wait_for(lambda: served.daemon.arm.latest_state() is not None, timeout=WAIT_S)
        yield served


class Run:
    """A session running on a thread, its progress lines captured, its model readable by the test."""

    def __init__(self, session: RecordSession, lines: io.StringIO) -> None:
        self.session = session
        self.lines = lines
        self.result: SessionResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.session.run()
        except BaseException as exc:
            self.error = exc

    def start(self) -> Run:
        self._thread.start()
        return self

    def wait_phase(self, phase: Phase, number: int | None = None) -> None:
        def reached() -> bool:
            model = self.session.model
            if self.error is not None:
                raise self.error
            return model.phase is phase and (number is None or model.number == number)

        wait_for(reached, timeout=WAIT_S, interval=0.02)

    def finish(self) -> SessionResult:
        self._thread.join(WAIT_S * 2)
        assert not self._thread.is_alive(), "the session did not end"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _session(
    served: ServedDaemon,
    tmp_path: Path,
    *,
    keys=None,
    token: str | None = None,
    lost_after_s: float = 2.0,
    **overrides,
) -> tuple[RecordSession, io.StringIO]:
    values = dict(
        device_url=served.url,
        token=token or served.token,
        task=TASK,
        episodes=2,
        episode_time_s=1.0,
        reset_time_s=0.2,
        mode="teleop",
        out_dir=tmp_path / "ds",
        repo_id="me/blocks",
        poll_interval_s=0.2,
        reconnect_timeout_s=30.0,
    )
    values.update(overrides)
    options = SessionOptions(**values)
    client = DeviceClient(options.device_url, token=options.token)
    dataset = SessionDataset(client, options.raw_dir, options.out_dir, repo_id=options.repo_id, workers=1)
    lines = io.StringIO()
    session = RecordSession(
        options,
        DeviceControl(client),
        keys=keys or NoKeys(),
        view=PlainView(lines),
        dataset=dataset,
        lost_after_s=lost_after_s,
    )
    return session, lines


def _recorded(served: ServedDaemon, *, frames: int, camera_frames: int) -> bool:
    episode = served.client.get("/api/episode").json()["episode"] or {}
    cameras = episode.get("camera_frames") or {}
    return episode.get("frames", 0) >= frames and min(cameras.values(), default=0) >= camera_frames


def _episodes_on(served: ServedDaemon) -> dict[str, str]:
    return {e["id"]: e["status"] for e in served.client.get("/api/episodes").json()["episodes"]}


def test_a_teleop_session_records_converts_and_leaves_the_device_idle(
    device: ServedDaemon, tmp_path: Path
) -> None:
    session, lines = _session(device, tmp_path, episodes=2)
    result = session.run()

    assert result.ended_by is EndedBy.DONE and result.held
    assert [e.number for e in result.kept] == [1, 2] and not result.interrupted
    report = validate_dataset(tmp_path / "ds")
    assert report.ok, report.violations
    dataset = DatasetReader(tmp_path / "ds")
    assert dataset.info["total_episodes"] == 2
    assert dataset.tasks == [TASK], "the task is written per episode"
    for entry in result.kept:
        frames = list(EpisodeReader(tmp_path / "ds.recordings" / entry.episode_id).iter_frames())
        assert frames and {f.mode for f in frames} == {"teleop"}, "the leader drove every recorded frame"
    status = device.client.get("/api/status").json()
    assert status["mode"] == "idle" and status["recorder"]["state"] == "idle"
    text = lines.getvalue()
    assert "episode 1/2: recording" in text and "episode 2/2 kept" in text and "dataset ready" in text


def test_keys_on_a_terminal_end_early_rerecord_and_stop(device: ServedDaemon, tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with TerminalKeys(slave) as keys:
            session, lines = _session(
                device, tmp_path, keys=keys, episodes=3, episode_time_s=120, reset_time_s=120
            )
            run = Run(session, lines).start()

            def press(key: bytes) -> None:
                os.write(master, key)

            def some_frames() -> None:
                # A person ends an episode after something happened: let every stream have a few frames.
                wait_for(lambda: _recorded(device, frames=10, camera_frames=3), timeout=WAIT_S)

            run.wait_phase(Phase.RECORDING, 1)
            some_frames()
            press(b"\x1b[C")  # → end episode 1 early
            run.wait_phase(Phase.RESET)
            first = session.journal.kept()[0].episode_id
            press(b"\x1b[D")  # ← in the reset: discard episode 1, record it again
            wait_for(lambda: session.model.rerecorded == 1, timeout=WAIT_S)
            press(b"\x1b[C")  # → skip the rest of the reset
            run.wait_phase(Phase.RECORDING, 1)
            some_frames()
            press(b"\x1b[C")
            run.wait_phase(Phase.RESET)
            press(b"\x1b[C")
            run.wait_phase(Phase.RECORDING, 2)
            press(b"\x1b[D")  # ← while recording: discard episode 2
            run.wait_phase(Phase.RESET)
            press(b"\x1b[C")
            run.wait_phase(Phase.RECORDING, 2)
            press(b"\x1b")  # Esc: stop the session, asked about episode 2
            run.wait_phase(Phase.CONFIRM)
            assert "Keep it?" in session.model.prompt
            press(b"d")
            result = run.finish()
    finally:
        os.close(master)
        os.close(slave)

    assert result.ended_by is EndedBy.ESCAPE
    assert len(result.kept) == 1 and result.kept[0].number == 1 and result.kept[0].note == "ended early"
    assert session.model.rerecorded == 2
    assert _episodes_on(device) == {result.kept[0].episode_id: "complete"}, (
        "the discarded episodes (one kept then re-recorded, one discarded twice) are gone from the device"
    )
    assert first not in _episodes_on(device)
    assert device.client.get("/api/mode").json() == {"mode": "idle"}
    assert validate_dataset(tmp_path / "ds").ok, (result.sync, lines.getvalue())


def test_pull_every_converts_along_the_way_and_at_the_end(device: ServedDaemon, tmp_path: Path) -> None:
    session, lines = _session(device, tmp_path, episodes=3, episode_time_s=0.8, pull_every=1)
    result = session.run()
    assert result.ended_by is EndedBy.DONE
    assert "in the background" in lines.getvalue()
    assert result.sync is not None and result.sync.ok, result.sync
    report = validate_dataset(tmp_path / "ds")
    assert report.ok and report.checked["episodes"] == 3


def test_resume_numbers_episodes_after_the_existing_ones(device: ServedDaemon, tmp_path: Path) -> None:
    first, _ = _session(device, tmp_path, episodes=1)
    assert first.run().ended_by is EndedBy.DONE
    resumed, lines = _session(device, tmp_path, episodes=3, resume=True)
    result = resumed.run()
    assert [e.number for e in result.kept] == [1, 2, 3]
    assert "episode 2/3: recording" in lines.getvalue()
    assert DatasetReader(tmp_path / "ds").info["total_episodes"] == 3, result.sync
    nothing_left, lines = _session(device, tmp_path, episodes=2, resume=True)
    assert len(nothing_left.run().kept) == 3
    assert "nothing left to record" in lines.getvalue()


def test_the_disk_guard_stops_the_session_with_a_clear_message(device: ServedDaemon, tmp_path: Path) -> None:
    session, _ = _session(device, tmp_path, episodes=3, episode_time_s=30)
    run = Run(session, io.StringIO()).start()
    run.wait_phase(Phase.RECORDING, 1)
    wait_for(lambda: _recorded(device, frames=5, camera_frames=0), timeout=WAIT_S)
    guard = device.client.patch("/api/settings", json={"recording": {"min_free_mb": 1_000_000}})
    assert guard.status_code == 200, guard.text
    result = run.finish()
    assert result.ended_by is EndedBy.DISK_GUARD
    assert "disk guard stopped episode 1" in result.problem and "min_free_mb" in result.problem
    assert "--resume" in result.problem
    assert [e.note for e in result.interrupted] == ["cut short by the device's disk guard"]
    assert result.held and device.client.get("/api/mode").json() == {"mode": "idle"}

    again, _ = _session(device, tmp_path / "second", episodes=1)
    refused = again.run()
    assert refused.ended_by is EndedBy.DISK_GUARD and "refuses new episodes" in refused.problem


def test_an_episode_stopped_on_the_device_is_recorded_again(device: ServedDaemon, tmp_path: Path) -> None:
    session, lines = _session(device, tmp_path, episodes=1, episode_time_s=1.5)
    run = Run(session, lines).start()
    run.wait_phase(Phase.RECORDING, 1)
    wait_for(lambda: _recorded(device, frames=3, camera_frames=0), timeout=WAIT_S)
    assert device.client.post("/api/episode/stop").status_code == 200  # e.g. from the device page
    result = run.finish()
    assert len(result.kept) == 1 and len(result.interrupted) == 1
    assert result.interrupted[0].note == "ended on the device (stopped)"
    assert session.model.interrupted == 1 and session.model.kept == 1
    assert "it is recorded again" in lines.getvalue()
    journal = SessionJournal.load(tmp_path / "ds.recordings")
    assert {e.fate for e in journal.entries} == {EpisodeFate.KEPT, EpisodeFate.INTERRUPTED}
    assert DatasetReader(tmp_path / "ds").info["total_episodes"] == 1


def test_an_episode_the_session_cannot_stop_is_ended_by_the_device_at_its_max_duration(
    device: ServedDaemon, tmp_path: Path
) -> None:
    session, lines = _session(device, tmp_path, episodes=1, episode_time_s=3.0, device_limit_margin_s=0.5)
    run = Run(session, lines).start()
    run.wait_phase(Phase.RECORDING, 1)
    device.stop_serving()  # the link goes away for longer than the episode
    try:
        wait_for(lambda: not device.daemon.recorder.recording, timeout=WAIT_S)
    finally:
        device.serve_again()
    result = run.finish()
    (kept,) = result.kept
    assert kept.note == "ended by the device at the session's max duration" and not result.interrupted
    stored = device.client.get(f"/api/episodes/{kept.episode_id}").json()
    assert stored["stop_reason"] == "max duration" and 3.0 <= stored["duration_s"] < 4.5
    assert "the device ended it by itself" in lines.getvalue()
    assert DatasetReader(tmp_path / "ds").info["total_episodes"] == 1


def test_a_quick_restart_of_the_device_is_told_by_its_boot_id(device: ServedDaemon, tmp_path: Path) -> None:
    # The daemon is back before the session would call the device lost: only the boot id tells a restart.
    master, slave = os.openpty()
    restarted: ServedDaemon | None = None
    try:
        with TerminalKeys(slave) as keys:
            session, lines = _session(
                device, tmp_path, keys=keys, episodes=1, episode_time_s=120.0, lost_after_s=120.0
            )
            run = Run(session, lines).start()
            run.wait_phase(Phase.RECORDING, 1)
            wait_for(lambda: _recorded(device, frames=5, camera_frames=0), timeout=WAIT_S)
            cut = device.client.get("/api/episode").json()["episode"]["episode_id"]
            data_dir, token, port = device.daemon.config.data_dir, device.token, device.port
            device.close()
            restarted = _device(data_dir, token=token, port=port).__enter__()
            wait_for(lambda: "the device restarted" in lines.getvalue(), timeout=WAIT_S)
            run.wait_phase(Phase.RECORDING, 1)  # the same episode number, recorded again
            wait_for(lambda: _recorded(restarted, frames=5, camera_frames=0), timeout=WAIT_S)
            os.write(master, b"\x1b[C")  # → end the new take early
            result = run.finish()
    finally:
        os.close(master)
        os.close(slave)
        if restarted is not None:
            restarted.close()
    assert [e.episode_id for e in result.interrupted] == [cut]
    assert result.interrupted[0].note == "the device restarted during it"
    assert len(result.kept) == 1 and result.kept[0].episode_id != cut


def test_a_recorder_failure_at_start_is_not_taken_for_the_disk_guard(
    device: ServedDaemon, tmp_path: Path
) -> None:
    episodes = device.daemon.config.episodes_dir()
    shutil.rmtree(episodes)
    episodes.write_text("a file where the device's episodes folder should be")
    session, _ = _session(device, tmp_path, episodes=1)
    result = session.run()
    assert result.ended_by is EndedBy.RECORDER, result.problem
    assert "episode 1: the device's recorder cannot start an episode" in result.problem
    assert "could not be created" in result.problem and "--resume" in result.problem
    assert result.held and device.client.get("/api/mode").json() == {"mode": "idle"}


def test_teleop_without_a_leader_is_refused_with_the_reason(tmp_path: Path) -> None:
    with _device(tmp_path / "device", leader=False) as served:
        wait_for(lambda: served.daemon.arm.latest_state() is not None, timeout=WAIT_S)
        session, _ = _session(served, tmp_path)
        result = session.run()
    assert result.ended_by is EndedBy.ARMING
    assert "refused teleop mode" in result.problem and "leader" in result.problem
    assert result.sync is None


def test_a_device_recording_for_someone_else_is_left_alone(device: ServedDaemon, tmp_path: Path) -> None:
    theirs = device.client.post("/api/episode/start", json={"task": "theirs"}).json()["episode_id"]
    session, _ = _session(device, tmp_path)
    result = session.run()
    assert result.ended_by is EndedBy.RECORDER and theirs in result.problem
    assert device.client.get("/api/episode").json()["episode"]["episode_id"] == theirs, "still recording"


def test_the_command_exits_6_when_the_device_refuses_the_token(device: ServedDaemon, tmp_path: Path) -> None:
    from spinal.cli import app
    from typer.testing import CliRunner

    args = [
        "record",
        "--device",
        device.url,
        "--token",
        "not-the-token",
        "--task",
        TASK,
        "--out",
        str(tmp_path / "ds"),
        "--repo-id",
        "me/blocks",
        "--episodes",
        "1",
    ]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 6, outcome.output
    assert "refused the token" in outcome.output


def _command(served: ServedDaemon, tmp_path: Path, *extra: str) -> list[str]:
    spinal = Path(sys.executable).parent / "spinal"
    return [
        str(spinal),
        "record",
        "--device",
        served.url,
        "--task",
        TASK,
        "--out",
        str(tmp_path / "ds"),
        "--repo-id",
        "me/blocks",
        *extra,
    ]


def test_json_output_for_scripts(device: ServedDaemon, tmp_path: Path) -> None:
    args = _command(device, tmp_path, "--episodes", "1", "--episode-time", "0.6", "--json")
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=300, env={**os.environ, "SPINAL_TOKEN": device.token}
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ended_by"] == "done" and summary["held"] is True
    assert summary["dataset"]["episodes"] == 1 and summary["dataset"]["path"] == str(tmp_path / "ds")
    assert summary["episodes"][0]["task"] == TASK and summary["episodes"][0]["converted"] is True
    assert "episode 1/1: recording" in done.stderr, "progress lines go to stderr when stdout carries JSON"


def test_sigterm_stops_like_ctrl_c(device: ServedDaemon, tmp_path: Path) -> None:
    args = _command(device, tmp_path, "--token", device.token, "--episodes", "2", "--episode-time", "60")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: device.client.get("/api/episode").json()["recording"], timeout=WAIT_S)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 130, stderr
    assert "the device is idle and holding the arm" in stderr
    state = device.client.get("/api/episode").json()
    assert state["recording"] is False and state["last_episode"]["status"] == "complete"
    assert device.client.get("/api/mode").json() == {"mode": "idle"}
