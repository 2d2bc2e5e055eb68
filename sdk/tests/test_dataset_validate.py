"""`validate` names each thing a LeRobot loader would trip over, once, with where it is."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spinal.dataset import validate_dataset

DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"


def _edit_info(root, change):
    info = json.loads((root / "meta/info.json").read_text())
    change(info)
    (root / "meta/info.json").write_text(json.dumps(info))


def _edit_parquet(path, change):
    table = pq.read_table(path)
    table = change(table)
    pq.write_table(table, path)


def _replace(table, name, values):
    index = table.schema.get_field_index(name)
    return table.set_column(
        index, table.schema.field(index), pa.array(values, table.schema.field(index).type)
    )


def _shift_timestamps(root):
    def change(table):
        ts = table.column("timestamp").to_numpy().copy()
        ep = table.column("episode_index").to_numpy()
        ts[ep == 1] += 0.01
        return _replace(table, "timestamp", ts)

    _edit_parquet(root / DATA, change)


def _bad_task_index(root):
    def change(table):
        task = table.column("task_index").to_numpy().copy()
        task[:5] = 7
        return _replace(table, "task_index", task)

    _edit_parquet(root / DATA, change)


def _index_gap(root):
    def change(table):
        return _replace(table, "index", table.column("index").to_numpy() + (np.arange(len(table)) >= 50))

    _edit_parquet(root / DATA, change)


def _length_mismatch(root):
    def change(table):
        lengths = table.column("length").to_pylist()
        lengths[0] += 1
        return _replace(table, "length", lengths)

    _edit_parquet(root / EPISODES, change)


def _video_moved(episode: int, seconds: float):
    def damage(root):
        def change(table):
            for end in ("from_timestamp", "to_timestamp"):
                column = f"videos/observation.images.wrist/{end}"
                values = table.column(column).to_pylist()
                values[episode] += seconds
                table = _replace(table, column, values)
            return table

        _edit_parquet(root / EPISODES, change)

    return damage


CASES = {
    "info.version": lambda root: _edit_info(root, lambda i: i.update(codebase_version="v2.1")),
    "info.default_feature": lambda root: _edit_info(root, lambda i: i["features"].pop("frame_index")),
    "data.type": lambda root: _edit_info(root, lambda i: i["features"]["action"].update(dtype="float64")),
    "data.timestamp": _shift_timestamps,
    "data.task_index": _bad_task_index,
    "data.index": _index_gap,
    "episodes.length": _length_mismatch,
    "episodes.video_file": lambda root: (
        root / "videos/observation.images.front/chunk-000/file-000.mp4"
    ).unlink(),
    "video.frame_count": _video_moved(2, 1.0),  # past the end of the file
    "video.timestamps": _video_moved(1, 0.01),  # between frames
    "stats.missing": lambda root: (root / "meta/stats.json").unlink(),
    "tasks.unreadable": lambda root: (root / "meta/tasks.parquet").write_bytes(b"PAR1 not really"),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_damage_gives_its_own_clear_violation(converted, tmp_path, code):
    copy = tmp_path / "ds"
    shutil.copytree(converted, copy)
    CASES[code](copy)
    report = validate_dataset(copy)
    codes = [v.code for v in report.violations]
    assert not report.ok
    assert code in codes, [str(v) for v in report.violations]
    assert codes.count(code) <= 2, [str(v) for v in report.violations]  # one message per thing, not per row
    message = next(str(v) for v in report.violations if v.code == code)
    assert len(message) < 400


def test_row_level_problems_are_grouped_per_episode(converted, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(converted, copy)
    _shift_timestamps(copy)
    (violation,) = [v for v in validate_dataset(copy).violations if v.code == "data.timestamp"]
    assert violation.where == "episode 1"
    assert violation.message.startswith("61 rows:")
    assert "frame_index / fps" in violation.message


def test_a_folder_without_a_dataset_is_one_violation(tmp_path):
    report = validate_dataset(tmp_path)
    assert [v.code for v in report.violations] == ["info.unreadable"]
    assert "is missing" in report.violations[0].message
