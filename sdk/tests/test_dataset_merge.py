"""Merging datasets keeps every episode's rows and frames, unifies tasks, and the result validates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spinal.dataset import (
    ConvertOptions,
    DatasetReader,
    MergeError,
    convert_recordings,
    merge_datasets,
    validate_dataset,
)


@pytest.fixture(scope="module")
def second(tmp_path_factory, recorder):
    root = tmp_path_factory.mktemp("second")
    raw = recorder(root / "raw", [("x-1", 33, "place the cube"), ("x-2", 27, "stack the cubes")])
    convert_recordings(raw, root / "ds", ConvertOptions(repo_id="test/second", workers=2))
    return root / "ds"


def test_merged_dataset_validates_and_keeps_every_episode(converted, second, tmp_path):
    out = tmp_path / "merged"
    report = merge_datasets([converted, second], out, repo_id="test/merged")
    assert (report.episodes, report.frames, report.tasks) == (5, 45 + 61 + 38 + 33 + 27, 3)
    validation = validate_dataset(out, decode=True)
    assert validation.ok, [str(v) for v in validation.violations]
    merged = DatasetReader(out)
    assert merged.tasks == ["pick the cube", "place the cube", "stack the cubes"]
    assert [e["tasks"] for e in merged.episodes][3:] == [["place the cube"], ["stack the cubes"]]
    assert [e["dataset_from_index"] for e in merged.episodes] == [0, 45, 106, 144, 177]


def test_merged_rows_and_frames_equal_their_sources(converted, second, tmp_path):
    out = tmp_path / "merged"
    merge_datasets([converted, second], out)
    source, merged = DatasetReader(second), DatasetReader(out)
    src_ep, dst_ep = source.episodes[1], merged.episodes[4]
    src_rows = source.episode_table(
        src_ep, columns=["observation.state", "action", "frame_index", "timestamp"]
    )
    dst_rows = merged.episode_table(
        dst_ep, columns=["observation.state", "action", "frame_index", "timestamp"]
    )
    assert src_rows.equals(dst_rows)
    task_index = merged.episode_table(dst_ep, columns=["task_index"]).column("task_index").to_pylist()
    assert set(task_index) == {2}
    key = "observation.images.front"
    src_frames = [rgb for _, rgb in source.iter_video_frames(src_ep, key)]
    dst_frames = [rgb for _, rgb in merged.iter_video_frames(dst_ep, key)]
    assert len(src_frames) == len(dst_frames) == 27
    assert all(
        np.array_equal(a, b) for a, b in zip(src_frames, dst_frames, strict=True)
    )  # packets were copied


def test_merge_refuses_datasets_recorded_differently(converted, recorder, tmp_path):
    raw = recorder(tmp_path / "raw", [("slow", 20, "pick the cube")], fps=15)
    convert_recordings(raw, tmp_path / "slow", ConvertOptions(repo_id="t/slow", workers=1))
    with pytest.raises(MergeError, match="different fps"):
        merge_datasets([converted, tmp_path / "slow"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_merge_stats_aggregate_their_episodes(converted, second, tmp_path):
    out = tmp_path / "merged"
    merge_datasets([converted, second], out)
    stats = json.loads((out / "meta/stats.json").read_text())
    assert stats["index"]["min"] == [0] and stats["index"]["max"] == [203]
    assert stats["observation.state"]["count"] == [204]
    rows = DatasetReader(out).episode_table(DatasetReader(out).episodes[0], columns=["observation.state"])
    assert len(rows) == 45
    all_state = np.concatenate(
        [
            np.array(DatasetReader(out).episode_table(e, columns=["observation.state"]).column(0).to_pylist())
            for e in DatasetReader(out).episodes
        ]
    )
    assert np.allclose(stats["observation.state"]["mean"], all_state.mean(axis=0), atol=1e-4)
    assert np.allclose(stats["observation.state"]["std"], all_state.std(axis=0), atol=1e-4)
