"""The capture ring's safetensors files: exact round trips, hostile files refused, the ring wraps."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from spinal_server.capture import (
    CaptureRecord,
    CaptureRing,
    capture_files,
    load_record,
    read_safetensors,
    save_record,
    write_safetensors,
)
from spinal_server.errors import CaptureError
from spinal_server.replay import replay_directory


def test_safetensors_round_trip_is_exact(tmp_path: Path) -> None:
    tensors = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "b": np.frombuffer(b"\x00\x01\xffbytes", np.uint8),
        "c": np.array([-(2**40)], np.int64),
    }
    write_safetensors(tmp_path / "x.safetensors", tensors, {"k": "v"})
    back, meta = read_safetensors(tmp_path / "x.safetensors")
    assert meta == {"k": "v"}
    for name, arr in tensors.items():
        assert back[name].dtype == arr.dtype and back[name].tobytes() == arr.tobytes()
    # the layout is the standard one: u64 header length, JSON header, data (8-byte aligned header)
    raw = (tmp_path / "x.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    assert size % 8 == 0 and json.loads(raw[8 : 8 + size])["a"]["dtype"] == "F32"


def framed(header: object, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01", "truncated"),
        (struct.pack("<Q", 10**9) + b"{}", "does not fit"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (framed([]), "not a JSON object"),
        (framed({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8), "offsets"),
        (framed({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 2), "offsets"),
        (framed({"t": {"dtype": "Q9", "shape": [1]}}), "invalid header entry"),
    ],
)
def test_hostile_capture_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        read_safetensors(path)


def test_a_safetensors_file_that_is_not_a_capture_is_named(tmp_path: Path) -> None:
    write_safetensors(
        tmp_path / "capture-000000.safetensors", {"x": np.zeros(1, np.float32)}, {"format": "other"}
    )
    with pytest.raises(CaptureError, match="not a spinal capture"):
        load_record(tmp_path / "capture-000000.safetensors")
    with pytest.raises(CaptureError, match="no capture"):
        replay_directory(tmp_path / "empty")


def test_record_round_trip_keeps_request_bytes(tmp_path: Path) -> None:
    record = CaptureRecord(
        b"h" * 27,
        b"\x81\xa1a\x01",
        np.ones((2, 3), np.float32),
        np.zeros((2, 3), np.float32),
        {"seq_id": "5"},
    )
    save_record(tmp_path / "r.safetensors", record)
    back = load_record(tmp_path / "r.safetensors")
    assert back.header == record.header and back.body == record.body and back.metadata["seq_id"] == "5"
    assert np.array_equal(back.chunk_model, record.chunk_model)


def test_ring_wraps_and_lists_oldest_first(tmp_path: Path) -> None:
    ring = CaptureRing(tmp_path, capacity=3)
    for i in range(5):
        ring.submit(
            CaptureRecord(
                b"h" * 27, bytes([i]), np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), {}
            )
        )
    ring.close()
    files = capture_files(tmp_path)
    assert len(files) == 3 and ring.written == 5
    assert [load_record(f).body for f in files] == [b"\x02", b"\x03", b"\x04"]
