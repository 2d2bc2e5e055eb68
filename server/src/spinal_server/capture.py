"""The debug capture ring: the last N request/response pairs as safetensors files, for byte-exact replay.

The worker hands records to a writer thread (never blocking on disk); `spinal-server replay DIR` reads them back.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spinal_server.errors import CaptureError

log = logging.getLogger("spinal_server.capture")

CAPTURE_FORMAT = "spinal-capture/1"
_DTYPES = {"U8": np.uint8, "F32": np.float32, "I64": np.int64, "F64": np.float64, "I32": np.int32}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 1 << 20
_MAX_FILE = 1 << 30


@dataclass
class CaptureRecord:
    """One request (header + body, byte exact) and the chunks the server answered with."""

    header: bytes
    body: bytes
    chunk_model: np.ndarray
    chunk_robot: np.ndarray
    metadata: dict[str, str] = field(default_factory=dict)


# ---- safetensors, written and read by hand (no pickle, no extra dependency) -------------------------


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    header: dict[str, object] = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        arr = np.ascontiguousarray(array)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        data = arr.tobytes()
        header[name] = {
            "dtype": _NAMES[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for blob in blobs:
            fh.write(blob)
    os.replace(tmp, path)  # a reader never sees half a record


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of one file; every size and offset is checked before use."""
    path = Path(path)
    try:
        data = path.read_bytes() if path.stat().st_size <= _MAX_FILE else None
    except OSError as exc:
        raise CaptureError(f"capture file {path} cannot be read: {exc.strerror}") from None
    if data is None:
        raise CaptureError(f"capture file {path} is over {_MAX_FILE} bytes")
    if len(data) < 8:
        raise CaptureError(f"capture file {path} is truncated (no header length)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > _MAX_HEADER or 8 + size > len(data):
        raise CaptureError(f"capture file {path} has a header length {size} that does not fit the file")
    try:
        header = json.loads(data[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CaptureError(f"capture file {path} has a header that is not JSON") from None
    if not isinstance(header, dict):
        raise CaptureError(f"capture file {path} has a header that is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    buffer = memoryview(data)[8 + size :]
    tensors = {}
    for name, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CaptureError(f"capture file {path}: tensor {name!r} has an invalid header entry") from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(buffer) or end - begin != count * dtype.itemsize:
            raise CaptureError(f"capture file {path}: tensor {name!r} offsets do not match its shape")
        tensors[name] = np.frombuffer(buffer[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def save_record(path: Path, record: CaptureRecord) -> None:
    tensors = {
        "request.header": np.frombuffer(record.header, np.uint8),
        "request.body": np.frombuffer(record.body, np.uint8),
        "response.chunk_model": np.asarray(record.chunk_model, np.float32),
        "response.chunk_robot": np.asarray(record.chunk_robot, np.float32),
    }
    write_safetensors(path, tensors, {"format": CAPTURE_FORMAT, **record.metadata})


def load_record(path: Path) -> CaptureRecord:
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != CAPTURE_FORMAT:
        raise CaptureError(f"{path} is not a spinal capture (format {metadata.get('format')!r})")
    try:
        return CaptureRecord(
            header=tensors["request.header"].tobytes(),
            body=tensors["request.body"].tobytes(),
            chunk_model=tensors["response.chunk_model"],
            chunk_robot=tensors["response.chunk_robot"],
            metadata=metadata,
        )
    except KeyError as exc:
        raise CaptureError(f"capture file {path} lacks tensor {exc}") from None


def capture_files(directory: Path) -> list[Path]:
    """The ring's files, oldest request first."""
    files = list(Path(directory).glob("capture-*.safetensors"))

    def index(path: Path) -> int:
        try:
            return int(read_safetensors(path)[1].get("index", "0"))
        except CaptureError:
            return -1

    return sorted(files, key=index)


# ---- the ring ------------------------------------------------------------------------------------


class CaptureRing:
    """Writes records to `capture-<slot>.safetensors`, slot = index mod `capacity`, on its own thread."""

    def __init__(self, directory: Path, capacity: int, *, on_drop=None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self._queue: queue.Queue[CaptureRecord | None] = queue.Queue(maxsize=64)
        self._index = 0
        self._on_drop = on_drop or (lambda: None)
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="spinal-capture", daemon=True)
        self._thread.start()

    def submit(self, record: CaptureRecord) -> None:
        """Queue a record; when the writer is behind the record is dropped and counted, never waited for."""
        record.metadata["index"] = str(self._index)
        record.metadata["slot"] = str(self._index % self.capacity)
        self._index += 1
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._on_drop()

    def flush(self, timeout: float = 5.0) -> None:
        done = threading.Event()
        deadline_thread = threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True)
        deadline_thread.start()
        done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    return
                path = self.directory / f"capture-{int(record.metadata['slot']):06d}.safetensors"
                save_record(path, record)
                self.written += 1
            except OSError as exc:
                log.warning("capture record not written: %s", exc)
                self._on_drop()
            finally:
                self._queue.task_done()
