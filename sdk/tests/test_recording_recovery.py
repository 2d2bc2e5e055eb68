"""A crash leaves at most a torn tail: recovery cuts it off, keeps every synced frame, and reading never breaks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spinal.recording import (
    CorruptRecordingError,
    EpisodeReader,
    EpisodeStatus,
    camera_files,
    load_metadata,
    recover_recording,
    recover_recordings,
)
from spinal.recording.synthetic import record_synthetic_episode

CAMERAS = ("front", "wrist")
FILES = ["frames.arrows", "frames.idx", *camera_files("front"), *camera_files("wrist")]


def _crash_snapshot(root: Path, frames_before_sync: int = 40, frames_after: int = 7) -> Path:
    """Record, sync, keep writing a little, then copy the directory as a crash (kill -9) would leave it."""
    writer = record_synthetic_episode(
        root, "live", frames=frames_before_sync, cameras=CAMERAS, width=32, height=24, close=False
    )
    writer.sync()
    for k in range(frames_after):  # appended after the last sync: may be lost
        t = (frames_before_sync + k) / 30
        writer.append_frame(timestamp=t, state=[0] * 6, action=[0] * 6)
    snapshot = root / "crashed"
    shutil.copytree(writer.episode_dir, snapshot)
    writer.abandon()
    meta = json.loads((snapshot / "episode.json").read_text())
    meta["episode_id"] = "crashed"
    (snapshot / "episode.json").write_text(json.dumps(meta))
    return snapshot


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A complete episode and the crash snapshot of the same recording (synced after 40 frames)."""
    root = tmp_path_factory.mktemp("rec")
    complete = record_synthetic_episode(root / "c", "full", frames=40, cameras=CAMERAS, width=32, height=24)
    assert complete.status == EpisodeStatus.COMPLETE
    reader = EpisodeReader(root / "c" / "full")
    frames = [(f.frame_index, f.state.tolist()) for f in reader.iter_frames()]
    jpegs = {cam: [c.jpeg for c in reader.iter_camera_frames(cam)] for cam in CAMERAS}
    snapshot = _crash_snapshot(root / "s")
    return {"snapshot": snapshot, "frames": frames, "jpegs": jpegs}


def test_crash_after_sync_recovers_every_synced_frame(reference, tmp_path):
    episode = tmp_path / "crashed"
    shutil.copytree(reference["snapshot"], episode)
    report = recover_recording(episode)
    assert report.changed and report.previous_status == "recording" and report.status == "recovered"
    assert report.frame_count == 40 and report.camera_frame_counts == {"front": 40, "wrist": 40}
    reader = EpisodeReader(episode)
    assert reader.metadata.status == EpisodeStatus.RECOVERED
    assert [(f.frame_index, f.state.tolist()) for f in reader.iter_frames()] == reference["frames"]
    assert [c.jpeg for c in reader.iter_camera_frames("wrist")] == reference["jpegs"]["wrist"]


def test_recovery_is_idempotent_and_leaves_finished_episodes_alone(reference, tmp_path):
    episode = tmp_path / "crashed"
    shutil.copytree(reference["snapshot"], episode)
    recover_recording(episode)
    before = {name: (episode / name).read_bytes() for name in FILES}
    again = recover_recording(episode)
    assert not again.changed and again.status == "recovered"
    assert {name: (episode / name).read_bytes() for name in FILES} == before


def test_recover_recordings_reports_a_broken_episode_and_repairs_the_rest(reference, tmp_path):
    shutil.copytree(reference["snapshot"], tmp_path / "crashed")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "episode.json").write_text("{not json")
    reports = {r.episode_id: r for r in recover_recordings(tmp_path)}
    assert reports["crashed"].status == "recovered"
    assert "not valid JSON" in reports["broken"].error


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=len(FILES), max_size=len(FILES)))
def test_truncation_at_any_offset_recovers_to_a_readable_prefix(reference, tmp_path, cuts):
    episode = tmp_path / f"case-{abs(hash(tuple(cuts)))}"
    shutil.copytree(reference["snapshot"], episode)
    for name, fraction in zip(FILES, cuts, strict=True):
        path = episode / name
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(int(size * fraction))
    recover_recording(episode)
    reader = EpisodeReader(episode)
    frames = [(f.frame_index, f.state.tolist()) for f in reader.iter_frames()]
    assert frames == reference["frames"][: len(frames)]
    for cam in CAMERAS:
        jpegs = [c.jpeg for c in reader.iter_camera_frames(cam)]
        assert jpegs == reference["jpegs"][cam][: len(jpegs)]
    assert load_metadata(episode).frame_count == len(frames)
    shutil.rmtree(episode)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.binary(min_size=1, max_size=300), zero_fill=st.integers(min_value=0, max_value=200))
def test_garbage_after_the_last_sync_is_cut_off(reference, tmp_path, tail, zero_fill):
    episode = tmp_path / f"garbage-{abs(hash((tail, zero_fill)))}"
    shutil.copytree(reference["snapshot"], episode)
    for name in FILES:
        with open(episode / name, "ab") as f:
            f.write(b"\x00" * zero_fill + tail)  # a power cut can leave zeros or stale bytes past the end
    recover_recording(episode)
    reader = EpisodeReader(episode)
    assert [(f.frame_index, f.state.tolist()) for f in reader.iter_frames()] == reference["frames"]
    assert [c.jpeg for c in reader.iter_camera_frames("front")] == reference["jpegs"]["front"]
    shutil.rmtree(episode)


def _complete_copy(tmp_path: Path) -> Path:
    record_synthetic_episode(tmp_path, "done", frames=20, cameras=CAMERAS, width=32, height=24)
    return tmp_path / "done"


def test_reader_names_a_truncated_file_of_a_finished_episode(tmp_path):
    episode = _complete_copy(tmp_path)
    mjpeg = episode / camera_files("front")[0]
    with open(mjpeg, "r+b") as f:
        f.truncate(mjpeg.stat().st_size - 10)
    reader = EpisodeReader(episode)
    with pytest.raises(CorruptRecordingError, match=r"camera-front\.idx.*points past the end.*truncated"):
        reader.camera_index("front")


def test_reader_detects_a_damaged_jpeg(tmp_path):
    episode = _complete_copy(tmp_path)
    mjpeg = episode / camera_files("wrist")[0]
    data = bytearray(mjpeg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    mjpeg.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordingError, match="damaged"):
        list(EpisodeReader(episode).iter_camera_frames("wrist"))


def test_reader_detects_a_damaged_frame_batch(tmp_path):
    episode = _complete_copy(tmp_path)
    stream = episode / "frames.arrows"
    data = bytearray(stream.read_bytes())
    data[-40] ^= 0x55
    stream.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordingError, match="checksum"):
        list(EpisodeReader(episode).iter_batches())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "field the top level"),
        ('{"format": "other"}', "field"),
        ("\xff", "not valid JSON"),
    ],
)
def test_reader_rejects_unusable_metadata_with_one_error_type(tmp_path, content, message):
    episode = _complete_copy(tmp_path)
    (episode / "episode.json").write_text(content, encoding="latin-1")
    with pytest.raises(CorruptRecordingError, match=message):
        EpisodeReader(episode)


def test_missing_file_is_named(tmp_path):
    episode = _complete_copy(tmp_path)
    (episode / "frames.idx").unlink()
    with pytest.raises(CorruptRecordingError, match=r"frames\.idx is missing"):
        EpisodeReader(episode)
