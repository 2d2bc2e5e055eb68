"""The annotation modules on a real tiny dataset with the stub backend: what rows they stage and what they ask."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spinal.annotate.backends.base import SUBTASKS, VQA
from spinal.annotate.backends.stub import StubBackend
from spinal.annotate.job import EpisodeJob
from spinal.annotate.modules import InterjectionsModule, SubtasksModule, TaskAugModule, VqaModule
from spinal.annotate.modules.subtasks import stitch_subtasks
from spinal.annotate.prompts import vqa_answer_problem
from spinal.annotate.settings import AnnotateSettings
from spinal.language.v3_dataset import V3Dataset

FRONT, WRIST = "observation.images.front", "observation.images.wrist"


class RecordingStub(StubBackend):
    def __init__(self):
        super().__init__()
        self.seen = []

    def answer(self, requests):
        self.seen.extend(requests)
        return super().answer(requests)


def stub_settings(**overrides):
    return AnnotateSettings.model_validate({"vlm": {"backend": "stub"}, **overrides})


def _job(dataset, settings=None, backend=None, episode=0):
    ds = V3Dataset(dataset)
    return EpisodeJob(
        frames=ds.episode(episode),
        settings=settings or stub_settings(),
        backend=backend or RecordingStub(),
        plan_camera=FRONT,
        vqa_cameras=[FRONT, WRIST],
    )


def _frame_keys(job):
    return {np.float32(t).tobytes() for t in job.frames.timestamps}


def test_plan_rows_sit_on_frames_one_per_subtask_and_shrink(dataset):
    job = _job(dataset)
    rows = SubtasksModule().run(job)
    subtasks = [r for r in rows if r["style"] == "subtask"]
    plans = [r for r in rows if r["style"] == "plan"]
    assert len(subtasks) == len(plans) >= 2
    assert all(np.float32(r["timestamp"]).tobytes() in _frame_keys(job) for r in rows)
    assert [p["timestamp"] for p in plans] == [s["timestamp"] for s in subtasks]
    assert subtasks[0]["timestamp"] == job.times()[0]
    lengths = [len(p["content"].splitlines()) for p in plans]
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] == 1
    assert plans[0]["content"].startswith("1. ")


def test_memory_rows_follow_each_boundary_after_the_first(dataset):
    rows = SubtasksModule().run(_job(dataset))
    starts = [r["timestamp"] for r in rows if r["style"] == "subtask"]
    memories = [r for r in rows if r["style"] == "memory"]
    assert [m["timestamp"] for m in memories] == starts[1:]
    assert all(m["role"] == "assistant" for m in memories)


def test_emit_memory_false_writes_no_memory(dataset):
    settings = stub_settings(subtasks={"emit_memory": False})
    rows = SubtasksModule().run(_job(dataset, settings))
    assert rows and not [r for r in rows if r["style"] == "memory"]


def test_subtask_prompts_carry_timestamped_contact_sheets_not_video(dataset):
    backend = RecordingStub()
    SubtasksModule().run(_job(dataset, backend=backend))
    request = next(r for r in backend.seen if r.kind == SUBTASKS)
    blocks = request.messages[-1]["content"]
    assert "CONTACT SHEETS" in blocks[0]["text"]
    images = [b for b in blocks if b["type"] == "image_url"]
    assert images and all(b["image_url"]["url"].startswith("data:image/jpeg;base64,") for b in images)
    assert not [b for b in blocks if "video" in b["type"]]


def test_long_episodes_are_split_into_windows_and_stitched(dataset):
    settings = stub_settings(subtasks={"max_frames_per_prompt": 3, "frames_per_second": 2.0})
    backend = RecordingStub()
    rows = SubtasksModule().run(_job(dataset, settings, backend))
    windows = [r for r in backend.seen if r.kind == SUBTASKS]
    assert len(windows) > 1
    starts = [r["timestamp"] for r in rows if r["style"] == "subtask"]
    assert starts == sorted(set(starts))


def test_stitching_moves_same_frame_starts_apart_and_drops_repeats(dataset):
    job = _job(dataset)
    spans = [(0.3, "reach"), (0.31, "grasp"), (0.32, "grasp"), (0.3, "lift")]
    out = stitch_subtasks(job, spans)
    times = [t for t, _ in out]
    assert times[0] == 0.0 and len(set(times)) == len(times) == len(out)
    assert [t for t, _ in out] == sorted(times)


def test_task_aug_writes_task_then_distinct_rephrasings_as_user_rows(dataset):
    settings = stub_settings(task_aug={"n_rephrasings": 3})
    rows = TaskAugModule().run(_job(dataset, settings))
    assert [r["role"] for r in rows] == ["user"] * 4
    assert rows[0]["content"] == V3Dataset(dataset).episode(0).task
    assert len({r["content"] for r in rows}) == 4 and all(r["timestamp"] == 0.0 for r in rows)


def test_interjections_with_cap_zero_give_only_the_first_frame_speech(dataset):
    settings = stub_settings(interjections={"max_per_episode": 0})
    job = _job(dataset, settings)
    job.staged["subtasks"] = SubtasksModule().run(job)
    rows = InterjectionsModule().run(job)
    assert len(rows) == 1 and rows[0]["style"] is None and rows[0]["timestamp"] == job.times()[0]
    assert rows[0]["tool_calls"][0]["function"]["name"] == "say"


def test_interjections_come_paired_with_speech_at_subtask_boundaries(dataset):
    settings = stub_settings(interjections={"max_per_episode": 3, "min_t": 0.5})
    job = _job(dataset, settings)
    job.staged["subtasks"] = SubtasksModule().run(job)
    rows = InterjectionsModule().run(job)
    boundaries = {r["timestamp"] for r in job.staged["subtasks"] if r["style"] == "subtask"}
    interjections = [r for r in rows if r["style"] == "interjection"]
    assert interjections
    for row in interjections:
        assert row["timestamp"] in boundaries and row["role"] == "user"
        assert [r for r in rows if r["style"] is None and r["timestamp"] == row["timestamp"]]


def test_interjection_picks_are_seeded(dataset):
    settings = stub_settings(interjections={"max_per_episode": 1, "min_t": 0.5})

    def picks():
        job = _job(dataset, settings)
        job.staged["subtasks"] = SubtasksModule().run(job)
        return [r["timestamp"] for r in InterjectionsModule().run(job) if r["style"] == "interjection"]

    assert picks() == picks()


def test_vqa_gives_one_row_per_time_camera_and_role_with_json_answers(dataset):
    backend = RecordingStub()
    rows = VqaModule().run(_job(dataset, backend=backend))
    keys = [(r["timestamp"], r["camera"], r["role"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r["camera"] for r in rows} == {FRONT, WRIST}
    for row in rows:
        if row["role"] == "assistant":
            assert vqa_answer_problem(None, json.loads(row["content"])) is None
    for request in (r for r in backend.seen if r.kind == VQA):
        images = [b for b in request.messages[-1]["content"] if b["type"] == "image_url"]
        assert len(images) == 1


@pytest.mark.parametrize(
    ("kind", "answer", "ok"),
    [
        ("bbox", {"detections": [{"label": "cube", "bbox": [1, 2, 30, 40]}]}, True),
        ("bbox", {"detections": []}, True),
        ("bbox", {"detections": [{"label": "cube", "bbox": [1, 2, 3000, 40]}]}, False),
        ("bbox", {"detections": [{"label": "c", "bbox": [1, 2, 3, 4]}] * 4}, False),
        ("keypoint", {"label": "cube", "point_format": "xy", "point": [500, 500]}, True),
        ("count", {"label": "cube", "count": -1}, False),
        ("attribute", {"label": "cube", "attribute": "color", "value": "red"}, True),
        ("spatial", {"subject": "cube", "relation": "left of", "object": ""}, False),
        (None, {"what": 1}, False),
    ],
)
def test_vqa_answer_shapes(kind, answer, ok):
    assert (vqa_answer_problem(kind, answer) is None) is ok
