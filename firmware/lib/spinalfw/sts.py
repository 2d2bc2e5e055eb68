"""Feetech STS/SCS servo-bus driver (STS3215 memory table): ping, read/write, sync write, sync read.

Used by spinalfw.app over an injected bus object with `send(buf, n)` and `recv(buf, n, timeout_us) -> int`;
the hot-path helpers (SyncWrite, SyncRead) reuse buffers built once so the servo loop allocates nothing.
"""

import micropython
from micropython import const

# Instructions
INST_PING = const(0x01)
INST_READ = const(0x02)
INST_WRITE = const(0x03)
INST_REG_WRITE = const(0x04)
INST_ACTION = const(0x05)
INST_SYNC_READ = const(0x82)
INST_SYNC_WRITE = const(0x83)
BROADCAST_ID = const(0xFE)

# STS3215 memory table (EPROM below 40, SRAM from 40); two-byte values are little-endian.
REG_FIRMWARE_MAJOR = const(0)
REG_FIRMWARE_MINOR = const(1)
REG_MODEL_NUMBER = const(3)
REG_ID = const(5)
REG_BAUD_RATE = const(6)
REG_RETURN_DELAY = const(7)
REG_RESPONSE_LEVEL = const(8)
REG_MIN_ANGLE_LIMIT = const(9)
REG_MAX_ANGLE_LIMIT = const(11)
REG_MAX_TEMPERATURE = const(13)
REG_MAX_VOLTAGE = const(14)
REG_MIN_VOLTAGE = const(15)
REG_MAX_TORQUE = const(16)
REG_HOMING_OFFSET = const(31)
REG_OPERATING_MODE = const(33)
REG_TORQUE_ENABLE = const(40)
REG_ACCELERATION = const(41)
REG_GOAL_POSITION = const(42)
REG_GOAL_TIME = const(44)
REG_GOAL_SPEED = const(46)
REG_TORQUE_LIMIT = const(48)
REG_LOCK = const(55)
REG_PRESENT_POSITION = const(56)
REG_PRESENT_SPEED = const(58)
REG_PRESENT_LOAD = const(60)
REG_PRESENT_VOLTAGE = const(62)
REG_PRESENT_TEMPERATURE = const(63)
REG_STATUS = const(65)
REG_MOVING = const(66)
REG_PRESENT_CURRENT = const(69)

# The block the servo loop reads every tick: position .. moving (56..66).
FEEDBACK_ADDR = const(56)
FEEDBACK_LEN = const(11)

# Error bits of a status packet
ERRBIT_VOLTAGE = const(0x01)
ERRBIT_SENSOR = const(0x02)
ERRBIT_OVERHEAT = const(0x04)
ERRBIT_OVERCURRENT = const(0x08)
ERRBIT_OVERLOAD = const(0x20)

_MAX_PACKET = const(160)
_STATUS_OVERHEAD = const(6)  # FF FF id len err .. chk


@micropython.viper
def checksum(buf: ptr8, start: int, end: int) -> int:
    """Feetech checksum: ~(sum of id..last parameter) & 0xFF over buf[start:end]."""
    s = 0
    i = start
    while i < end:
        s += buf[i]
        i += 1
    return (~s) & 0xFF


def sign_magnitude(value, sign_bit):
    """Decode a Feetech sign-magnitude register value (speed: bit 15, load: bit 10)."""
    mask = 1 << sign_bit
    if value & mask:
        return -(value & (mask - 1))
    return value


class StsBus:
    """One half-duplex servo bus. Cold-path calls (ping/read/write) are for discovery and configuration."""

    def __init__(self, port, timeout_us=3000):
        self.port = port
        self.timeout_us = timeout_us
        self.tx = bytearray(_MAX_PACKET)
        self.rx = bytearray(_MAX_PACKET)
        self.timeouts = 0
        self.checksum_errors = 0
        self.last_error = 0

    def _send(self, sid, inst, params, nparams):
        tx = self.tx
        tx[0] = 0xFF
        tx[1] = 0xFF
        tx[2] = sid
        tx[3] = nparams + 2
        tx[4] = inst
        for i in range(nparams):
            tx[5 + i] = params[i]
        tx[5 + nparams] = checksum(tx, 2, 5 + nparams)
        self.port.send(tx, 6 + nparams)

    def _status(self, sid, nparams):
        """Receive one status packet with nparams data bytes from sid; returns True and sets last_error."""
        want = _STATUS_OVERHEAD + nparams
        got = self.port.recv(self.rx, want, self.timeout_us)
        if got < want:
            self.timeouts += 1
            return False
        rx = self.rx
        if rx[0] != 0xFF or rx[1] != 0xFF or rx[2] != sid or rx[3] != nparams + 2:
            self.checksum_errors += 1
            return False
        if checksum(rx, 2, want - 1) != rx[want - 1]:
            self.checksum_errors += 1
            return False
        self.last_error = rx[4]
        return True

    def ping(self, sid):
        self._send(sid, INST_PING, b"", 0)
        return self._status(sid, 0)

    def read(self, sid, addr, n):
        """Read n bytes at addr; returns bytes or None."""
        self._send(sid, INST_READ, bytes((addr, n)), 2)
        if not self._status(sid, n):
            return None
        return bytes(self.rx[5 : 5 + n])

    def read_u16(self, sid, addr):
        data = self.read(sid, addr, 2)
        return None if data is None else data[0] | (data[1] << 8)

    def write(self, sid, addr, data):
        """Write data at addr and wait for the acknowledgement (no reply expected on broadcast)."""
        params = bytearray(1 + len(data))
        params[0] = addr
        params[1:] = data
        self._send(sid, INST_WRITE, params, len(params))
        if sid == BROADCAST_ID:
            return True
        return self._status(sid, 0)

    def write_u8(self, sid, addr, value):
        return self.write(sid, addr, bytes((value & 0xFF,)))

    def write_u16(self, sid, addr, value):
        return self.write(sid, addr, bytes((value & 0xFF, (value >> 8) & 0xFF)))

    def scan(self, first, last, attempts=2):
        """Ids in first..last that answer a ping (each asked up to `attempts` times), in order."""
        found = []
        for sid in range(first, last + 1):
            for _ in range(attempts):
                if self.ping(sid):
                    found.append(sid)
                    break
        return found


