"""The messages between the synthetic camera and its render worker: a 4-byte little-endian length + payload.

Requests are float32 joint positions (empty: state unknown); replies are JPEG bytes. No pickle.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

_LENGTH = struct.Struct("<I")
MAX_JOINTS = 32


def read_message(stream: BinaryIO) -> bytes | None:
    """One length-prefixed message, or None at end of stream."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return payload


def write_message(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()
