"""`EpisodeReader`: reads a recorded episode's frames and camera JPEGs with bounded memory.

Used by the dataset converter and tools; every damaged or truncated input raises `CorruptRecordingError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from spinal.recording import _index
from spinal.recording.errors import CorruptRecordingError
from spinal.recording.metadata import (
    FRAMES_FILE,
    FRAMES_INDEX_FILE,
    EpisodeMetadata,
    EpisodeStatus,
    camera_files,
    load_metadata,
)
from spinal.recording.schema import (
    ACTION,
    FRAME_INDEX,
    MODE,
    SOURCE_EPISODE,
    SOURCE_SEQ,
    SOURCE_SESSION,
    STATE,
    TIMESTAMP,
    ActionSource,
    check_schema,
)

_JPEG_SOI = b"\xff\xd8"


@dataclass(frozen=True)
class Frame:
    """One control-loop frame as recorded."""

    frame_index: int
    timestamp: float
    state: np.ndarray
    action: np.ndarray
    mode: str
    source: ActionSource | None


@dataclass(frozen=True)
class CameraFrame:
    """One camera JPEG as captured, with its camera frame index and time since the episode start."""

    frame_index: int
    timestamp: float
    jpeg: bytes


@dataclass(frozen=True)
class CameraIndex:
    """Where each JPEG of one camera lies in its MJPEG file (parallel arrays)."""

    frame_index: np.ndarray
    timestamp: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    crc: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)


class EpisodeReader:
    """Opens one episode directory; frames and JPEGs are read lazily, one batch or image at a time.

    An episode that is still `recording` (or crashed and was not recovered) is read up to its last
    durable record; for every other status a torn or inconsistent file is an error.
    """

    def __init__(self, episode_dir: Path) -> None:
        self.episode_dir = Path(episode_dir)
        self.metadata: EpisodeMetadata = load_metadata(self.episode_dir)
        self._strict = self.metadata.status != EpisodeStatus.RECORDING
        self._frames_path = self.episode_dir / FRAMES_FILE
        frames_scan = self._scan(self._frames_path, self.episode_dir / FRAMES_INDEX_FILE, _index.KIND_FRAMES)
        self._frame_records = frames_scan.records
        self._schema = self._read_schema(frames_scan.prefix_length)
        self.frame_count = int(self._frame_records["count"].sum()) if len(self._frame_records) else 0
        self._camera_indexes: dict[str, CameraIndex] = {}
        if self._strict and self.frame_count != self.metadata.frame_count:
            raise self._corrupt(
                f"holds {self.frame_count} frames but episode.json says {self.metadata.frame_count}; "
                "a file is truncated (pull the episode again)"
            )

    # -- frames -------------------------------------------------------------------------------------

    @property
    def cameras(self) -> list[str]:
        return list(self.metadata.cameras)

    def iter_batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the frames as Arrow record batches, in order, each checked against its checksum."""
        names = (len(self.metadata.state_names), len(self.metadata.action_names))
        with self._open(self._frames_path) as f:
            for i, rec in enumerate(self._frame_records):
                data = self._read_item(f, rec, FRAMES_FILE, i)
                try:
                    message = pa.ipc.read_message(pa.py_buffer(data))
                    batch = pa.ipc.read_record_batch(message, self._schema)
                    batch.validate(full=True)
                except (pa.ArrowInvalid, OSError, ValueError) as exc:
                    raise self._corrupt(
                        f"batch {i} of {FRAMES_FILE} is not a valid Arrow batch ({exc})"
                    ) from exc
                if batch.num_rows != int(rec["count"]):
                    raise self._corrupt(f"batch {i} of {FRAMES_FILE} has the wrong number of rows")
                first = batch.column(FRAME_INDEX)[0].as_py()
                if first != int(rec["index"]):
                    raise self._corrupt(
                        f"batch {i} of {FRAMES_FILE} starts at frame {first}, not {rec['index']}"
                    )
                self._check_widths(batch, i, names)
                yield batch

    def iter_frames(self) -> Iterator[Frame]:
        """Yield frames one by one (convenient; `iter_batches` is faster for bulk work)."""
        n_state, n_action = len(self.metadata.state_names), len(self.metadata.action_names)
        for batch in self.iter_batches():
            n = batch.num_rows
            state = batch.column(STATE).flatten().to_numpy().reshape(n, n_state)
            action = batch.column(ACTION).flatten().to_numpy().reshape(n, n_action)
            ts = batch.column(TIMESTAMP).to_numpy()
            idx = batch.column(FRAME_INDEX).to_numpy()
            modes = batch.column(MODE).to_pylist()
            sessions = batch.column(SOURCE_SESSION).to_pylist()
            seqs = batch.column(SOURCE_SEQ).to_pylist()
            episodes = batch.column(SOURCE_EPISODE).to_pylist()
            for r in range(n):
                source = None
                if sessions[r] is not None and seqs[r] is not None and episodes[r] is not None:
                    source = ActionSource(sessions[r], seqs[r], episodes[r])
                yield Frame(int(idx[r]), float(ts[r]), state[r], action[r], modes[r], source)

    def read_frames(self) -> pa.Table:
        """All frames as one table (memory grows with the episode; prefer `iter_batches`)."""
        return pa.Table.from_batches(list(self.iter_batches()), schema=self._schema)

    # -- cameras ------------------------------------------------------------------------------------

    def camera_index(self, camera: str) -> CameraIndex:
        """The verified index of one camera (small: 40 bytes per JPEG)."""
        if camera not in self.metadata.cameras:
            raise KeyError(f"camera {camera!r} is not in episode {self.metadata.episode_id} ({self.cameras})")
        cached = self._camera_indexes.get(camera)
        if cached is not None:
            return cached
        data_name, index_name = camera_files(camera)
        scan = self._scan(self.episode_dir / data_name, self.episode_dir / index_name, _index.KIND_CAMERA)
        recs = scan.records
        if self._strict and len(recs) != self.metadata.camera_frame_counts.get(camera, len(recs)):
            raise self._corrupt(
                f"camera {camera} holds {len(recs)} frames but episode.json says "
                f"{self.metadata.camera_frame_counts[camera]}; a file is truncated (pull the episode again)"
            )
        index = CameraIndex(
            frame_index=recs["index"].astype(np.int64),
            timestamp=recs["timestamp"].astype(np.float64),
            offset=recs["offset"].astype(np.int64),
            length=recs["length"].astype(np.int64),
            crc=recs["crc"].astype(np.uint32),
        )
        self._camera_indexes[camera] = index
        return index

    def iter_camera_frames(
        self, camera: str, positions: Sequence[int] | None = None
    ) -> Iterator[CameraFrame]:
        """Yield the camera's JPEGs in order (or at the given index positions), one in memory at a time."""
        index = self.camera_index(camera)
        data_name, _ = camera_files(camera)
        order = range(len(index)) if positions is None else positions
        with self._open(self.episode_dir / data_name) as f:
            for pos in order:
                offset, length = int(index.offset[pos]), int(index.length[pos])
                f.seek(offset)
                jpeg = f.read(length)
                if len(jpeg) != length or zlib.crc32(jpeg) != int(index.crc[pos]) or jpeg[:2] != _JPEG_SOI:
                    raise self._corrupt(f"JPEG {pos} of {data_name} is damaged (checksum mismatch)")
                yield CameraFrame(int(index.frame_index[pos]), float(index.timestamp[pos]), jpeg)

    def read_camera_frame(self, camera: str, position: int) -> CameraFrame:
        """One JPEG by its position in the camera's index."""
        return next(self.iter_camera_frames(camera, [position]))

    # -- internals ----------------------------------------------------------------------------------

    def _corrupt(self, what: str) -> CorruptRecordingError:
        return CorruptRecordingError(f"episode {self.metadata.episode_id} ({self.episode_dir}): {what}")

    def _open(self, path: Path):
        try:
            return open(path, "rb")
        except OSError as exc:
            raise self._corrupt(f"cannot open {path.name}: {exc.strerror}") from exc

    def _scan(self, data_path: Path, index_path: Path, kind: int) -> _index.IndexScan:
        try:
            data_size = data_path.stat().st_size
            scan = _index.scan_index(index_path, kind=kind, data_size=data_size)
        except FileNotFoundError as exc:
            raise self._corrupt(f"{Path(exc.filename).name} is missing") from None
        except _index.IndexHeaderError as exc:
            raise self._corrupt(f"{exc}; the file is damaged") from None
        if scan.stop_reason is not None and self._strict:
            raise self._corrupt(
                f"{scan.stop_reason}; the file is truncated or damaged (pull it again, or recover it on the device)"
            )
        if self._strict and scan.data_end < data_size and kind == _index.KIND_CAMERA:
            raise self._corrupt(
                f"{data_path.name} has {data_size - scan.data_end} bytes no index record covers"
            )
        return scan

    def _read_schema(self, prefix_length: int) -> pa.Schema:
        with self._open(self._frames_path) as f:
            head = f.read(prefix_length)
        try:
            schema = pa.ipc.read_schema(pa.py_buffer(head))
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            raise self._corrupt(f"{FRAMES_FILE} does not start with an Arrow schema ({exc})") from exc
        problem = check_schema(schema)
        if problem:
            raise self._corrupt(f"{FRAMES_FILE}: {problem}")
        return schema

    def _read_item(self, f, rec: np.void, name: str, i: int) -> bytes:
        f.seek(int(rec["offset"]))
        data = f.read(int(rec["length"]))
        if len(data) != int(rec["length"]) or zlib.crc32(data) != int(rec["crc"]):
            raise self._corrupt(f"record {i} of {name} fails its checksum; the file is damaged")
        return data

    def _check_widths(self, batch: pa.RecordBatch, i: int, widths: tuple[int, int]) -> None:
        for column, width in zip((STATE, ACTION), widths, strict=True):
            lengths = batch.column(column).value_lengths().to_numpy(zero_copy_only=False)
            if len(lengths) and (lengths.min() != width or lengths.max() != width):
                raise self._corrupt(
                    f"batch {i} of {FRAMES_FILE}: {column} rows do not all have {width} values"
                )
