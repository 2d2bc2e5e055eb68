"""Fixtures for the annotation tests: tiny real v3 datasets (parquet + mp4) and a fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from spinal.annotate.fake_server import FakeVlmServer
from spinal.annotate.settings import AnnotateSettings
from spinal.annotate.synthetic import build_dataset

FRONT, WRIST = "observation.images.front", "observation.images.wrist"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two episodes (40 and 35 frames at 10 fps), two cameras."""
    return build_dataset(tmp_path / "ds", episode_lengths=(40, 35), fps=10)


@pytest.fixture
def fake_vlm() -> Iterator[FakeVlmServer]:
    with FakeVlmServer(max_lifetime_s=300) as server:
        yield server


def _stub_settings(**overrides: object) -> AnnotateSettings:
    data: dict[str, object] = {"vlm": {"backend": "stub"}}
    data.update(overrides)
    return AnnotateSettings.model_validate(data)


def _openai_settings(
    server: FakeVlmServer, *, settings: dict | None = None, **vlm: object
) -> AnnotateSettings:
    vlm_settings = {
        "backend": "openai",
        "base_url": server.base_url,
        "model": "fake-vlm",
        "max_retries": 2,
        "timeout_s": 30,
    }
    return AnnotateSettings.model_validate({**(settings or {}), "vlm": {**vlm_settings, **vlm}})


@pytest.fixture
def stub_settings():
    """Settings for the stub backend: `stub_settings(subtasks={"emit_memory": False})`."""
    return _stub_settings


@pytest.fixture
def openai_settings():
    """Settings pointing the OpenAI-compatible backend at a fake server: `openai_settings(server, concurrency=4)`."""
    return _openai_settings
