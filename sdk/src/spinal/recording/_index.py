"""The binary index that sits next to every append-only stream of an episode (frames and cameras).

A 16-byte header, then one 40-byte record per stored item (an Arrow record batch or one JPEG), each with a
CRC of its own bytes and a CRC of the item, so a torn or zero-filled tail is recognised and cut off.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"SPNLIDX1"
KIND_FRAMES = 1
KIND_CAMERA = 2

HEADER = struct.Struct("<8sII")  # magic, kind, prefix length of the data file (Arrow schema message)
# first item index, first timestamp (s), offset in data file, length, item count, item CRC32, record CRC32
RECORD = struct.Struct("<QdQIIII")
RECORD_SIZE = RECORD.size
HEADER_SIZE = HEADER.size
_RECORD_BODY = RECORD_SIZE - 4

RECORD_DTYPE = np.dtype(
    [
        ("index", "<u8"),
        ("timestamp", "<f8"),
        ("offset", "<u8"),
        ("length", "<u4"),
        ("count", "<u4"),
        ("crc", "<u4"),
        ("record_crc", "<u4"),
    ]
)
assert RECORD_DTYPE.itemsize == RECORD_SIZE


def pack_header(kind: int, prefix_length: int) -> bytes:
    return HEADER.pack(MAGIC, kind, prefix_length)


def pack_record(index: int, timestamp: float, offset: int, length: int, count: int, crc: int) -> bytes:
    body = RECORD.pack(index, timestamp, offset, length, count, crc, 0)[:_RECORD_BODY]
    return body + struct.pack("<I", zlib.crc32(body))


@dataclass(frozen=True)
class IndexScan:
    """What a scan of an index file found: its header and the records that passed every check."""

    kind: int
    prefix_length: int
    records: np.ndarray  # RECORD_DTYPE, only the valid prefix
    file_size: int
    #: Why the scan stopped before the end of the file, or None when every byte was a valid record.
    stop_reason: str | None

    @property
    def valid_size(self) -> int:
        return HEADER_SIZE + len(self.records) * RECORD_SIZE

    @property
    def data_end(self) -> int:
        if len(self.records) == 0:
            return self.prefix_length
        last = self.records[-1]
        return int(last["offset"]) + int(last["length"])


class IndexHeaderError(Exception):
    """The index header is missing or not a spinal index (internal; mapped by callers)."""


def scan_index(path: Path, *, kind: int, data_size: int) -> IndexScan:
    """Read an index and keep the longest prefix of records that are intact and point inside the data.

    Records must be contiguous in the data file and in item numbering; the first bad record ends the prefix.
    Item CRCs are not checked here (that needs the data bytes); see `verify_items`.
    """
    raw = path.read_bytes()
    if len(raw) < HEADER_SIZE:
        raise IndexHeaderError(f"{path.name} is {len(raw)} bytes, shorter than its {HEADER_SIZE}-byte header")
    magic, found_kind, prefix_length = HEADER.unpack_from(raw)
    if magic != MAGIC or found_kind != kind:
        raise IndexHeaderError(f"{path.name} does not start with a spinal index header of kind {kind}")
    body = raw[HEADER_SIZE:]
    whole = len(body) // RECORD_SIZE
    records = np.frombuffer(body[: whole * RECORD_SIZE], dtype=RECORD_DTYPE)
    stop_reason = None
    expected_offset = prefix_length
    expected_index = None
    good = 0
    for i in range(whole):
        start = i * RECORD_SIZE
        chunk = body[start : start + RECORD_SIZE]
        (stored_crc,) = struct.unpack_from("<I", chunk, _RECORD_BODY)
        if zlib.crc32(chunk[:_RECORD_BODY]) != stored_crc:
            stop_reason = f"record {i} of {path.name} fails its checksum"
            break
        rec = records[i]
        offset, length, count = int(rec["offset"]), int(rec["length"]), int(rec["count"])
        if offset != expected_offset or length == 0 or count == 0:
            stop_reason = f"record {i} of {path.name} is not contiguous with the one before"
            break
        if expected_index is not None and int(rec["index"]) != expected_index:
            stop_reason = f"record {i} of {path.name} skips item numbers"
            break
        if offset + length > data_size:
            stop_reason = f"record {i} of {path.name} points past the end of its data file"
            break
        expected_offset = offset + length
        expected_index = int(rec["index"]) + count
        good += 1
    if stop_reason is None and len(body) % RECORD_SIZE:
        stop_reason = f"{path.name} ends with a partial record ({len(body) % RECORD_SIZE} bytes)"
    return IndexScan(kind, prefix_length, records[:good].copy(), len(raw), stop_reason)


def verify_items(data_path: Path, records: np.ndarray, start: int = 0) -> int:
    """Check item CRCs from record `start` on; return how many records (from 0) are intact."""
    with open(data_path, "rb") as f:
        for i in range(start, len(records)):
            rec = records[i]
            f.seek(int(rec["offset"]))
            data = f.read(int(rec["length"]))
            if len(data) != int(rec["length"]) or zlib.crc32(data) != int(rec["crc"]):
                return i
    return len(records)
