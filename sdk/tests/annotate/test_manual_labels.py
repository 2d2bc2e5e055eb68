"""Human labels (YAML or CSV) through the same pipeline: they come out of the dataset as they went in."""

from __future__ import annotations

import textwrap

import pytest
from spinal.annotate import AnnotateSettings, AnnotationPipeline
from spinal.annotate.backends.manual import load_labels
from spinal.annotate.errors import LabelsError, SettingsError
from spinal.language import iter_frame_language

LABELS_YAML = """
episodes:
  0:
    initial_say: "Okay, cube into the bowl."
    task_rephrasings: ["put the red cube in the bowl", "drop the red cube into the bowl"]
    subtasks:
      - {start: 0.0, text: "reach for the red cube"}
      - {start: 1.2, text: "grasp the red cube", memory: "I reached the red cube."}
      - {start: 2.6, text: "place it in the bowl", memory: "I picked up the red cube."}
    interjections:
      - {t: 2.6, text: "now put it in the bowl", say: "Putting it in the bowl."}
  1:
    subtasks:
      - {start: 0.0, text: "push the cube"}
      - {start: 1.5, text: "retract the arm"}
"""

LABELS_CSV = """episode,kind,start,text,say,memory
0,initial_say,,"Okay, cube into the bowl.",,
0,task_rephrasing,,put the red cube in the bowl,,
0,task_rephrasing,,drop the red cube into the bowl,,
0,subtask,0.0,reach for the red cube,,
0,subtask,1.2,grasp the red cube,,I reached the red cube.
0,subtask,2.6,place it in the bowl,,I picked up the red cube.
0,interjection,2.6,now put it in the bowl,Putting it in the bowl.,
1,subtask,0.0,push the cube,,
1,subtask,1.5,retract the arm,,
"""


def _annotate(dataset, labels):
    settings = AnnotateSettings.model_validate(
        {"vlm": {"backend": "manual", "labels": str(labels)}, "vqa": {"enabled": False}}
    )
    pipeline = AnnotationPipeline(dataset, settings)
    summary = pipeline.run()
    assert summary.ok, (summary.failed, summary.validation)
    return {(f.episode_index, f.frame_index): f for f in iter_frame_language(dataset)}


def _labels(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_labels_round_trip_through_the_dataset(dataset, tmp_path):
    frames = _annotate(dataset, _labels(tmp_path, "labels.yaml", LABELS_YAML))
    first = frames[(0, 0)].persistent
    subtasks = [(r["timestamp"], r["content"]) for r in first if r["style"] == "subtask"]
    assert [c for _, c in subtasks] == [
        "reach for the red cube",
        "grasp the red cube",
        "place it in the bowl",
    ]
    assert [round(t, 3) for t, _ in subtasks] == [0.0, 1.2, 2.6]
    assert [r["content"] for r in first if r["style"] == "memory"] == [
        "I reached the red cube.",
        "I picked up the red cube.",
    ]
    assert [r["content"] for r in first if r["style"] == "task_aug"][1:] == [
        "put the red cube in the bowl",
        "drop the red cube into the bowl",
    ]
    at_t0 = frames[(0, 0)].events
    assert at_t0[0]["tool_calls"][0]["function"]["arguments"] == {"text": "Okay, cube into the bowl."}
    at_26 = frames[(0, 26)].events
    assert {r["style"] for r in at_26} == {"interjection", None}
    assert [r["content"] for r in at_26 if r["style"] == "interjection"] == ["now put it in the bowl"]
    assert [r["content"] for r in frames[(1, 20)].persistent if r["style"] == "subtask"] == [
        "push the cube",
        "retract the arm",
    ]


def test_csv_labels_give_the_same_annotations_as_yaml(dataset, tmp_path):
    from_yaml = _annotate(dataset, _labels(tmp_path, "labels.yaml", LABELS_YAML))
    from_csv = _annotate(dataset, _labels(tmp_path, "labels.csv", LABELS_CSV))
    assert {k: (f.persistent, f.events) for k, f in from_yaml.items()} == {
        k: (f.persistent, f.events) for k, f in from_csv.items()
    }


def test_manual_backend_refuses_vqa(dataset, tmp_path):
    settings = AnnotateSettings.model_validate(
        {"vlm": {"backend": "manual", "labels": str(_labels(tmp_path, "l.yaml", LABELS_YAML))}}
    )
    with pytest.raises(SettingsError, match="cannot label vqa"):
        AnnotationPipeline(dataset, settings).run()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.yaml", "episodes: [1, 2]", "episodes:` mapping"),
        ("b.yaml", "episodes: {0: {subtasks: [{start: -1, text: x}]}}", "start.*>= 0"),
        ("c.yaml", "episodes: {0: {subtasks: [{start: 1.0}]}}", "`text` is missing"),
        ("d.yaml", "episodes: {0: {subtask: []}}", "unknown key"),
        ("e.yaml", "episodes: {x: {}}", "episode must be an integer"),
        ("f.yaml", "episodes: {0: {subtasks: [{start: 1, text: a}, {start: 1, text: b}]}}", "same start"),
        ("g.csv", "episode,kind,text\n0,wave,hello\n", "kind 'wave' is unknown"),
        ("h.csv", "episode,text\n0,hello\n", "missing CSV column"),
        ("i.txt", "whatever", "must end in"),
    ],
)
def test_malformed_label_files_name_the_problem(tmp_path, name, text, message):
    with pytest.raises(LabelsError, match=message):
        load_labels(_labels(tmp_path, name, textwrap.dedent(text)))


def test_labels_survive_prompt_windows(dataset, tmp_path):
    labels = _labels(tmp_path, "labels.yaml", LABELS_YAML)
    settings = AnnotateSettings.model_validate(
        {
            "vlm": {"backend": "manual", "labels": str(labels)},
            "vqa": {"enabled": False},
            "subtasks": {"max_frames_per_prompt": 2},
        }
    )
    assert AnnotationPipeline(dataset, settings).run().ok
    first = next(iter_frame_language(dataset)).persistent
    assert [r["content"] for r in first if r["style"] == "subtask"] == [
        "reach for the red cube",
        "grasp the red cube",
        "place it in the bowl",
    ]


def test_labelled_interjections_outside_the_episode_are_reported(dataset, tmp_path):
    text = """
episodes:
  0:
    subtasks: [{start: 0.0, text: reach}, {start: 1.0, text: grasp}]
    interjections:
      - {t: 0.0, text: "too early", say: "ok"}
      - {t: 99.0, text: "too late", say: "ok"}
      - {t: 1.0, text: "grasp it now", say: "grasping"}
"""
    settings = AnnotateSettings.model_validate(
        {
            "vlm": {"backend": "manual", "labels": str(_labels(tmp_path, "l.yaml", text))},
            "vqa": {"enabled": False},
        }
    )
    summary = AnnotationPipeline(dataset, settings).run()
    assert summary.ok and any("2 labelled interjection(s) dropped" in w for w in summary.warnings)
    texts = [
        r["content"] for f in iter_frame_language(dataset) for r in f.events if r["style"] == "interjection"
    ]
    assert texts == ["grasp it now"]
