"""Annotated datasets stay mergeable: language columns and declared tools survive `spinal dataset merge`."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from spinal.annotate.pipeline import AnnotationPipeline
from spinal.annotate.synthetic import build_dataset
from spinal.dataset.merge import merge_datasets
from spinal.dataset.reader import DatasetReader
from spinal.dataset.validate import validate_dataset
from spinal.language import iter_frame_language
from spinal.language.schema import LANGUAGE_EVENTS, LANGUAGE_PERSISTENT


def test_merging_two_annotated_datasets_keeps_their_language(tmp_path: Path, stub_settings) -> None:
    sources = []
    for name, lengths in (("a", (30,)), ("b", (25, 20))):
        root = build_dataset(tmp_path / name, episode_lengths=lengths, fps=10)
        AnnotationPipeline(root, stub_settings()).run()
        sources.append(root)

    merged = tmp_path / "merged"
    report = merge_datasets(sources, merged)

    assert report.episodes == 3 and report.frames == 75
    assert validate_dataset(merged).ok
    schema = pq.read_schema(DatasetReader(merged).data_files()[0])
    assert (
        schema.field(LANGUAGE_PERSISTENT).type
        == pq.read_schema(DatasetReader(sources[0]).data_files()[0]).field(LANGUAGE_PERSISTENT).type
    )
    assert LANGUAGE_EVENTS in schema.names
    assert DatasetReader(merged).info["tools"] == DatasetReader(sources[0]).info["tools"]
    by_episode = {}
    for frame in iter_frame_language(merged):
        by_episode.setdefault(frame.episode_index, []).append(frame)
    source_b = {}
    for frame in iter_frame_language(sources[1]):
        source_b.setdefault(frame.episode_index, []).append(frame)
    assert [f.persistent for f in by_episode[1]] == [f.persistent for f in source_b[0]]
    assert [f.events for f in by_episode[2]] == [f.events for f in source_b[1]]
