"""The fixed 27-byte little-endian attachment header `<HBQIqI`, parsed without touching the body.

Travels as the Zenoh attachment of every data-plane message (observations, chunks, events, telemetry).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from spinal.protocol.constants import SCHEMA_VERSION, MsgType
from spinal.protocol.errors import HeaderError

_HEADER = struct.Struct("<HBQIqI")
HEADER_SIZE = _HEADER.size  # 27

_RANGES = {
    "schema_version": (0, 2**16 - 1),
    "msg_type": (0, 2**8 - 1),
    "seq_id": (0, 2**64 - 1),
    "episode_id": (0, 2**32 - 1),
    "client_mono_ns": (-(2**63), 2**63 - 1),
    "session_epoch": (0, 2**32 - 1),
}


@dataclass(frozen=True, slots=True)
class MsgHeader:
    """schema_version u16, msg_type u8, seq_id u64, episode_id u32, client_mono_ns i64, session_epoch u32.

    `client_mono_ns` is the client's monotonic clock, opaque to the server and echoed back (the clock rule).
    """

    schema_version: int = SCHEMA_VERSION
    msg_type: int = MsgType.OBS
    seq_id: int = 0
    episode_id: int = 0
    client_mono_ns: int = 0
    session_epoch: int = 0

    def pack(self) -> bytes:
        """The 27 header bytes; a field outside its wire range raises `HeaderError` naming it."""
        values = (
            self.schema_version,
            int(self.msg_type),
            self.seq_id,
            self.episode_id,
            self.client_mono_ns,
            self.session_epoch,
        )
        for (name, (lo, hi)), value in zip(_RANGES.items(), values, strict=True):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise HeaderError(f"header field {name}={value!r} is outside its wire range [{lo}, {hi}]")
        return _HEADER.pack(*values)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview | None) -> MsgHeader:
        """Parse exactly 27 bytes; anything else raises `HeaderError`."""
        if data is None:
            raise HeaderError("message has no attachment header; expected 27 bytes")
        size = len(data)
        if size != HEADER_SIZE:
            raise HeaderError(f"attachment header must be exactly {HEADER_SIZE} bytes, got {size}")
        return cls(*_HEADER.unpack(bytes(data)))

    @property
    def kind(self) -> MsgType | None:
        """The message type as an enum, or None for a type this version does not know."""
        try:
            return MsgType(self.msg_type)
        except ValueError:
            return None
