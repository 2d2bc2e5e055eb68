"""Crash recovery: cut each stream of an unfinished episode back to its last intact record.

The edge daemon calls `recover_recordings(root)` at start-up, before it starts a new writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from spinal.fsutil import fsync_dir
from spinal.recording import _index
from spinal.recording.errors import RecordingError
from spinal.recording.metadata import (
    FRAMES_FILE,
    FRAMES_INDEX_FILE,
    METADATA_FILE,
    EpisodeStatus,
    RecoveryInfo,
    camera_files,
    load_metadata,
    save_metadata,
    utc_now_iso,
)
from spinal.recording.schema import END_OF_STREAM, frames_schema

#: Item checksums are re-read for this many trailing records per stream (earlier ones were fsynced
#: before their index records were written, so only the tail can be torn).
VERIFY_TAIL_RECORDS = 512


@dataclass(frozen=True)
class RecoveryReport:
    """What recovery did to one episode directory."""

    episode_dir: Path
    episode_id: str
    previous_status: str
    status: str
    frame_count: int
    camera_frame_counts: dict[str, int] = field(default_factory=dict)
    truncated_bytes: dict[str, int] = field(default_factory=dict)
    changed: bool = False
    error: str | None = None


def recover_recording(episode_dir: Path) -> RecoveryReport:
    """Repair one episode left `recording` by a crash and mark it `recovered`; other statuses are untouched.

    Raises `CorruptRecordingError` when `episode.json` itself is unusable.
    """
    episode_dir = Path(episode_dir)
    meta = load_metadata(episode_dir)
    previous = meta.status.value
    if meta.status != EpisodeStatus.RECORDING:
        return RecoveryReport(
            episode_dir,
            meta.episode_id,
            previous,
            previous,
            meta.frame_count,
            dict(meta.camera_frame_counts),
        )
    truncated: dict[str, int] = {}
    frame_count, duration, cut = _recover_frames(episode_dir)
    truncated.update(cut)
    camera_counts: dict[str, int] = {}
    for camera in meta.cameras:
        count, last_ts, cut = _recover_camera(episode_dir, camera)
        camera_counts[camera] = count
        truncated.update(cut)
        duration = max(duration, last_ts)
    meta.status = EpisodeStatus.RECOVERED
    meta.frame_count = frame_count
    meta.duration_s = duration
    meta.camera_frame_counts = camera_counts
    meta.ended_at = utc_now_iso()
    meta.recovery = RecoveryInfo(recovered_at=meta.ended_at, truncated_bytes=truncated)
    save_metadata(episode_dir, meta)
    fsync_dir(episode_dir)
    return RecoveryReport(
        episode_dir,
        meta.episode_id,
        previous,
        meta.status.value,
        frame_count,
        camera_counts,
        {k: v for k, v in truncated.items() if v},
        changed=True,
    )


def recover_recordings(root: Path) -> list[RecoveryReport]:
    """Recover every unfinished episode under `root`; a broken one is reported, never raised."""
    reports = []
    root = Path(root)
    if not root.is_dir():
        return reports
    for episode_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if not (episode_dir / METADATA_FILE).exists():
            continue
        try:
            reports.append(recover_recording(episode_dir))
        except (RecordingError, OSError) as exc:
            reports.append(
                RecoveryReport(episode_dir, episode_dir.name, "unknown", "unknown", 0, error=str(exc))
            )
    return reports


def _recover_frames(episode_dir: Path) -> tuple[int, float, dict[str, int]]:
    data_path, index_path = episode_dir / FRAMES_FILE, episode_dir / FRAMES_INDEX_FILE
    schema_bytes = frames_schema().serialize().to_pybytes()
    scan = _scan_or_reset(data_path, index_path, _index.KIND_FRAMES, len(schema_bytes))
    if scan is None or not _schema_is_intact(data_path, scan.prefix_length):
        # Crashed while the episode was being created: start both files afresh (no frames were durable).
        lost = _size(data_path) + _size(index_path)
        _rewrite(data_path, schema_bytes + END_OF_STREAM)
        _rewrite(index_path, _index.pack_header(_index.KIND_FRAMES, len(schema_bytes)))
        return 0, 0.0, {FRAMES_FILE: lost}
    records = _verified(data_path, scan)
    data_end = int(records[-1]["offset"] + records[-1]["length"]) if len(records) else scan.prefix_length
    cut = {
        FRAMES_FILE: _truncate(data_path, data_end, tail=END_OF_STREAM),
        FRAMES_INDEX_FILE: _truncate(index_path, _index.HEADER_SIZE + len(records) * _index.RECORD_SIZE),
    }
    count = int(records["count"].sum()) if len(records) else 0
    duration = _last_frame_timestamp(data_path, records)
    return count, duration, cut


def _recover_camera(episode_dir: Path, camera: str) -> tuple[int, float, dict[str, int]]:
    data_name, index_name = camera_files(camera)
    data_path, index_path = episode_dir / data_name, episode_dir / index_name
    if not data_path.exists():
        data_path.touch()
    scan = _scan_or_reset(data_path, index_path, _index.KIND_CAMERA, 0)
    if scan is None:
        lost = _size(data_path)
        _rewrite(data_path, b"")
        _rewrite(index_path, _index.pack_header(_index.KIND_CAMERA, 0))
        return 0, 0.0, {data_name: lost}
    records = _verified(data_path, scan)
    data_end = int(records[-1]["offset"] + records[-1]["length"]) if len(records) else 0
    cut = {
        data_name: _truncate(data_path, data_end),
        index_name: _truncate(index_path, _index.HEADER_SIZE + len(records) * _index.RECORD_SIZE),
    }
    last_ts = float(records[-1]["timestamp"]) if len(records) else 0.0
    return len(records), last_ts, cut


def _scan_or_reset(data_path: Path, index_path: Path, kind: int, prefix: int) -> _index.IndexScan | None:
    try:
        scan = _index.scan_index(index_path, kind=kind, data_size=_size(data_path))
    except (FileNotFoundError, _index.IndexHeaderError):
        return None
    if scan.prefix_length != prefix or _size(data_path) < prefix:
        return None
    return scan


def _verified(data_path: Path, scan: _index.IndexScan):
    records = scan.records
    start = max(0, len(records) - VERIFY_TAIL_RECORDS)
    good = _index.verify_items(data_path, records, start)
    return records[:good]


def _schema_is_intact(data_path: Path, prefix_length: int) -> bool:
    with open(data_path, "rb") as f:
        head = f.read(prefix_length)
    try:
        return pa.ipc.read_schema(pa.py_buffer(head)).equals(frames_schema())
    except (pa.ArrowInvalid, OSError, ValueError):
        return False


def _last_frame_timestamp(data_path: Path, records) -> float:
    if not len(records):
        return 0.0
    last = records[-1]
    with open(data_path, "rb") as f:
        f.seek(int(last["offset"]))
        data = f.read(int(last["length"]))
    batch = pa.ipc.read_record_batch(pa.ipc.read_message(pa.py_buffer(data)), frames_schema())
    return float(batch.column("timestamp")[-1].as_py())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _truncate(path: Path, size: int, tail: bytes = b"") -> int:
    """Cut `path` to `size` bytes (then append `tail`), durably; returns how many bytes were dropped."""
    before = _size(path)
    with open(path, "r+b") as f:
        f.truncate(size)
        if tail:
            f.seek(size)
            f.write(tail)
        f.flush()
        os.fsync(f.fileno())
    return max(0, before - size)


def _rewrite(path: Path, content: bytes) -> None:
    with open(path, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
