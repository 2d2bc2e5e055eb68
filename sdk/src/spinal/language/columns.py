"""Writing the two language columns into a v3 dataset's data files, and reading them back per frame.

The writer is what `spinal annotate` ends with; the reader serves `spinal render` and training loaders.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spinal.fsutil import write_bytes_atomic
from spinal.language.errors import RowError
from spinal.language.rows import Row, normalize_rows, row_sort_key, validate_row
from spinal.language.schema import (
    EVENT_ROW_FIELDS,
    LANGUAGE_COLUMNS,
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    PERSISTENT_ROW_FIELDS,
    json_arrow_type,
    language_event_row_arrow_type,
    language_feature_info,
    language_persistent_row_arrow_type,
)
from spinal.language.tools import merge_default_tools
from spinal.language.v3_dataset import V3Dataset

# Columns an older subtask mechanism or a legacy writer left behind; the language columns replace them.
LEGACY_COLUMNS = ("subtask_index", "tools")


@dataclass
class WriteReport:
    """What a write did: files rewritten or left as they were, frames and rows written."""

    files_rewritten: list[Path] = field(default_factory=list)
    files_unchanged: list[Path] = field(default_factory=list)
    frames: int = 0
    persistent_rows: int = 0
    event_rows: int = 0


def _frame_key(t: float) -> bytes:
    # Event times must be the parquet frame timestamps exactly; comparing float32 bits makes that literal.
    return np.float32(t).tobytes()


def _struct_array(rows: Sequence[Row], fields: Sequence[str], row_type: pa.StructType) -> pa.StructArray:
    children: list[pa.Array] = []
    for name in fields:
        ftype = row_type.field(name).type
        if name == "tool_calls":
            offsets = [0]
            texts: list[str] = []
            valid: list[bool] = []
            for row in rows:
                calls = row.get("tool_calls")
                valid.append(calls is not None)
                for call in calls or []:
                    texts.append(call if isinstance(call, str) else json.dumps(call, separators=(",", ":")))
                offsets.append(len(texts))
            storage = pa.array(texts, pa.string())
            elements = (
                storage
                if json_arrow_type() == pa.string()
                else pa.ExtensionArray.from_storage(json_arrow_type(), storage)
            )
            mask = pa.array([not v for v in valid], pa.bool_())
            children.append(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), elements, mask=mask))
        elif name == "timestamp":
            children.append(pa.array([float(r["timestamp"]) for r in rows], pa.float32()))
        else:
            children.append(pa.array([r.get(name) for r in rows], ftype))
    return pa.StructArray.from_arrays(children, fields=list(row_type))


def _list_column(values: pa.StructArray, counts: Sequence[int]) -> pa.ListArray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _prepare_episode(
    episode: int, persistent: Sequence[Row], events: Sequence[Row], frame_keys: set[bytes]
) -> tuple[list[Row], dict[bytes, list[Row]]]:
    p_rows = sorted(normalize_rows(persistent), key=row_sort_key)
    for row in p_rows:
        validate_row(row, LANGUAGE_PERSISTENT)
    buckets: dict[bytes, list[Row]] = defaultdict(list)
    for row in normalize_rows(events):
        ts = row.get("timestamp")
        if not isinstance(ts, int | float):
            raise RowError(f"Episode {episode}: an event row needs the timestamp of the frame it sits on.")
        key = _frame_key(ts)
        if key not in frame_keys:
            raise RowError(
                f"Episode {episode}: event at t={ts!r} is not on a frame timestamp; use the exact parquet timestamp."
            )
        event = {k: v for k, v in row.items() if k != "timestamp"}
        validate_row(event, LANGUAGE_EVENTS)
        buckets[key].append(event)
    for bucket in buckets.values():
        bucket.sort(key=lambda r: (r.get("style") or "", r.get("role") or "", r.get("camera") or ""))
    return p_rows, buckets


def _language_table(
    table: pa.Table, annotations: Mapping[int, tuple[list[Row], dict[bytes, list[Row]]]]
) -> tuple[pa.Array, pa.Array, int, int]:
    episodes = table["episode_index"].to_numpy()
    stamps = table["timestamp"].to_numpy().astype(np.float32)
    p_type, e_type = language_persistent_row_arrow_type(), language_event_row_arrow_type()
    p_values: list[Row] = []
    p_counts: list[int] = []
    e_values: list[Row] = []
    e_counts: list[int] = []
    for ep, ts in zip(episodes.tolist(), stamps, strict=True):
        p_rows, buckets = annotations.get(int(ep), ([], {}))
        p_values.extend(p_rows)
        p_counts.append(len(p_rows))
        bucket = buckets.get(ts.tobytes(), [])
        e_values.extend(bucket)
        e_counts.append(len(bucket))
    persistent = _list_column(_struct_array(p_values, PERSISTENT_ROW_FIELDS, p_type), p_counts)
    events = _list_column(_struct_array(e_values, EVENT_ROW_FIELDS, e_type), e_counts)
    return persistent, events, len(p_values), len(e_values)


def write_language_columns(
    root: str | Path,
    persistent: Mapping[int, Sequence[Row]],
    events: Mapping[int, Sequence[Row]],
) -> WriteReport:
    """Set both language columns on every frame from per-episode rows, replacing what was there.

    Persistent rows are broadcast to every frame of their episode; event rows (each with the `timestamp` of
    its frame) land only on that frame. Each data file is rewritten atomically, and only when its content
    changes, so a rerun with the same rows leaves the dataset byte-for-byte as it was. info.json gains the
    language features and the `say` tool last.
    """
    dataset = V3Dataset(root)
    annotations: dict[int, tuple[list[Row], dict[bytes, list[Row]]]] = {}
    for ep in sorted(set(persistent) | set(events)):
        frames = dataset.episode(int(ep))
        keys = {t.tobytes() for t in frames.timestamps}
        annotations[int(ep)] = _prepare_episode(int(ep), persistent.get(ep, []), events.get(ep, []), keys)
    report = WriteReport()
    for path in dataset.data_files():
        existing = pq.read_table(path)
        base = existing.drop_columns(
            [c for c in (*LANGUAGE_COLUMNS, *LEGACY_COLUMNS) if c in existing.column_names]
        )
        p_col, e_col, n_p, n_e = _language_table(base, annotations)
        table = base.append_column(pa.field(LANGUAGE_PERSISTENT, p_col.type), p_col)
        table = table.append_column(pa.field(LANGUAGE_EVENTS, e_col.type), e_col)
        table = table.replace_schema_metadata(existing.schema.metadata)
        report.frames += table.num_rows
        report.persistent_rows += n_p
        report.event_rows += n_e
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        # Compare what would be on disk with what is: an unchanged file is not rewritten (idempotent reruns).
        if pq.read_table(io.BytesIO(buffer.getvalue())).equals(existing, check_metadata=True):
            report.files_unchanged.append(path)
            continue
        write_bytes_atomic(path, buffer.getvalue(), make_parents=True)
        report.files_rewritten.append(path)
    sync_language_info(dataset)
    return report


def sync_language_info(dataset: V3Dataset) -> None:
    """Make info.json declare both language features and the `say` tool (user-declared tools are kept)."""
    info = json.loads(json.dumps(dataset.info))
    features = info["features"]
    for legacy in LEGACY_COLUMNS:
        features.pop(legacy, None)
    features.update(language_feature_info())
    info["tools"] = merge_default_tools(info.get("tools"))
    if info != dataset.info:
        dataset.write_info(info)


@dataclass(frozen=True)
class FrameLanguage:
    """The language rows on one frame, as plain dicts (tool calls parsed back into objects)."""

    index: int
    episode_index: int
    frame_index: int
    timestamp: float
    persistent: list[Row]
    events: list[Row]


def has_language_columns(root: str | Path) -> bool:
    """True when the dataset's first data file carries both language columns."""
    names = set(pq.read_schema(V3Dataset(root).data_files()[0]).names)
    return all(c in names for c in LANGUAGE_COLUMNS)


