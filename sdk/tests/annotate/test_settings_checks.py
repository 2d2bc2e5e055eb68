"""A run that cannot work is refused before any request is sent, with one sentence naming the fix."""

from __future__ import annotations

import pytest
from spinal.annotate import AnnotationPipeline
from spinal.annotate.errors import SettingsError
from spinal.annotate.pipeline import parse_shard
from spinal.annotate.synthetic import build_dataset


def test_vqa_without_any_camera_fails_loudly(tmp_path, stub_settings):
    dataset = build_dataset(tmp_path / "ds", episode_lengths=(10,), cameras=())
    with pytest.raises(SettingsError, match="no camera"):
        AnnotationPipeline(
            dataset, stub_settings(subtasks={"enabled": False}, interjections={"enabled": False})
        ).run()


def test_subtasks_without_video_fail_loudly(tmp_path, stub_settings):
    dataset = build_dataset(tmp_path / "ds", episode_lengths=(10,), cameras=())
    with pytest.raises(SettingsError, match="no video features"):
        AnnotationPipeline(dataset, stub_settings(vqa={"enabled": False})).run()


def test_unknown_vqa_camera_is_refused(dataset, stub_settings):
    with pytest.raises(SettingsError, match="observation.images.side"):
        AnnotationPipeline(dataset, stub_settings(vqa={"cameras": ["observation.images.side"]})).run()


def test_unknown_episode_is_refused(dataset, stub_settings):
    with pytest.raises(SettingsError, match=r"\[7\]"):
        AnnotationPipeline(dataset, stub_settings()).run(only=[0, 7])


@pytest.mark.parametrize("text", ["2/2", "-1/3", "1", "a/b", "0/0"])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(SettingsError):
        parse_shard(text)


def test_task_aug_only_run_writes_without_frames(tmp_path, stub_settings):
    dataset = build_dataset(tmp_path / "ds", episode_lengths=(10,), cameras=())
    summary = AnnotationPipeline(
        dataset,
        stub_settings(subtasks={"enabled": False}, interjections={"enabled": False}, vqa={"enabled": False}),
    ).run()
    assert summary.ok and summary.write.persistent_rows == 10 * 6
