"""Recordings convert into a LeRobotDataset v3.0 that validates, decodes frame-exactly and is deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from spinal.dataset import (
    ConversionError,
    ConvertOptions,
    DatasetReader,
    convert_recordings,
    validate_dataset,
)
from spinal.dataset.video import VideoSettings, available_encoders
from spinal.recording import SO101_JOINT_NAMES, EpisodeReader, EpisodeWriter, camera_files, recover_recording
from spinal.recording.synthetic import record_synthetic_episode, render_frame

FPS = 30
CAMERAS = ("front", "wrist")
WIDTH, HEIGHT = 128, 96


def test_converted_dataset_validates_with_every_frame_decoded(converted):
    report = validate_dataset(converted, decode=True)
    assert report.ok, [str(v) for v in report.violations]
    assert report.checked == {"episodes": 3, "frames": 45 + 61 + 38, "video_files": 2}


def test_info_describes_so101_features_and_the_codec(converted):
    info = json.loads((converted / "meta/info.json").read_text())
    assert (
        info["codebase_version"] == "v3.0" and info["robot_type"] == "so101_follower" and info["fps"] == FPS
    )
    assert info["features"]["observation.state"]["names"] == list(SO101_JOINT_NAMES)
    assert info["features"]["action"]["shape"] == [6]
    for cam in CAMERAS:
        video = info["features"][f"observation.images.{cam}"]
        assert video["shape"] == [HEIGHT, WIDTH, 3]
        assert video["info"]["video.codec"] == available_encoders()[0]
        assert video["info"]["video.fps"] == FPS
    assert info["total_episodes"] == 3 and info["total_tasks"] == 2 and info["splits"] == {"train": "0:3"}


def test_every_video_frame_decodes_at_its_row_timestamp(converted, raw_recordings):
    reader = DatasetReader(converted)
    for key in reader.video_keys:
        path = converted / f"videos/{key}/chunk-000/file-000.mp4"
        with av.open(str(path)) as container:
            decoded = [
                (float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)
            ]
        assert len(decoded) == reader.info["total_frames"]
        for episode in reader.episodes:
            rows = reader.episode_table(episode, columns=["timestamp", "frame_index"])
            start = episode[f"videos/{key}/from_timestamp"]
            first = episode["dataset_from_index"]
            for ts, frame_index in zip(
                rows.column("timestamp").to_pylist(), rows.column("frame_index").to_pylist(), strict=True
            ):
                t, _ = decoded[first + frame_index]
                assert abs(t - (start + ts)) < 1e-4
    # Pixels survive: the decoded frame looks like the JPEG the camera recorded for that row.
    episode = reader.episodes[1]
    raw = EpisodeReader(raw_recordings / "ep-b")
    jpeg = raw.read_camera_frame("wrist", 10).jpeg
    import simplejpeg

    original = simplejpeg.decode_jpeg(jpeg).astype(np.int16)
    decoded_frame = list(reader.iter_video_frames(episode, "observation.images.wrist"))[10][1].astype(
        np.int16
    )
    assert np.abs(original - decoded_frame).mean() < 6.0


def test_rows_carry_the_recorded_state_and_action(converted, raw_recordings):
    reader = DatasetReader(converted)
    episode = reader.episodes[2]
    table = reader.episode_table(episode)
    raw = list(EpisodeReader(raw_recordings / "ep-c").iter_frames())
    assert table.num_rows == len(raw) == 38
    state = np.array(table.column("observation.state").to_pylist(), dtype=np.float32)
    assert np.array_equal(state, np.stack([f.state for f in raw]))
    assert table.column("task_index").to_pylist() == [1] * 38
    assert table.column("index").to_pylist() == list(range(45 + 61, 45 + 61 + 38))
    assert reader.tasks == ["pick the cube", "place the cube"]


def test_layout_matches_the_lerobot_written_reference_field_by_field(converted, lerobot_reference):
    ref, ours = lerobot_reference, converted
    ref_info = json.loads((ref / "meta/info.json").read_text())
    info = json.loads((ours / "meta/info.json").read_text())
    assert list(info) == list(ref_info)
    for key in (
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
        "observation.state",
        "action",
    ):
        assert info["features"][key] == ref_info["features"][key]
    ref_video = ref_info["features"]["observation.images.front"]
    ours_video = info["features"]["observation.images.front"]
    assert list(ours_video) == list(ref_video) and list(ours_video["info"]) == list(ref_video["info"])
    assert ours_video["names"] == ref_video["names"]
    for key in ("data_path", "video_path", "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb"):
        assert info[key] == ref_info[key]

    ref_data = pq.read_schema(ref / "data/chunk-000/file-000.parquet")
    data = pq.read_schema(ours / "data/chunk-000/file-000.parquet")
    assert data.names == ref_data.names
    assert [f.type for f in data] == [f.type for f in ref_data]
    ref_hf = json.loads(ref_data.metadata[b"huggingface"])["info"]["features"]
    assert json.loads(data.metadata[b"huggingface"])["info"]["features"] == ref_hf

    def episode_columns(schema, camera):
        return [
            (n.replace(f"observation.images.{camera}", "CAM"), str(t))
            for n, t in zip(schema.names, schema.types, strict=True)
        ]

    ref_eps = pq.read_schema(next((ref / "meta/episodes").glob("*/*.parquet")))
    eps = pq.read_schema(next((ours / "meta/episodes").glob("*/*.parquet")))
    ours_cols = [c for c in episode_columns(eps, "front") if "observation.images.wrist" not in c[0]]
    assert ours_cols == episode_columns(ref_eps, "front")

    ref_tasks, tasks = pq.read_schema(ref / "meta/tasks.parquet"), pq.read_schema(ours / "meta/tasks.parquet")
    assert tasks.names == ref_tasks.names and tasks.types == ref_tasks.types
    assert json.loads(tasks.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]

    ref_stats = json.loads((ref / "meta/stats.json").read_text())
    stats = json.loads((ours / "meta/stats.json").read_text())
    for key, values in ref_stats.items():
        assert set(stats[key]) == set(values)
        for stat, value in values.items():
            assert np.asarray(stats[key][stat]).shape == np.asarray(value).shape, (key, stat)


def test_conversion_is_deterministic_across_worker_counts(raw_recordings, converted, tmp_path):
    again = tmp_path / "again"
    convert_recordings(raw_recordings, again, ConvertOptions(repo_id="test/so101", workers=1))
    for path in sorted(converted.rglob("*")):
        if path.suffix in (".parquet", ".json"):
            assert path.read_bytes() == (again / path.relative_to(converted)).read_bytes(), path


def test_broken_episodes_are_reported_while_the_others_convert(tmp_path, recorder):
    raw = recorder(
        tmp_path / "raw",
        [
            ("a-good", 30, "pick"),
            ("b-truncated", 30, "pick"),
            ("c-damaged", 30, "pick"),
            ("d-late", 30, "pick"),
        ],
    )
    mjpeg = raw / "b-truncated" / camera_files("front")[0]
    with open(mjpeg, "r+b") as f:
        f.truncate(mjpeg.stat().st_size // 2)
    wrist = raw / "c-damaged" / camera_files("wrist")[0]
    data = bytearray(wrist.read_bytes())
    data[len(data) // 3] ^= 0xFF
    wrist.write_bytes(bytes(data))
    (raw / "e-garbage").mkdir()
    (raw / "e-garbage" / "episode.json").write_text('{"format": "spinal-recording"}')
    writer = record_synthetic_episode(
        raw, "f-live", frames=5, cameras=CAMERAS, width=WIDTH, height=HEIGHT, close=False
    )
    writer.sync()
    report = convert_recordings(raw, tmp_path / "out", ConvertOptions(repo_id="t/x", workers=2))
    writer.close()
    outcome = {e.episode_id: e for e in report.episodes}
    assert outcome["a-good"].converted and outcome["d-late"].converted
    assert outcome["a-good"].episode_index == 0 and outcome["d-late"].episode_index == 1
    assert "truncated" in outcome["b-truncated"].reason
    assert "damaged" in outcome["c-damaged"].reason
    assert "episode_id" in outcome["e-garbage"].reason
    assert "status is recording" in outcome["f-live"].reason
    assert validate_dataset(tmp_path / "out").ok


def test_episodes_convert_in_the_order_they_were_recorded_not_by_id(tmp_path, recorder):
    # Ids that do not sort in start order: another recorder's names, or one-second ids started together.
    raw = recorder(
        tmp_path / "raw", [("z-first", 20, "first"), ("a-second", 25, "second"), ("m-third", 30, "third")]
    )
    starts = {"z-first": "2025-03-01T12:00:00.100000Z", "a-second": "2025-03-01T12:00:00.600000Z"}
    starts["m-third"] = "2025-03-01T12:00:01.000000Z"
    for episode_id, started_at in starts.items():
        path = raw / episode_id / "episode.json"
        meta = json.loads(path.read_text())
        meta["started_at"] = started_at
        path.write_text(json.dumps(meta))
    report = convert_recordings(raw, tmp_path / "out", ConvertOptions(repo_id="t/order", workers=2))
    assert [(e.episode_id, e.episode_index) for e in report.episodes] == [
        ("z-first", 0),
        ("a-second", 1),
        ("m-third", 2),
    ]
    episodes = DatasetReader(tmp_path / "out").episodes
    assert [(row["episode_index"], row["tasks"], row["length"]) for row in episodes] == [
        (0, ["first"], 20),
        (1, ["second"], 25),
        (2, ["third"], 30),
    ]


def test_a_recovered_crash_converts_up_to_what_every_stream_covers(tmp_path):
    raw = tmp_path / "raw"
    writer = record_synthetic_episode(
        raw, "crash", frames=50, cameras=CAMERAS, width=WIDTH, height=HEIGHT, close=False
    )
    writer.sync()
    writer.abandon()
    mjpeg = raw / "crash" / camera_files("front")[0]
    with open(mjpeg, "r+b") as f:  # the front camera lost its last frames
        f.truncate(int(mjpeg.stat().st_size * 0.7))
    recover_recording(raw / "crash")
    kept = len(EpisodeReader(raw / "crash").camera_index("front"))
    report = convert_recordings(raw, tmp_path / "out", ConvertOptions(repo_id="t/x", workers=1))
    (episode,) = report.episodes
    assert episode.converted and episode.notes["status"] == "recovered"
    assert kept - 1 <= episode.frames <= kept + 2  # rows end where the front camera's frames end
    assert validate_dataset(tmp_path / "out", decode=True).ok


def test_missed_control_ticks_are_held_on_the_fps_grid(tmp_path):
    raw = tmp_path / "raw"
    writer = EpisodeWriter(
        raw,
        episode_id="jitter",
        task="t",
        fps=FPS,
        state_names=SO101_JOINT_NAMES,
        cameras={"front": (64, 48)},
    )
    import simplejpeg

    ticks = [k for k in range(40) if k not in (10, 11, 25)]  # the loop overran three times
    for k in ticks:
        t = k / FPS + (0.003 if k % 2 else -0.002)  # and jittered by a few ms
        writer.append_frame(timestamp=max(t, 0.0), state=[k] * 6, action=[k] * 6)
        writer.append_camera_frame("front", simplejpeg.encode_jpeg(render_frame(k, 64, 48)), max(t, 0.0))
    writer.close()
    report = convert_recordings(raw, tmp_path / "out", ConvertOptions(repo_id="t/x", workers=1))
    (episode,) = report.episodes
    assert episode.frames == 40 and episode.notes["held_ticks"] == 3
    state = DatasetReader(tmp_path / "out").episode_table(DatasetReader(tmp_path / "out").episodes[0])
    first_joint = [row[0] for row in state.column("observation.state").to_pylist()]
    assert first_joint[9:13] == [9, 9, 12, 12] and first_joint[24:27] == [24, 26, 26]
    assert validate_dataset(tmp_path / "out", decode=True).ok


def test_videos_roll_over_into_new_files_past_the_size_limit(tmp_path):
    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    import simplejpeg

    for e in range(3):
        writer = EpisodeWriter(
            raw,
            episode_id=f"noise-{e}",
            task="t",
            fps=FPS,
            state_names=SO101_JOINT_NAMES,
            cameras={"front": (320, 240)},
        )
        for k in range(45):  # noise does not compress: each episode is over a megabyte of video
            writer.append_frame(timestamp=k / FPS, state=[k] * 6, action=[k] * 6)
            image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            writer.append_camera_frame("front", simplejpeg.encode_jpeg(image, quality=95), k / FPS)
        writer.close()
    options = ConvertOptions(repo_id="t/x", workers=2, video_files_size_in_mb=1, video=VideoSettings(crf=10))
    convert_recordings(raw, tmp_path / "out", options)
    reader = DatasetReader(tmp_path / "out")
    files = [ep["videos/observation.images.front/file_index"] for ep in reader.episodes]
    assert files == [0, 1, 2]
    assert [ep["videos/observation.images.front/from_timestamp"] for ep in reader.episodes] == [0.0, 0.0, 0.0]
    assert validate_dataset(tmp_path / "out", decode=True).ok


def test_conversion_refuses_a_non_empty_output_and_an_empty_input(raw_recordings, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match="not empty"):
        convert_recordings(raw_recordings, tmp_path / "busy", ConvertOptions(repo_id="t/x"))
    with pytest.raises(ConversionError, match="does not hold a dataset"):
        convert_recordings(raw_recordings, tmp_path / "busy", ConvertOptions(repo_id="t/x", overwrite=True))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no convertible episode"):
        convert_recordings(tmp_path / "empty", tmp_path / "out", ConvertOptions(repo_id="t/x"))
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="session")
def lerobot_reference() -> Path:
    path = Path("/work/shared/reference/lerobot_v3_sample")
    if not path.is_dir():
        pytest.skip("the LeRobot-written reference sample is not on this machine")
    return path


def test_reference_sample_written_by_lerobot_passes_our_validator(lerobot_reference, tmp_path):
    copy = tmp_path / "ref"
    shutil.copytree(lerobot_reference, copy)
    report = validate_dataset(copy, decode=True)
    assert report.ok, [str(v) for v in report.violations]


def test_a_recording_without_cameras_converts_to_a_dataset_without_videos(recorder, tmp_path):
    raw = recorder(tmp_path / "raw", [("arm-only", 25, "wave")], cameras=())
    report = convert_recordings(raw, tmp_path / "out", ConvertOptions(repo_id="t/x", workers=1))
    assert report.total_frames == 25
    info = json.loads((tmp_path / "out/meta/info.json").read_text())
    assert info["video_path"] is None and not [
        k for k in info["features"] if k.startswith("observation.images")
    ]
    assert validate_dataset(tmp_path / "out").ok


@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_each_available_codec_converts_and_is_recorded_in_video_info(raw_recordings, tmp_path, codec):
    if codec not in available_encoders():
        pytest.skip(f"this PyAV build cannot encode {codec}")
    out = tmp_path / codec
    convert_recordings(
        raw_recordings, out, ConvertOptions(repo_id="t/x", workers=2, video=VideoSettings(codec=codec))
    )
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == codec
    assert validate_dataset(out, decode=True).ok