def iter_frame_language(root: str | Path, *, episodes: set[int] | None = None) -> Iterator[FrameLanguage]:
    """Every frame's language rows in dataset order (optionally only some episodes)."""
    dataset = V3Dataset(root)
    for path in dataset.data_files():
        names = set(pq.read_schema(path).names)
        wanted = ["index", "episode_index", "frame_index", "timestamp"]
        cols = [c for c in wanted if c in names] + [c for c in LANGUAGE_COLUMNS if c in names]
        table = pq.read_table(path, columns=cols)
        if episodes is not None:
            mask = np.isin(table["episode_index"].to_numpy(), sorted(episodes))
            table = table.filter(pa.array(mask))
        data: dict[str, list[Any]] = {c: table[c].to_pylist() for c in cols}
        n = table.num_rows
        for i in range(n):
            yield FrameLanguage(
                index=int(data["index"][i]) if "index" in data else i,
                episode_index=int(data["episode_index"][i]),
                frame_index=int(data["frame_index"][i]) if "frame_index" in data else i,
                timestamp=float(data["timestamp"][i]),
                persistent=normalize_rows(data[LANGUAGE_PERSISTENT][i])
                if LANGUAGE_PERSISTENT in data
                else [],
                events=normalize_rows(data[LANGUAGE_EVENTS][i]) if LANGUAGE_EVENTS in data else [],
            )
