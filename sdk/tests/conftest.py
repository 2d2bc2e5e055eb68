"""Shared fixtures for the SDK tests: recorded episodes (real EpisodeWriter, real JPEGs) and converted datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinal.dataset import ConvertOptions, convert_recordings
from spinal.recording.synthetic import record_synthetic_episode

FPS = 30
CAMERAS = ("front", "wrist")
WIDTH, HEIGHT = 128, 96


def record_raw(root: Path, specs: list[tuple[str, int, str]], **kwargs) -> Path:
    """Record episodes `(id, frames, task)` under `root` with the synthetic camera; returns `root`."""
    for seed, (episode_id, frames, task) in enumerate(specs):
        record_synthetic_episode(
            root,
            episode_id,
            frames=frames,
            fps=kwargs.get("fps", FPS),
            cameras=kwargs.get("cameras", CAMERAS),
            width=kwargs.get("width", WIDTH),
            height=kwargs.get("height", HEIGHT),
            task=task,
            seed=seed,
        )
    return root


@pytest.fixture(scope="session")
def recorder():
    """`recorder(root, [(id, frames, task), ...], **options)` records synthetic episodes under `root`."""
    return record_raw


@pytest.fixture(scope="session")
def raw_recordings(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    return record_raw(
        root,
        [("ep-a", 45, "pick the cube"), ("ep-b", 61, "pick the cube"), ("ep-c", 38, "place the cube")],
    )


@pytest.fixture(scope="session")
def converted(tmp_path_factory, raw_recordings) -> Path:
    out = tmp_path_factory.mktemp("converted") / "ds"
    report = convert_recordings(raw_recordings, out, ConvertOptions(repo_id="test/so101", workers=2))
    assert [e.converted for e in report.episodes] == [True, True, True]
    return out
