"""COBS byte stuffing and CRC-16/CCITT-FALSE for the host link, in viper so a frame costs microseconds.

Used by spinalfw.link; the host mirror is spinal_edge.mcu.framing; both are checked against tests/vectors.
"""

from array import array

import micropython

_TABLE = array("H", bytearray(512))


def _fill_table():
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        _TABLE[i] = c & 0xFFFF


_fill_table()


@micropython.viper
def crc16(buf: ptr8, start: int, end: int) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of buf[start:end]."""
    table = ptr16(_TABLE)
    c = 0xFFFF
    i = start
    while i < end:
        c = ((c << 8) & 0xFF00) ^ table[((c >> 8) ^ buf[i]) & 0xFF]
        i += 1
    return c


@micropython.viper
def cobs_encode(src: ptr8, n: int, dst: ptr8) -> int:
    """COBS-encode src[0:n] into dst (no trailing 0x00); returns the encoded length (n + 1 for n < 254)."""
    code_pos = 0
    code = 1
    o = 1
    i = 0
    while i < n:
        b = src[i]
        if b == 0:
            dst[code_pos] = code
            code_pos = o
            o += 1
            code = 1
        else:
            dst[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                dst[code_pos] = code
                code_pos = o
                o += 1
                code = 1
        i += 1
    dst[code_pos] = code
    return o


@micropython.viper
def cobs_decode(src: ptr8, n: int, dst: ptr8) -> int:
    """Decode a COBS block src[0:n] (without delimiter) into dst (may equal src); -1 if malformed."""
    i = 0
    o = 0
    while i < n:
        code = src[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            b = src[i]
            if b == 0:
                return -1
            dst[o] = b
            o += 1
            i += 1
        if code != 0xFF and i < n:
            dst[o] = 0
            o += 1
    return o


@micropython.viper
def find_byte(buf: ptr8, start: int, end: int, value: int) -> int:
    """Index of the first `value` in buf[start:end], or -1."""
    i = start
    while i < end:
        if buf[i] == value:
            return i
        i += 1
    return -1


@micropython.viper
def copy_bytes(dst: ptr8, dst_start: int, src: ptr8, src_start: int, n: int):
    """dst[dst_start:dst_start+n] = src[src_start:src_start+n] without allocating a slice."""
    i = 0
    while i < n:
        dst[dst_start + i] = src[src_start + i]
        i += 1
