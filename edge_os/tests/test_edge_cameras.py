"""Cameras: MJPEG packets pass through untouched, the synthetic camera draws the arm, slots count drops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import simplejpeg
from spinal_edge.cameras import (
    CameraFrame,
    CameraSettings,
    FrameSlot,
    SyntheticCamera,
    UvcCamera,
    open_camera,
)
from spinal_edge.testing import wait_for


def _jpegs(n: int, width: int = 64, height: int = 48) -> list[bytes]:
    out = []
    for i in range(n):
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        pixels[:, : (i * 7) % width] = (200, 30 + i, 40)
        out.append(simplejpeg.encode_jpeg(pixels, quality=80, colorspace="RGB"))
    return out


def _frame(index: int, t: int = 0) -> CameraFrame:
    return CameraFrame("front", index, t, b"\xff\xd8", 1, 1)


def test_uvc_camera_forwards_the_streams_jpeg_bytes_unchanged(tmp_path: Path) -> None:
    jpegs = _jpegs(12)
    stream = tmp_path / "camera.mjpeg"
    stream.write_bytes(b"".join(jpegs))
    camera = UvcCamera("front", CameraSettings(kind="uvc", device=str(stream), input_format="mjpeg", fps=60))
    seen: list[bytes] = []

    def collect() -> bool:
        frame = camera.slot.read()
        if frame is not None and (not seen or frame.jpeg != seen[-1]):
            seen.append(frame.jpeg)
        return len(seen) >= 6

    camera.start()
    try:
        wait_for(collect, timeout=20, interval=0.002)
    finally:
        camera.stop()
    assert all(jpeg in jpegs for jpeg in seen), (
        "every delivered frame is one of the camera's JPEGs, byte for byte"
    )
    stats = camera.stats()
    assert stats.width == 64 and stats.height == 48 and stats.frames >= 6 and stats.errors == 0


def test_a_missing_device_is_reported_and_retried(tmp_path: Path) -> None:
    camera = UvcCamera("wrist", CameraSettings(kind="uvc", device=str(tmp_path / "video9"), fps=30))
    camera.start()
    try:
        wait_for(lambda: camera.stats().errors >= 1, timeout=20)
    finally:
        camera.stop()
    stats = camera.stats()
    assert stats.frames == 0 and stats.last_error and not stats.running


def test_synthetic_camera_draws_the_arm_where_the_joints_say() -> None:
    settings = CameraSettings(kind="synthetic", width=160, height=120, fps=30)
    camera = SyntheticCamera("front", settings)
    rest = simplejpeg.decode_jpeg(camera.render_jpeg(np.zeros(6)), colorspace="RGB").astype(np.int16)
    again = simplejpeg.decode_jpeg(camera.render_jpeg(np.zeros(6)), colorspace="RGB").astype(np.int16)
    moved = simplejpeg.decode_jpeg(
        camera.render_jpeg(np.array([40.0, -30, 20, 10, 0, 50])), colorspace="RGB"
    ).astype(np.int16)
    assert rest.shape == (120, 160, 3)
    assert np.abs(rest - again).max() == 0, "the same joints draw the same picture"
    changed = (np.abs(rest - moved).sum(axis=2) > 60).mean()
    assert changed > 0.01, "moving the joints moves the arm in the picture"


def test_synthetic_camera_streams_frames_of_the_live_joint_state() -> None:
    joints = {"q": np.zeros(6)}
    settings = CameraSettings(kind="synthetic", width=96, height=72, fps=50)
    camera = open_camera("front", settings)
    assert isinstance(camera, SyntheticCamera)
    camera.set_joint_source(lambda: joints["q"])
    camera.start()
    try:
        first = wait_for(camera.slot.read, timeout=10)
        joints["q"] = np.array([60.0, 30, -40, 20, 0, 80])
        later = wait_for(
            lambda: (f := camera.slot.read()) is not None and f.index > first.index + 2 and f, timeout=10
        )
    finally:
        camera.stop()
    assert later.jpeg[:2] == b"\xff\xd8" and later.t_mono_ns > first.t_mono_ns
    assert later.jpeg != first.jpeg
    assert (later.width, later.height) == (96, 72)


def test_a_replaced_unread_frame_counts_as_dropped() -> None:
    slot = FrameSlot()
    slot.put(_frame(0))
    assert slot.read().index == 0
    slot.put(_frame(1))
    slot.put(_frame(2))  # frame 1 was never read
    assert slot.dropped == 1
    assert slot.read().index == 2
    slot.put(_frame(3))
    assert slot.dropped == 1 and slot.frames == 4


def test_fps_is_measured_on_the_frame_times() -> None:
    slot = FrameSlot()
    for i in range(31):
        slot.put(_frame(i, t=i * 33_333_333))
    assert abs(slot.fps(now_ns=31 * 33_333_333) - 30.0) < 0.1
    assert slot.fps(now_ns=10_000_000_000) == 0.0, "a camera silent for seconds shows 0 fps"


class _StandInPicamera2:
    """The slice of picamera2's Picamera2 the camera uses; frames in picamera2's "BGR888" layout (R, G, B bytes)."""

    opened: list[_StandInPicamera2] = []

    def __init__(self, index: int) -> None:
        self.index = index
        self.config: dict | None = None
        self.started = self.closed = False
        self.captures = 0
        _StandInPicamera2.opened.append(self)

    def create_video_configuration(self, main: dict, controls: dict) -> dict:
        return {"main": main, "controls": controls}

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, stream: str) -> np.ndarray:
        assert stream == "main" and self.started and self.config is not None
        width, height = self.config["main"]["size"]
        self.captures += 1
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        pixels[: height // 2] = (220, 20, 20)  # red on top
        pixels[height // 2 :] = (20, 20, 220)  # blue below
        return pixels

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def test_picamera2_frames_become_rgb_jpegs_of_the_configured_size(monkeypatch) -> None:
    import sys
    import types

    module = types.ModuleType("picamera2")
    module.Picamera2 = _StandInPicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    _StandInPicamera2.opened.clear()
    camera = open_camera("wrist", CameraSettings(kind="picamera2", device="1", width=96, height=64, fps=15))
    camera.start()
    try:
        wait_for(lambda: camera.slot.peek() is not None, timeout=20)
        frame = camera.slot.peek()
    finally:
        camera.stop()
    assert frame is not None and (frame.width, frame.height) == (96, 64)
    pixels = simplejpeg.decode_jpeg(frame.jpeg, colorspace="RGB")
    top, bottom = pixels[:16].reshape(-1, 3).mean(axis=0), pixels[-16:].reshape(-1, 3).mean(axis=0)
    assert top[0] > 180 and top[2] < 60, f"the top half stays red, not swapped to blue: {top}"
    assert bottom[2] > 180 and bottom[0] < 60, f"the bottom half stays blue: {bottom}"
    (device,) = _StandInPicamera2.opened
    assert device.index == 1
    assert device.config == {"main": {"size": (96, 64), "format": "BGR888"}, "controls": {"FrameRate": 15.0}}
    assert device.closed and not device.started, "stopping the camera stops and closes picamera2"
    assert camera.stats().errors == 0


def test_picamera2_missing_is_a_clear_retried_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 raises ImportError
    camera = open_camera("wrist", CameraSettings(kind="picamera2"))
    camera.start()
    try:
        wait_for(lambda: camera.stats().errors >= 1, timeout=20)
    finally:
        camera.stop()
    assert "python3-picamera2" in camera.stats().last_error
    assert camera.slot.peek() is None
