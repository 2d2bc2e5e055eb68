"""End to end: annotate, resume after a killed run, shard and merge, render through the shipped recipes, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from spinal.annotate import AnnotationPipeline
from spinal.annotate.errors import StagingError
from spinal.annotate.fake_server import FakeVlmServer
from spinal.annotate.staging import Staging
from spinal.annotate.synthetic import build_dataset
from spinal.cli import app
from spinal.language import LANGUAGE_PERSISTENT, iter_frame_language, render_sample
from spinal.language.recipe import load_shipped_recipe
from spinal.language.render import select_recipe
from spinal.language.v3_dataset import V3Dataset
from typer.testing import CliRunner

DATA = "data/chunk-000/file-000.parquet"


def _language(dataset):
    return [(f.index, f.persistent, f.events) for f in iter_frame_language(dataset)]


@pytest.mark.parametrize("recipe_name", ["subtasks_vqa", "subtask_mem_vqa_speech"])
def test_pipeline_output_renders_through_the_shipped_recipes(dataset, fake_vlm, openai_settings, recipe_name):
    pipeline = AnnotationPipeline(dataset, openai_settings(fake_vlm, concurrency=8))
    assert pipeline.run().ok
    pipeline.close()
    recipe = load_shipped_recipe(recipe_name).for_cameras(V3Dataset(dataset).camera_keys)
    rendered: dict[str, int] = {}
    for frame in iter_frame_language(dataset):
        # Every frame must render or be skipped cleanly: no ambiguity error anywhere.
        sample = render_sample(
            recipe=recipe,
            persistent=frame.persistent,
            events=frame.events,
            t=frame.timestamp,
            sample_idx=frame.index,
            prefer_task_aug=True,
        )
        if sample is not None:
            branch = select_recipe(recipe, frame.index)[0]
            rendered[branch] = rendered.get(branch, 0) + 1
            assert len(sample["messages"]) == len(sample["message_streams"])
    assert rendered.get("current_subtask", 0) > 0 and rendered.get("execute_subtask", 0) > 0
    assert sum(rendered.values()) > len(_language(dataset)) // 2


def test_every_branch_has_frames_it_can_render(dataset, stub_settings):
    AnnotationPipeline(dataset, stub_settings(interjections={"min_t": 0.5})).run()
    recipe = load_shipped_recipe("subtask_mem_vqa_speech").for_cameras(V3Dataset(dataset).camera_keys)
    frames = list(iter_frame_language(dataset))
    for name, component in recipe.blend.items():
        from spinal.language import TrainingRecipe

        only = TrainingRecipe(blend={name: component})
        hits = [
            f
            for f in frames
            if render_sample(
                recipe=only, persistent=f.persistent, events=f.events, t=f.timestamp, sample_idx=f.index
            )
            is not None
        ]
        assert hits, f"branch {name} never renders"


def test_rerun_skips_finished_episodes_and_changes_nothing(dataset, stub_settings):
    first = AnnotationPipeline(dataset, stub_settings()).run()
    before = (dataset / DATA).read_bytes()
    second = AnnotationPipeline(dataset, stub_settings()).run()
    assert first.annotated == [0, 1] and second.skipped == [0, 1] and not second.modules_run
    assert second.write.files_rewritten == [] and (dataset / DATA).read_bytes() == before


def test_changed_settings_redo_only_the_affected_modules(dataset, stub_settings):
    AnnotationPipeline(dataset, stub_settings()).run()
    summary = AnnotationPipeline(dataset, stub_settings(vqa={"emission_hz": 2.0})).run()
    assert dict(summary.modules_run) == {"vqa": 2}
    summary = AnnotationPipeline(
        dataset, stub_settings(subtasks={"emit_memory": False}, vqa={"emission_hz": 2.0})
    ).run()
    # interjections and plan_update depend on subtasks, so they are redone too
    assert dict(summary.modules_run) == {"subtasks": 2, "interjections": 2, "plan_update": 2}


def _cli(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from spinal.cli import main; sys.argv[0] = 'spinal'; main()",
        *args,
    ]


def test_resume_after_a_killed_run_finishes_the_rest(tmp_path, openai_settings):
    dataset = build_dataset(tmp_path / "ds", episode_lengths=(20, 20, 20, 20), fps=10)
    staging = Staging(dataset / ".annotate_staging")
    with FakeVlmServer(delay_s=0.05) as server:
        args = [
            "annotate",
            str(dataset),
            "--backend",
            "openai",
            "--base-url",
            server.base_url,
            "--model",
            "fake-vlm",
            "--concurrency",
            "1",
            "--max-retries",
            "2",
            "--timeout",
            "30",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(_cli(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            # Wait until at least one episode is fully staged, then kill the run mid-flight.
            while time.monotonic() < deadline and not any(
                staging.path(ep, "vqa").is_file() for ep in range(4)
            ):
                assert proc.poll() is None, "the run ended before it could be killed"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        done_before = {ep for ep in range(4) if staging.path(ep, "vqa").is_file()}
        assert done_before and done_before != {0, 1, 2, 3}
        assert LANGUAGE_PERSISTENT not in pq.read_schema(dataset / DATA).names
        # a kill during a staging write leaves at most a temporary file, which the next run removes
        stale = staging.path(3, "vqa").parent / ".vqa.jsonl.killed.tmp"
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_text("{partial")

        settings = openai_settings(server, concurrency=1, max_retries=2, timeout_s=30)
        pipeline = AnnotationPipeline(dataset, settings)
        summary = pipeline.run()
        pipeline.close()
    assert summary.ok and not stale.exists()
    assert set(summary.skipped) == done_before
    assert set(summary.annotated) == {0, 1, 2, 3} - done_before
    resumed = _language(dataset)

    fresh = build_dataset(tmp_path / "fresh", episode_lengths=(20, 20, 20, 20), fps=10)
    with FakeVlmServer() as server:
        pipeline = AnnotationPipeline(
            fresh, openai_settings(server, concurrency=1, max_retries=2, timeout_s=30)
        )
        assert pipeline.run().ok
        pipeline.close()
    assert resumed == _language(fresh)


def test_shards_merge_into_the_same_result_as_one_run(tmp_path, stub_settings):
    lengths = (20, 25, 20, 30, 20)
    whole = build_dataset(tmp_path / "whole", episode_lengths=lengths)
    AnnotationPipeline(whole, stub_settings()).run()

    split = build_dataset(tmp_path / "split", episode_lengths=lengths)
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, folder in enumerate(shards):
        summary = AnnotationPipeline(split, stub_settings(), staging_dir=folder).run(shard=(i, 2))
        assert summary.write is None and summary.episodes == list(range(5))[i::2]
    assert LANGUAGE_PERSISTENT not in pq.read_schema(split / DATA).names

    pipeline = AnnotationPipeline(split, stub_settings())
    for folder in shards:
        pipeline.staging.merge_from(Staging(folder))
    pipeline.write()
    assert _language(split) == _language(whole)

    again = pipeline.staging.merge_from(Staging(shards[0]))
    assert again.copied == [] and len(again.identical) > 0
    assert pipeline.write()[1].files_rewritten == []


def test_merging_a_different_result_for_the_same_episode_is_refused(tmp_path, stub_settings):
    dataset = build_dataset(tmp_path / "ds", episode_lengths=(20, 20))
    AnnotationPipeline(dataset, stub_settings(), staging_dir=tmp_path / "a").run(shard=(0, 1))
    AnnotationPipeline(dataset, stub_settings(seed=7), staging_dir=tmp_path / "b").run(shard=(0, 1))
    target = Staging(dataset / ".annotate_staging")
    target.merge_from(Staging(tmp_path / "a"))
    with pytest.raises(StagingError, match="differs"):
        target.merge_from(Staging(tmp_path / "b"))


def test_cli_annotates_renders_and_dry_runs(dataset):
    runner = CliRunner()
    dry = runner.invoke(app, ["annotate", str(dataset), "--backend", "stub", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "TASK: subtasks" in dry.output and "<image:" in dry.output and "nothing was sent" in dry.output
    assert LANGUAGE_PERSISTENT not in pq.read_schema(dataset / DATA).names
    assert not (dataset / ".annotate_staging").exists()

    result = runner.invoke(app, ["annotate", str(dataset), "--backend", "stub", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["annotated"] == [0, 1] and payload["written"] and payload["frames_written"] == 75

    shown = runner.invoke(
        app, ["render", str(dataset), "--recipe", "subtask_mem_vqa_speech", "--samples", "3"]
    )
    assert shown.exit_code == 0, shown.output
    assert "frames render" in shown.output and "execute_subtask" in shown.output


def test_cli_shard_then_merge(dataset, tmp_path):
    runner = CliRunner()
    for i in range(2):
        out = runner.invoke(
            app,
            [
                "annotate",
                str(dataset),
                "--backend",
                "stub",
                "--shard",
                f"{i}/2",
                "--staging-dir",
                str(tmp_path / f"s{i}"),
            ],
        )
        assert out.exit_code == 0 and "merge all shards" in out.output
    merged = runner.invoke(
        app,
        [
            "annotate",
            str(dataset),
            "--backend",
            "stub",
            "--merge",
            str(tmp_path / "s0"),
            "--merge",
            str(tmp_path / "s1"),
        ],
    )
    assert merged.exit_code == 0, merged.output
    assert {f.episode_index for f in iter_frame_language(dataset) if f.persistent} == {0, 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["annotate", "{missing}", "--backend", "stub"], "is not a LeRobotDataset v3.0 folder"),
        (["annotate", "{ds}", "--backend", "manual"], "needs a label file"),
        (["annotate", "{ds}", "--backend", "stub", "--shard", "3/2"], "0 <= i < n"),
        (["annotate", "{ds}", "--backend", "stub", "--camera", "observation.images.side"], "not a camera"),
        (["render", "{ds}", "--recipe", "subtasks_vqa"], "no language columns"),
    ],
)
def test_cli_errors_are_one_clear_sentence(dataset, tmp_path, args, message):
    args = [a.format(ds=dataset, missing=tmp_path / "nope") for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output


def test_cli_reads_settings_from_yaml_and_flags_override_it(dataset, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("vlm: {backend: stub}\nvqa: {enabled: true}\ntask_aug: {n_rephrasings: 2}\n")
    result = CliRunner().invoke(
        app, ["annotate", str(dataset), "--config", str(config), "--no-vqa", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "vqa" not in json.loads(result.output)["modules_run"]
    first = next(iter_frame_language(dataset)).persistent
    assert len([r for r in first if r["style"] == "task_aug"]) == 3

    config.write_text("vlm: {backend: stub, concurrency: 0}\n")
    bad = CliRunner().invoke(app, ["annotate", str(dataset), "--config", str(config)])
    assert bad.exit_code != 0 and "vlm.concurrency" in bad.output


def test_cli_render_prints_json_samples(dataset):
    runner = CliRunner()
    assert runner.invoke(app, ["annotate", str(dataset), "--backend", "stub"]).exit_code == 0
    result = runner.invoke(
        app,
        ["render", str(dataset), "--recipe", "subtasks_vqa", "--episode", "1", "--json", "--samples", "4"],
    )
    assert result.exit_code == 0, result.output
    samples = [json.loads(line) for line in result.output.splitlines()]
    assert len(samples) == 4
    assert all(
        s["index"] >= 40 and s["messages"] and len(s["messages"]) == len(s["message_streams"])
        for s in samples
    )
