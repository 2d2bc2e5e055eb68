"""The episode writer stores what the recorder hands it, in files plain tools can read, and refuses bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
import simplejpeg
from spinal.recording import (
    SO101_JOINT_NAMES,
    ActionSource,
    EpisodeIdSequence,
    EpisodeReader,
    EpisodeStatus,
    EpisodeWriter,
    InvalidFrameError,
    RecordingStateError,
    camera_files,
    is_valid_episode_id,
    load_metadata,
    new_episode_id,
)
from spinal.recording.synthetic import render_frame


def _writer(root, **kwargs):
    defaults = dict(
        episode_id="ep1", task="pick", fps=30, state_names=SO101_JOINT_NAMES, cameras={"front": (32, 24)}
    )
    defaults.update(kwargs)
    return EpisodeWriter(root, **defaults)


def _jpeg(k: int) -> bytes:
    return simplejpeg.encode_jpeg(render_frame(k, 32, 24), quality=80)


def test_written_episode_reads_back_frames_and_jpegs_in_order(tmp_path):
    jpegs = [_jpeg(k) for k in range(70)]
    with _writer(tmp_path, batch_frames=16) as writer:
        for k in range(70):
            source = ActionSource("sess", 100 + k, 7) if k % 2 else None
            writer.append_frame(
                timestamp=k / 30, state=[k] * 6, action=np.full(6, -k), mode="teleop", source=source
            )
            writer.append_camera_frame("front", jpegs[k], k / 30 + 0.002)
    meta = load_metadata(tmp_path / "ep1")
    assert meta.status == EpisodeStatus.COMPLETE
    assert meta.frame_count == 70 and meta.camera_frame_counts == {"front": 70}
    assert meta.duration_s == pytest.approx(69 / 30)

    reader = EpisodeReader(tmp_path / "ep1")
    frames = list(reader.iter_frames())
    assert [f.frame_index for f in frames] == list(range(70))
    assert frames[5].state.tolist() == [5.0] * 6 and frames[5].action.tolist() == [-5.0] * 6
    assert frames[5].source == ActionSource("sess", 105, 7) and frames[4].source is None
    assert {f.mode for f in frames} == {"teleop"}
    camera = list(reader.iter_camera_frames("front"))
    assert [c.jpeg for c in camera] == jpegs
    assert camera[3].timestamp == pytest.approx(3 / 30 + 0.002)


def test_files_are_readable_without_spinal(tmp_path):
    with _writer(tmp_path) as writer:
        for k in range(10):
            writer.append_frame(timestamp=k / 30, state=[0] * 6, action=[1] * 6)
            writer.append_camera_frame("front", _jpeg(k), k / 30)
    episode = tmp_path / "ep1"
    table = pa.ipc.open_stream((episode / "frames.arrows").read_bytes()).read_all()
    assert table.num_rows == 10
    assert table.column("observation.state").type == pa.list_(pa.float32())
    mjpeg = (episode / camera_files("front")[0]).read_bytes()
    assert mjpeg.count(b"\xff\xd8\xff") == 10  # concatenated JPEGs, as captured
    assert json.loads((episode / "episode.json").read_text())["state_names"] == list(SO101_JOINT_NAMES)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: w.append_frame(timestamp=0.1, state=[0] * 5, action=[0] * 6), "state must have 6"),
        (lambda w: w.append_frame(timestamp=0.1, state=[float("nan")] * 6, action=[0] * 6), "finite"),
        (lambda w: w.append_frame(timestamp=0.0, state=[0] * 6, action=[0] * 6), "not before the previous"),
        (lambda w: w.append_frame(timestamp=0.2, state=[0] * 6, action=[0] * 6, mode="dance"), "mode"),
        (lambda w: w.append_camera_frame("front", b"not a jpeg", 0.1), "not a JPEG"),
        (lambda w: w.append_camera_frame("rear", _jpeg(0), 0.1), "not part of this episode"),
    ],
)
def test_writer_rejects_frames_that_do_not_fit_the_episode(tmp_path, call, message):
    writer = _writer(tmp_path)
    writer.append_frame(timestamp=0.05, state=[0] * 6, action=[0] * 6)
    with pytest.raises(InvalidFrameError, match=message):
        call(writer)
    writer.append_frame(timestamp=0.3, state=[1] * 6, action=[1] * 6)  # still usable afterwards
    assert writer.rejected == 1
    assert writer.close().frame_count == 2


def test_writer_refuses_an_existing_episode_and_a_closed_writer(tmp_path):
    writer = _writer(tmp_path)
    with pytest.raises(RecordingStateError, match="exists already"):
        _writer(tmp_path)
    writer.close(EpisodeStatus.DISCARDED)
    assert load_metadata(tmp_path / "ep1").status == EpisodeStatus.DISCARDED
    with pytest.raises(RecordingStateError, match="closed"):
        writer.append_frame(timestamp=1.0, state=[0] * 6, action=[0] * 6)


def test_unsafe_episode_ids_and_camera_names_are_refused(tmp_path):
    with pytest.raises(InvalidFrameError, match="safe directory name"):
        _writer(tmp_path, episode_id="../escape")
    with pytest.raises(InvalidFrameError, match="camera name"):
        _writer(tmp_path, episode_id="ok", cameras={"Front Cam": (32, 24)})
    assert is_valid_episode_id(new_episode_id())


def test_episode_ids_sort_in_the_order_they_were_handed_out() -> None:
    # Many episodes in one millisecond, then the wall clock steps back a minute (an NTP step on a Pi).
    instants = [datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)] * 12
    instants += [datetime(2025, 3, 1, 12, 0, 0, 999_000, tzinfo=UTC)]
    instants += [datetime(2025, 3, 1, 11, 59, 0, 0, tzinfo=UTC)] * 3
    instants += [datetime(2025, 3, 1, 12, 0, 1, 5_000, tzinfo=UTC)]
    clock = iter(instants)
    ids = EpisodeIdSequence(clock=lambda: next(clock))
    handed_out = [ids.next() for _ in instants]
    assert sorted(handed_out) == handed_out and len(set(handed_out)) == len(handed_out)
    assert all(is_valid_episode_id(i) for i in handed_out)
    assert handed_out[0].startswith("20250301T120000.250Z-000001-")
    assert handed_out[-1].startswith("20250301T120001.005Z-000017-")
    # Two runs (boots) whose clocks restart at the same instant still never share an id.
    same = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    boots = {EpisodeIdSequence(clock=lambda: same).next() for _ in range(50)}
    assert len(boots) == 50


def test_auto_sync_makes_frames_durable_once_the_interval_passes(tmp_path):
    now = [100.0]
    writer = _writer(tmp_path, auto_sync_s=1.0, clock=lambda: now[0])
    index = tmp_path / "ep1" / "frames.idx"
    size_after_open = index.stat().st_size
    writer.append_frame(timestamp=0.0, state=[0] * 6, action=[0] * 6)
    assert index.stat().st_size == size_after_open  # batched in memory, nothing indexed yet
    now[0] += 1.5
    writer.append_frame(timestamp=0.1, state=[0] * 6, action=[0] * 6)
    assert index.stat().st_size > size_after_open  # one second passed: the batch was written and fsynced
    writer.close()


def test_why_an_episode_ended_is_kept_in_its_metadata(tmp_path):
    writer = _writer(tmp_path)
    writer.append_frame(timestamp=0.0, state=[0] * 6, action=[0] * 6)
    closed = writer.close(EpisodeStatus.COMPLETE, stop_reason="disk guard")
    assert closed.stop_reason == "disk guard"
    assert load_metadata(tmp_path / "ep1").stop_reason == "disk guard"
    # An episode.json written before the field existed still loads; the reason is unknown then.
    path = tmp_path / "ep1" / "episode.json"
    legacy = json.loads(path.read_text())
    del legacy["stop_reason"]
    path.write_text(json.dumps(legacy))
    assert load_metadata(tmp_path / "ep1").stop_reason == ""
