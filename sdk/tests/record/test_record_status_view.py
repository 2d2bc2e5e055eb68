"""The device's status as the session reads it (leniently: it is outside input), and what the screen and
the progress lines show from it."""

from __future__ import annotations

import io
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from spinal.record.snapshot import DeviceSnapshot, EpisodeInfo
from spinal.record.view import Phase, PlainView, ViewModel, render

STATUS = {
    "mode": "policy",
    "task": "pick the cube",
    "boot_id": "4c1d9e0f7a2b3c5d",
    "uptime_s": 12.5,
    "inference": {"engine": "remote", "state": "streaming", "ready": True, "failed": False, "queue_depth": 7},
    "loop": {
        "running": True,
        "rate_hz": 30.0,
        "period_us": {"p50": 33_400.0, "p99": 35_000.0, "max": 40_000.0},
    },
    "cameras": {"front": {"fps": 29.7}, "wrist": {"fps": 15.0}},
    "recorder": {
        "state": "recording",
        "episode": {
            "episode_id": "20260101T120000Z-aaaaaa",
            "status": "recording",
            "frames": 84,
            "duration_s": 2.8,
            "stop_reason": "",
        },
        "last_episode": None,
        "free_bytes": 12_300_000_000,
        "min_free_bytes": 512_000_000,
        "last_error": "",
    },
    "warnings": [
        {"code": "mcu_slow", "message": "the MCU state is late", "time": 10.0, "repeats": 1},
        {"code": "camera_drop", "message": "wrist dropped frames", "time": 20.0, "repeats": 3},
    ],
}


def test_a_status_reads_into_what_the_session_needs() -> None:
    snap = DeviceSnapshot.parse(STATUS, taken_at=5.0)
    assert snap.mode == "policy" and snap.inference_state == "streaming" and snap.inference_ready
    assert snap.queue_depth == 7 and math.isclose(snap.loop_hz or 0, 1e6 / 33_400)
    assert snap.camera_fps == {"front": 29.7, "wrist": 15.0}
    assert snap.recorder_state == "recording" and snap.recording("20260101T120000Z-aaaaaa")
    assert not snap.recording("20260101T120000Z-bbbbbb")
    assert snap.episode is not None and snap.episode.frames == 84
    assert snap.latest_warning() is not None and snap.latest_warning().code == "camera_drop"
    assert snap.boot_id == "4c1d9e0f7a2b3c5d"


def test_recording_off_and_wrong_types_read_as_missing() -> None:
    bad = {
        "mode": 3,
        "inference": "streaming",
        "loop": {"period_us": {"p50": float("nan")}},
        "cameras": {"front": {"fps": "fast"}, "rear": 7},
        "recorder": None,
        "warnings": [{"code": ""}, "nope", {"code": "x", "message": ["m"]}],
        "uptime_s": True,
        "boot_id": 42,
    }
    snap = DeviceSnapshot.parse(bad, taken_at=1.0)
    assert snap.mode == "" and snap.inference_state == "" and not snap.inference_ready
    assert snap.loop_hz is None and snap.camera_fps == {"front": 0.0}
    assert snap.recorder_state is None and snap.episode is None and snap.uptime_s is None
    assert [w.code for w in snap.warnings] == ["x"]
    assert snap.boot_id == ""


def test_a_started_episode_says_whether_the_policy_reset_was_acknowledged() -> None:
    started = {"episode_id": "20260101T120000.000Z-000001-aaaaaa", "status": "recording"}
    acked = EpisodeInfo.parse({**started, "engine_reset_acked": True})
    unacked = EpisodeInfo.parse({**started, "engine_reset_acked": False})
    assert acked is not None and acked.engine_reset_acked is True
    assert unacked is not None and unacked.engine_reset_acked is False
    for unsaid in ({}, {"engine_reset_acked": "yes"}, {"engine_reset_acked": 1}):
        info = EpisodeInfo.parse({**started, **unsaid})
        assert info is not None and info.engine_reset_acked is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
