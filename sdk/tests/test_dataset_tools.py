"""stats, plot, info and push work on a converted dataset and fail with a clear message when they cannot."""

from __future__ import annotations

import builtins
import json
import shutil

import numpy as np
import pytest
from spinal.dataset import (
    DatasetError,
    DatasetReader,
    PushError,
    dataset_info,
    recompute_stats,
    validate_dataset,
)
from spinal.dataset.plot import plot_episodes
from spinal.dataset.push import push_dataset


def test_recomputed_statistics_match_the_rows_and_keep_the_dataset_valid(converted, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(converted, copy)
    before = json.loads((copy / "meta/stats.json").read_text())
    (copy / "meta/stats.json").unlink()
    stats = recompute_stats(copy)
    after = json.loads((copy / "meta/stats.json").read_text())
    for key in ("observation.state", "action", "timestamp", "frame_index", "index", "episode_index"):
        for stat in ("min", "max", "mean", "std", "count", "q50"):
            assert np.allclose(after[key][stat], before[key][stat], rtol=1e-9, atol=1e-9), (key, stat)
    reader = DatasetReader(copy)
    actions = np.concatenate(
        [np.array(reader.episode_table(e, columns=["action"]).column(0).to_pylist()) for e in reader.episodes]
    )
    assert np.allclose(stats["action"]["max"], actions.max(axis=0))
    image = after["observation.images.front"]
    assert (
        np.asarray(image["mean"]).shape == (3, 1, 1)
        and 0.0 <= np.min(image["min"]) <= np.max(image["max"]) <= 1.0
    )
    # Image statistics come from decoded video now, so they stay close to the JPEG-based ones.
    assert np.allclose(image["mean"], before["observation.images.front"]["mean"], atol=0.02)
    assert validate_dataset(copy).ok


def test_plots_are_pngs_one_per_episode(converted, tmp_path):
    written = plot_episodes(converted, tmp_path / "plots", [0, 2])
    assert [p.name for p in written] == ["episode_000000.png", "episode_000002.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    with pytest.raises(DatasetError, match="between 0 and 2"):
        plot_episodes(converted, tmp_path / "plots", [9])


def test_info_summarises_the_dataset(converted):
    info = dataset_info(converted)
    assert info["episodes"] == 3 and info["frames"] == 144 and info["fps"] == 30
    assert info["tasks"] == ["pick the cube", "place the cube"]
    assert info["videos"]["observation.images.wrist"]["size"] == "128x96"
    assert info["size_bytes"] > 0


class _RecordingHubApi:
    """Stands in for the Hugging Face Hub, which this machine cannot reach; records what push asked for."""

    def __init__(self, fail_upload: bool = False) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail_upload = fail_upload

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        if self.fail_upload:
            raise RuntimeError("401 Client Error: Unauthorized")
        self.calls.append(("upload_folder", kwargs))

    def create_tag(self, repo_id, **kwargs):
        self.calls.append(("create_tag", {"repo_id": repo_id, **kwargs}))


def test_push_uploads_the_folder_and_tags_the_codebase_version(converted):
    api = _RecordingHubApi()
    url = push_dataset(converted, "me/so101_pick", api=api, private=True)
    assert url.endswith("/datasets/me/so101_pick")
    names = [name for name, _ in api.calls]
    assert names == ["create_repo", "upload_folder", "create_tag"]
    assert api.calls[0][1]["repo_type"] == "dataset" and api.calls[0][1]["private"] is True
    assert api.calls[1][1]["folder_path"] == str(converted)
    assert api.calls[2][1]["tag"] == "v3.0"


def test_push_refuses_an_invalid_dataset_and_reports_hub_errors(converted, tmp_path):
    broken = tmp_path / "ds"
    shutil.copytree(converted, broken)
    (broken / "meta/stats.json").unlink()
    api = _RecordingHubApi()
    with pytest.raises(PushError, match="validation problem"):
        push_dataset(broken, "me/x", api=api)
    assert api.calls == []
    with pytest.raises(PushError, match="refused the upload.*Unauthorized"):
        push_dataset(converted, "me/x", api=_RecordingHubApi(fail_upload=True))
    with pytest.raises(PushError, match="user/name"):
        push_dataset(converted, "no-slash", api=api)


def test_push_without_huggingface_hub_says_how_to_install_it(converted, monkeypatch):
    real_import = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(PushError, match=r"pip install 'spinal\[hub\]'"):
        push_dataset(converted, "me/x", check=False)
