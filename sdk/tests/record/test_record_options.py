"""`spinal record`'s options: one clear sentence naming the flag for every bad value; the output folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinal.device import DeviceClient
from spinal.record import (
    DeviceControl,
    NoKeys,
    PlainView,
    RecordMode,
    RecordSession,
    SessionDataset,
    SessionOptions,
    SessionSetupError,
)


def _options(tmp_path: Path, **overrides) -> SessionOptions:
    values = dict(
        device_url="http://127.0.0.1:9",
        task="pick the cube",
        episodes=2,
        episode_time_s=3.0,
        reset_time_s=1.0,
        mode="policy",
        out_dir=tmp_path / "ds",
        repo_id="me/pick",
    )
    values.update(overrides)
    return SessionOptions(**values)


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"task": "   "}, "--task"),
        ({"task": "x" * 1001}, "--task"),
        ({"episodes": 0}, "--episodes"),
        ({"episode_time_s": 0}, "--episode-time"),
        ({"reset_time_s": -1}, "--reset-time"),
        ({"pull_every": -2}, "--pull-every"),
        ({"repo_id": "no spaces/please"}, "--repo-id"),
        ({"mode": "dance"}, "--mode"),
    ],
)
def test_bad_options_name_the_flag(tmp_path: Path, overrides: dict, flag: str) -> None:
    with pytest.raises(SessionSetupError, match=flag):
        _options(tmp_path, **overrides)


def test_recordings_sit_next_to_the_dataset_by_default(tmp_path: Path) -> None:
    options = _options(tmp_path, task="  pick  ")
    assert options.raw_dir == tmp_path / "ds.recordings"
    assert options.mode is RecordMode.POLICY and options.task == "pick"
    assert _options(tmp_path, recordings_dir=tmp_path / "raw").raw_dir == tmp_path / "raw"


def _session(options: SessionOptions) -> RecordSession:
    client = DeviceClient(options.device_url)  # prepare() never talks to the device
    dataset = SessionDataset(client, options.raw_dir, options.out_dir, repo_id=options.repo_id)
    return RecordSession(options, DeviceControl(client), keys=NoKeys(), view=PlainView(), dataset=dataset)


def test_a_new_session_refuses_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    with pytest.raises(SessionSetupError, match="not empty"):
        _session(_options(tmp_path)).prepare()
    assert (tmp_path / "ds" / "notes.txt").read_text() == "mine"


def test_a_session_is_resumed_only_when_asked_and_with_the_same_repo_id(tmp_path: Path) -> None:
    first = _session(_options(tmp_path)).prepare()
    assert first.path.is_file()
    with pytest.raises(SessionSetupError, match="--resume"):
        _session(_options(tmp_path)).prepare()
    with pytest.raises(SessionSetupError, match="--repo-id me/pick"):
        _session(_options(tmp_path, repo_id="me/other", resume=True)).prepare()
    resumed = _session(_options(tmp_path, resume=True)).prepare()
    assert resumed.path == first.path


def test_resume_without_a_session_says_there_is_none(tmp_path: Path) -> None:
    with pytest.raises(SessionSetupError, match="no session to resume"):
        _session(_options(tmp_path, resume=True)).prepare()
