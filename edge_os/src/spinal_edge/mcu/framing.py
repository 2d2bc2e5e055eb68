"""COBS framing and CRC-16/CCITT-FALSE of the Pi <-> MCU link (firmware/PROTOCOL.md, "Frames").

Used by spinal_edge.mcu.driver; the firmware's spinalfw.framing does the same and both pass tests/vectors.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from spinal_edge.mcu.errors import McuProtocolError

HEADER = struct.Struct("<BH")
HEADER_LEN = HEADER.size
CRC_LEN = 2
MAX_PAYLOAD = 248
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN  # 253: COBS then adds exactly one byte
MAX_ENCODED = MAX_FRAME + 1


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    return binascii.crc_hqx(data, 0xFFFF)


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the output contains no 0x00 (the delimiter is not appended)."""
    out = bytearray(len(data) + len(data) // 254 + 1)
    code_pos, code, o = 0, 1, 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos, code, o = o, 1, o + 1
            continue
        out[o] = b
        o += 1
        code += 1
        if code == 0xFF:
            out[code_pos] = code
            code_pos, code, o = o, 1, o + 1
    out[code_pos] = code
    return bytes(out[:o])


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; raises McuProtocolError on a malformed block."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise McuProtocolError("COBS block contains a zero byte")
        end = i + code
        if end > n:
            raise McuProtocolError("COBS code byte points past the end of the frame")
        chunk = data[i + 1 : end]
        if 0 in chunk:
            raise McuProtocolError("COBS block contains a zero byte")
        out += chunk
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


class FrameCrcError(McuProtocolError):
    """A frame arrived intact in shape but its CRC does not match: bits were flipped on the way."""


@dataclass(frozen=True)
class Frame:
    """A decoded, CRC-checked frame."""

    msg_type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes on the wire for one frame, trailing 0x00 delimiter included."""
    if len(payload) > MAX_PAYLOAD:
        raise McuProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    body = HEADER.pack(msg_type, seq & 0xFFFF) + payload
    return cobs_encode(body + struct.pack("<H", crc16(body))) + b"\x00"


def decode_frame(encoded: bytes) -> Frame:
    """Decode one COBS block (without its delimiter); raises McuProtocolError on a bad block or CRC."""
    if len(encoded) > MAX_ENCODED:
        raise McuProtocolError(f"frame of {len(encoded)} encoded bytes exceeds {MAX_ENCODED}")
    raw = cobs_decode(encoded)
    if len(raw) < HEADER_LEN + CRC_LEN:
        raise McuProtocolError(f"frame of {len(raw)} bytes is shorter than header and CRC")
    body, (crc,) = raw[:-CRC_LEN], struct.unpack("<H", raw[-CRC_LEN:])
    if crc16(body) != crc:
        raise FrameCrcError("frame CRC mismatch")
    msg_type, seq = HEADER.unpack_from(body)
    return Frame(msg_type, seq, bytes(body[HEADER_LEN:]))


class FrameDecoder:
    """Splits a byte stream at 0x00 delimiters into frames; bad frames are counted and dropped, never returned."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.crc_errors = 0
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self._buf += data
        while True:
            end = self._buf.find(b"\x00")
            if end < 0:
                if len(self._buf) > MAX_ENCODED:
                    # No delimiter in sight: noise or a torn frame. Drop it and wait for the next delimiter.
                    self._buf.clear()
                    self._overflow = True
                return frames
            block = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._overflow:
                self._overflow = False
                self.bad_frames += 1
                continue
            if not block:
                continue
            try:
                frames.append(decode_frame(block))
            except FrameCrcError:
                self.crc_errors += 1
            except McuProtocolError:
                self.bad_frames += 1

    def reset(self) -> None:
        self._buf.clear()
        self._overflow = False
