"""The staging validator catches what would break training before anything is written."""

from __future__ import annotations

import json

import pytest
from spinal.annotate.modules import MODULES
from spinal.annotate.validator import validate_episode
from spinal.language import speech_atom

FRONT = "observation.images.front"
TIMES = [0.0, 0.1, 0.2, 0.30000001192092896, 0.4]
COLUMNS = {m.name: m.column for m in MODULES}


def _p(style, content, t, role="assistant"):
    return {
        "role": role,
        "content": content,
        "style": style,
        "timestamp": t,
        "camera": None,
        "tool_calls": None,
    }


def _good():
    t = 0.2
    return {
        "subtasks": [
            _p("subtask", "reach", 0.0),
            _p("plan", "1. reach\n2. grasp", 0.0),
            _p("subtask", "grasp", t),
            _p("plan", "1. grasp", t),
            _p("memory", "I reached it.", t),
        ],
        "interjections": [
            {**speech_atom("OK."), "timestamp": 0.0},
            _p("interjection", "grasp now", t, role="user"),
            {**speech_atom("Grasping."), "timestamp": t},
        ],
        "vqa": [
            {
                "role": "user",
                "content": "how many?",
                "style": "vqa",
                "camera": FRONT,
                "tool_calls": None,
                "timestamp": 0.1,
            },
            {
                "role": "assistant",
                "content": json.dumps({"label": "cube", "count": 1}),
                "style": "vqa",
                "camera": FRONT,
                "tool_calls": None,
                "timestamp": 0.1,
            },
        ],
    }


def _check(modules):
    return validate_episode(3, modules, frame_times=TIMES, camera_keys=[FRONT], module_columns=COLUMNS)


def test_clean_staging_passes():
    report = _check(_good())
    assert report.ok, report.errors
    assert report.warnings == []


def test_misaligned_timestamp_is_an_error():
    modules = _good()
    modules["vqa"][0]["timestamp"] = modules["vqa"][1]["timestamp"] = 0.15
    assert any("not on a frame timestamp" in e for e in _check(modules).errors)


def test_orphan_interjection_without_speech_is_an_error():
    modules = _good()
    modules["interjections"] = [
        r for r in modules["interjections"] if not (r["style"] is None and r["timestamp"] == 0.2)
    ]
    assert any("no speech atom" in e for e in _check(modules).errors)


def test_interjection_without_plan_at_its_time_is_an_error():
    modules = _good()
    modules["subtasks"] = [
        r for r in modules["subtasks"] if not (r["style"] == "plan" and r["timestamp"] == 0.2)
    ]
    assert any("no plan at the same timestamp" in e for e in _check(modules).errors)


def test_row_in_the_wrong_column_is_an_error():
    modules = _good()
    modules["vqa"].append(_p("subtask", "sneaky", 0.1))
    assert any("module vqa must produce language_events" in e for e in _check(modules).errors)


def test_bad_vqa_answer_shape_and_duplicates_are_errors():
    modules = _good()
    modules["vqa"][1]["content"] = json.dumps({"label": "cube", "count": "one"})
    modules["vqa"].append(dict(modules["vqa"][0]))
    errors = _check(modules).errors
    assert any("count is a label and a non-negative integer" in e for e in errors)
    assert any("at most one per (t, camera, role)" in e for e in errors)


def test_unknown_camera_and_missing_camera_are_errors():
    modules = _good()
    for row in modules["vqa"]:
        row["camera"] = "observation.images.side"
    assert any("does not record" in e for e in _check(modules).errors)
    modules["vqa"][0]["camera"] = None
    assert any("view-dependent" in e for e in _check(modules).errors)


def test_two_subtasks_on_one_frame_are_an_error():
    modules = _good()
    modules["subtasks"].append(_p("subtask", "again", 0.0))
    assert any("distinct frames" in e for e in _check(modules).errors)


def test_memory_off_a_boundary_is_only_a_warning():
    modules = _good()
    modules["subtasks"].append(_p("memory", "drifted", 0.4))
    report = _check(modules)
    assert report.ok and any("not on a subtask boundary" in w for w in report.warnings)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda atom: atom.update(content="also text"),
        lambda atom: atom.update(
            tool_calls=[{"type": "function", "function": {"name": "say", "arguments": "{}"}}]
        ),
    ],
)
def test_malformed_speech_atoms_are_errors(mutate):
    modules = _good()
    mutate(modules["interjections"][0])
    assert any("malformed" in e for e in _check(modules).errors)
