"""The issue's finish line: a recording converted by `spinal dataset` is annotated (stub, human labels, an
OpenAI-compatible server) and rendered through the shipped recipes, and stays a valid dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinal.annotate.fake_server import FakeVlmServer
from spinal.cli import app
from spinal.dataset import ConvertOptions, convert_recordings
from spinal.dataset.validate import validate_dataset
from spinal.dataset.video import VideoSettings
from spinal.language import iter_frame_language
from spinal.recording.synthetic import record_synthetic_episode
from typer.testing import CliRunner

LABELS = """
episodes:
  0:
    subtasks: [{start: 0.0, text: "reach the cube"}, {start: 1.5, text: "lift the cube", memory: "I reached the cube."}]
    interjections: [{t: 1.5, text: "lift it now", say: "Lifting."}]
  1:
    subtasks: [{start: 0.0, text: "push the cube"}]
"""


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    for seed, frames in enumerate((40, 32)):
        record_synthetic_episode(
            raw,
            f"ep-{seed}",
            frames=frames,
            fps=10,
            cameras=("front", "wrist"),
            width=64,
            height=48,
            task="pick the cube",
            seed=seed,
        )
    out = tmp_path_factory.mktemp("converted") / "ds"
    report = convert_recordings(
        raw, out, ConvertOptions(repo_id="test/so101", workers=1, video=VideoSettings(codec="h264"))
    )
    assert all(e.converted for e in report.episodes)
    return out


@pytest.fixture
def dataset(converted, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(converted, tmp_path / "ds"))


def _annotate_and_render(dataset: Path, *args: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["annotate", str(dataset), *args])
    assert result.exit_code == 0, result.output
    assert validate_dataset(dataset).ok
    for recipe in ("subtasks_vqa", "subtask_mem_vqa_speech"):
        shown = runner.invoke(app, ["render", str(dataset), "--recipe", recipe, "--samples", "2"])
        assert shown.exit_code == 0, shown.output
        assert "frames render" in shown.output


def test_stub_backend_on_a_converted_recording(dataset):
    _annotate_and_render(dataset, "--backend", "stub")


def test_human_labels_on_a_converted_recording(dataset, tmp_path):
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS)
    _annotate_and_render(dataset, "--backend", "manual", "--labels", str(labels), "--no-vqa")
    subtasks = [
        r["content"] for r in next(iter_frame_language(dataset)).persistent if r["style"] == "subtask"
    ]
    assert subtasks == ["reach the cube", "lift the cube"]


def test_openai_compatible_server_on_a_converted_recording(dataset):
    with FakeVlmServer() as server:
        _annotate_and_render(
            dataset, "--base-url", server.base_url, "--model", "fake-vlm", "--concurrency", "4"
        )
        assert server.requests > 0