class SyncWrite:
    """A prepared SYNC WRITE of one `width`-byte register to a fixed list of ids; `set()` then `send()`."""

    def __init__(self, bus, ids, addr, width):
        self.bus = bus
        self.n = len(ids)
        self.width = width
        self.length = 8 + (width + 1) * self.n
        buf = bytearray(self.length)
        buf[0] = 0xFF
        buf[1] = 0xFF
        buf[2] = BROADCAST_ID
        buf[3] = (width + 1) * self.n + 4
        buf[4] = INST_SYNC_WRITE
        buf[5] = addr
        buf[6] = width
        for i in range(self.n):
            buf[7 + i * (width + 1)] = ids[i]
        self.buf = buf

    def set_u16(self, index, value):
        o = 8 + index * (self.width + 1)
        self.buf[o] = value & 0xFF
        self.buf[o + 1] = (value >> 8) & 0xFF

    def set_u8(self, index, value):
        self.buf[8 + index * (self.width + 1)] = value & 0xFF

    def send(self):
        buf = self.buf
        last = self.length - 1
        buf[last] = checksum(buf, 2, last)
        self.bus.port.send(buf, self.length)


class SyncRead:
    """A prepared SYNC READ of `width` bytes at `addr` from a fixed list of ids.

    After `transact()`, `ok[i]` says whether servo i answered with a valid packet, `errors[i]` holds its error
    byte and `data[i*width : (i+1)*width]` its bytes (left unchanged when it did not answer).
    """

    def __init__(self, bus, ids, addr, width):
        self.bus = bus
        self.n = len(ids)
        self.width = width
        self.request_len = 8 + self.n
        req = bytearray(self.request_len)
        req[0] = 0xFF
        req[1] = 0xFF
        req[2] = BROADCAST_ID
        req[3] = self.n + 4
        req[4] = INST_SYNC_READ
        req[5] = addr
        req[6] = width
        for i in range(self.n):
            req[7 + i] = ids[i]
        req[self.request_len - 1] = checksum(req, 2, self.request_len - 1)
        self.request = req
        self.packet_len = _STATUS_OVERHEAD + width
        self.expected = self.packet_len * self.n
        self.rx = bytearray(self.expected + 16)
        self.data = bytearray(width * self.n)
        self.ok = bytearray(self.n)
        self.errors = bytearray(self.n)
        self.index_of = bytearray(256)  # id -> index + 1
        for i in range(self.n):
            self.index_of[ids[i]] = i + 1

    def transact(self):
        """Send the request and parse the answers; returns how many servos answered."""
        bus = self.bus
        bus.port.send(self.request, self.request_len)
        got = bus.port.recv(self.rx, self.expected, bus.timeout_us)
        ok = self.ok
        for i in range(self.n):
            ok[i] = 0
        answered = _parse_status_packets(
            self.rx, got, self.index_of, self.width, self.data, ok, self.errors
        )
        if answered < self.n:
            bus.timeouts += 1
        return answered

    def u16(self, index, offset):
        o = index * self.width + offset
        return self.data[o] | (self.data[o + 1] << 8)

    def u8(self, index, offset):
        return self.data[index * self.width + offset]


@micropython.viper
def _parse_status_packets(
    rx: ptr8, got: int, index_of: ptr8, width: int, data: ptr8, ok: ptr8, errors: ptr8
) -> int:
    # Scan for FF FF id len err data chk; a packet with a bad checksum or unknown id is skipped.
    answered = 0
    i = 0
    plen = width + 6
    while i + plen <= got:
        if rx[i] != 0xFF or rx[i + 1] != 0xFF:
            i += 1
            continue
        sid = rx[i + 2]
        idx = index_of[sid]
        if idx == 0 or rx[i + 3] != width + 2:
            i += 1
            continue
        s = 0
        j = i + 2
        last = i + plen - 1
        while j < last:
            s += rx[j]
            j += 1
        if ((~s) & 0xFF) != rx[last]:
            i += 1
            continue
        idx -= 1
        if ok[idx] == 0:
            answered += 1
        ok[idx] = 1
        errors[idx] = rx[i + 4]
        k = 0
        while k < width:
            data[idx * width + k] = rx[i + 5 + k]
            k += 1
        i += plen
    return answered
