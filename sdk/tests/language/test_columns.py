"""Writing the language columns into a real v3 dataset (parquet + mp4) and reading them back per frame."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spinal.annotate.synthetic import build_dataset
from spinal.language import (
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    RowError,
    iter_frame_language,
    language_events_arrow_type,
    language_persistent_arrow_type,
    speech_atom,
    write_language_columns,
)
from spinal.language.v3_dataset import V3Dataset

DATA = "data/chunk-000/file-000.parquet"
TOP = "observation.images.front"


@pytest.fixture
def dataset(tmp_path):
    root = build_dataset(tmp_path / "ds", episode_lengths=(4, 4), fps=10)
    # Columns an older writer left behind, which the language writer must drop.
    table = pq.read_table(root / DATA)
    table = table.append_column("subtask_index", pa.array(np.zeros(8, dtype=np.int64)))
    table = table.append_column("tools", pa.array(["[]"] * 8))
    pq.write_table(table, root / DATA)
    return root


def _rows():
    persistent = {
        0: [
            {
                "role": "assistant",
                "content": "reach",
                "style": "subtask",
                "timestamp": 0.0,
                "camera": None,
                "tool_calls": None,
            },
            {
                "role": "assistant",
                "content": "grasp",
                "style": "subtask",
                "timestamp": float(np.float32(0.2)),
                "camera": None,
                "tool_calls": None,
            },
        ]
    }
    t1 = float(np.float32(0.1))
    events = {
        0: [
            {**speech_atom("On it."), "timestamp": 0.0},
            {
                "role": "user",
                "content": "how many?",
                "style": "vqa",
                "camera": TOP,
                "tool_calls": None,
                "timestamp": t1,
            },
            {
                "role": "assistant",
                "content": '{"count": 1, "label": "cube"}',
                "style": "vqa",
                "camera": TOP,
                "tool_calls": None,
                "timestamp": t1,
            },
        ]
    }
    return persistent, events


def test_round_trip_broadcasts_persistent_and_pins_events_to_their_frame(dataset):
    persistent, events = _rows()
    report = write_language_columns(dataset, persistent, events)
    assert report.frames == 8 and len(report.files_rewritten) == 1
    frames = list(iter_frame_language(dataset))
    ep0 = [f for f in frames if f.episode_index == 0]
    assert all(f.persistent == ep0[0].persistent for f in ep0)
    assert [r["content"] for r in ep0[0].persistent] == ["reach", "grasp"]
    assert ep0[0].events == [{k: v for k, v in events[0][0].items() if k != "timestamp"}]
    assert [(r["role"], r["camera"]) for r in ep0[1].events] == [("assistant", TOP), ("user", TOP)]
    assert ep0[2].events == [] and ep0[3].events == []
    assert all(f.persistent == [] and f.events == [] for f in frames if f.episode_index == 1)


def test_columns_have_the_contract_arrow_types_and_legacy_columns_go(dataset):
    write_language_columns(dataset, *_rows())
    schema = pq.read_schema(dataset / DATA)
    assert schema.field(LANGUAGE_PERSISTENT).type == language_persistent_arrow_type()
    assert schema.field(LANGUAGE_EVENTS).type == language_events_arrow_type()
    assert "subtask_index" not in schema.names and "tools" not in schema.names
    raw = pq.read_table(dataset / DATA).column(LANGUAGE_EVENTS).to_pylist()[0][0]
    assert isinstance(raw["tool_calls"][0], str)  # stored as Arrow JSON; the reader parses it back
    assert json.loads(raw["tool_calls"][0])["function"]["name"] == "say"


def test_info_json_gains_language_features_and_say_while_keeping_user_tools(dataset):
    info_path = dataset / "meta/info.json"
    info = json.loads(info_path.read_text())
    wave = {
        "type": "function",
        "function": {"name": "wave", "parameters": {"type": "object", "properties": {}}},
    }
    info["tools"] = [wave]
    info["features"]["subtask_index"] = {"dtype": "int64", "shape": [1], "names": None}
    info_path.write_text(json.dumps(info))
    write_language_columns(dataset, *_rows())
    info = json.loads(info_path.read_text())
    assert info["features"][LANGUAGE_PERSISTENT] == {"dtype": "language", "shape": [1], "names": None}
    assert info["features"][LANGUAGE_EVENTS]["dtype"] == "language"
    assert "subtask_index" not in info["features"]
    assert [t["function"]["name"] for t in info["tools"]] == ["wave", "say"]


def test_rewrite_with_the_same_rows_leaves_files_untouched(dataset):
    write_language_columns(dataset, *_rows())
    before = (dataset / DATA).read_bytes()
    info_before = (dataset / "meta/info.json").read_bytes()
    report = write_language_columns(dataset, *_rows())
    assert report.files_rewritten == [] and len(report.files_unchanged) == 1
    assert (dataset / DATA).read_bytes() == before and (
        dataset / "meta/info.json"
    ).read_bytes() == info_before
    assert not list(dataset.rglob("*.tmp"))


def test_rewrite_replaces_previous_language_rows(dataset):
    write_language_columns(dataset, *_rows())
    write_language_columns(
        dataset, {1: [{"role": "user", "content": "go", "style": "task_aug", "timestamp": 0.0}]}, {}
    )
    frames = list(iter_frame_language(dataset))
    assert all(f.persistent == [] for f in frames if f.episode_index == 0)
    assert frames[4].persistent[0]["content"] == "go"


def test_event_off_a_frame_timestamp_is_refused_and_nothing_changes(dataset):
    before = (dataset / DATA).read_bytes()
    bad = {0: [{**speech_atom("hi"), "timestamp": 0.15}]}
    with pytest.raises(RowError, match="not on a frame timestamp"):
        write_language_columns(dataset, {}, bad)
    assert (dataset / DATA).read_bytes() == before


def test_misrouted_rows_are_refused(dataset):
    with pytest.raises(RowError, match="belongs in"):
        write_language_columns(
            dataset,
            {0: [{"role": "user", "content": "q", "style": "vqa", "camera": TOP, "timestamp": 0.0}]},
            {},
        )
    with pytest.raises(RowError, match="belongs in"):
        write_language_columns(
            dataset, {}, {0: [{"role": "assistant", "content": "s", "style": "subtask", "timestamp": 0.0}]}
        )


def test_reader_serves_the_lerobot_reference_layout(tmp_path):
    # The synthetic builder mirrors LeRobot's own v3 layout; the reader needs only info.json, data and episodes.
    ds = V3Dataset(build_dataset(tmp_path / "ref", episode_lengths=(3,), cameras=(TOP,)))
    assert ds.camera_keys == [TOP] and ds.episode_indices == [0]
    episode = ds.episode(0)
    assert episode.timestamps.dtype == np.float32 and list(episode.videos) == [TOP]