_status_like = st.fixed_dictionaries(
    {},
    optional={
        key: _json
        | st.dictionaries(st.sampled_from(list(value) if isinstance(value, dict) else ["x"]), _json)
        for key, value in STATUS.items()
    },
)


@settings(max_examples=100, deadline=None)
@given(payload=_json | _status_like)
def test_no_status_the_device_sends_crashes_the_reader(payload: object) -> None:
    snap = DeviceSnapshot.parse(payload, taken_at=0.0)
    assert isinstance(snap.mode, str) and isinstance(snap.camera_fps, dict)
    render(ViewModel(repo_id="me/x", device_url="u", mode="policy", target=3, snapshot=snap))


def _screen(model: ViewModel) -> str:
    console = Console(record=True, width=110, file=io.StringIO())
    console.print(render(model))
    return console.export_text()


def test_the_live_panel_shows_episode_time_device_cameras_recorder_and_warnings() -> None:
    model = ViewModel(
        repo_id="me/pick",
        device_url="http://dev:8080",
        mode="policy",
        target=5,
        phase=Phase.RECORDING,
        number=2,
        task="pick the [red] cube",
        time_left_s=7.25,
        time_total_s=10.0,
        snapshot=DeviceSnapshot.parse(STATUS, taken_at=0.0),
        kept=1,
        rerecorded=1,
    )
    model.events.append("12:00:00 episode 2/5: recording 20260101T120000Z-aaaaaa")
    screen = _screen(model)
    assert "RECORDING" in screen and "Episode 2/5" in screen and "7.2 s left" in screen
    assert "pick the [red] cube" in screen, "a task is shown as typed, never as markup"
    assert "policy · inference streaming (ready) q=7 · loop 29.9 Hz" in screen
    assert "front 29.7 fps, wrist 15.0 fps" in screen
    assert "recording · 84 frames, 2.8 s · disk free 12.3 GB" in screen
    assert "kept 1/5 · re-recorded 1" in screen
    assert "mcu_slow" in screen and "camera_drop" in screen
    assert "→ end episode" in screen and "← discard and re-record" in screen and "Esc" in screen


def test_a_lost_device_and_the_keep_question_are_on_screen() -> None:
    model = ViewModel(
        repo_id="me/pick", device_url="u", mode="teleop", target=3, phase=Phase.PAUSED, number=1
    )
    model.connection = "unreachable for 4 s (connection refused); next try in 1 s"
    assert "unreachable for 4 s" in _screen(model)
    model.phase, model.connection = Phase.CONFIRM, ""
    model.prompt = "Episode 1 stopped at 2.0 s (60 frames). Keep it? [k]eep / [d]iscard"
    screen = _screen(model)
    assert "Keep it? [k]eep / [d]iscard" in screen and "k keep   d discard" in screen
    model.phase, model.prompt, model.can_rerecord = Phase.RESET, "", True
    assert "← re-record the last episode" in _screen(model)
    model.can_rerecord = False
    assert "re-record the last episode" not in _screen(model)


def test_plain_progress_lines_for_scripts() -> None:
    stream = io.StringIO()
    view = PlainView(stream, every_s=3600)
    model = ViewModel(repo_id="me/pick", device_url="u", mode="policy", target=3)
    view.event(model, "episode 1/3: recording X")
    model.phase, model.number, model.time_left_s = Phase.RECORDING, 1, 2.0
    model.snapshot = DeviceSnapshot.parse(STATUS, taken_at=0.0)
    for seconds in range(5):  # the connection line changes every second while the device is gone
        model.connection = f"unreachable for {seconds} s"
        view.update(model)
    model.connection = ""
    view.update(model)
    lines = stream.getvalue().splitlines()
    assert all(re.match(r"^\[\d\d:\d\d:\d\d\] ", line) for line in lines)
    assert lines[0].endswith("episode 1/3: recording X")
    assert sum("unreachable" in line for line in lines) == 1, "one line per outage, not one per second"
