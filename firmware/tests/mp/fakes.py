"""In-memory stand-ins for the HAL (link, servo bus, e-stop, clock) for firmware tests under MicroPython.

The steady-state paths (feeding frames, SYNC WRITE, SYNC READ, capturing writes) allocate nothing, so the
firmware's loop can run under micropython.heap_lock().
"""

import json

from spinalfw.framing import copy_bytes
from spinalfw.sts import INST_PING, INST_READ, INST_SYNC_READ, INST_SYNC_WRITE, INST_WRITE, checksum

_VECTORS = None


def vectors():
    global _VECTORS
    if _VECTORS is None:
        here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
        with open(here + "/../vectors/link_vectors.json") as fh:
            _VECTORS = json.load(fh)
    return _VECTORS


def vector(name):
    for v in vectors()["frames"]:
        if v["name"] == name:
            return v
    raise KeyError(name)


def unhex(text):
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))


class MemoryPort:
    """A link whose receive side is fed by the test and whose transmit side is captured."""

    def __init__(self, capacity=16384):
        self.rx = bytearray(capacity)
        self.rx_len = 0
        self.rx_pos = 0
        self.tx = bytearray(capacity)
        self.tx_len = 0
        self.writable_now = True

    def feed(self, data, n=-1):
        if n < 0:
            n = len(data)
        if self.rx_pos == self.rx_len:
            self.rx_pos = 0
            self.rx_len = 0
        copy_bytes(self.rx, self.rx_len, data, 0, n)
        self.rx_len += n

    def readinto(self, buf, n):
        k = self.rx_len - self.rx_pos
        if k > n:
            k = n
        copy_bytes(buf, 0, self.rx, self.rx_pos, k)
        self.rx_pos += k
        return k

    def writable(self):
        return self.writable_now

    def write(self, buf, off, n):
        if self.tx_len + n > len(self.tx):
            self.tx_len = 0
        copy_bytes(self.tx, self.tx_len, buf, off, n)
        self.tx_len += n

    def take(self):
        data = bytes(self.tx[: self.tx_len])
        self.tx_len = 0
        return data


class FakeServo:
    def __init__(self, sid, position):
        self.regs = bytearray(80)
        self.regs[5] = sid
        self.set_position(position)
        self.regs[62] = 74
        self.regs[63] = 30
        self.silent = False
        self.silent_reads = 0  # the next N SYNC READs go unanswered (a lost or late answer)

    def set_position(self, pos):
        self.regs[56] = pos & 0xFF
        self.regs[57] = (pos >> 8) & 0xFF

    def position(self):
        return self.regs[56] | (self.regs[57] << 8)

    def goal(self):
        return self.regs[42] | (self.regs[43] << 8)

    def torque(self):
        return self.regs[40]

    def write(self, addr, buf, start, n):
        for i in range(n):
            self.regs[addr + i] = buf[start + i]
        if addr <= 42 < addr + n and self.regs[40] == 1:
            # A perfectly stiff servo: it is where it was told to be by the next read.
            self.regs[56] = self.regs[42]
            self.regs[57] = self.regs[43]


class FakeServoBus:
    """Servos answering STS instruction packets from memory (no timing, no noise)."""

    def __init__(self, ids, position=2048):
        self.servos = {}
        for sid in ids:
            self.servos[sid] = FakeServo(sid, position)
        self.answer = bytearray(1024)
        self.answer_len = 0
        self.answer_pos = 0
        self.broadcast_torque_off = 0
        self.sync_writes = 0
        self.sync_reads = 0

    def _status(self, sid, regs, addr, n):
        a = self.answer
        o = self.answer_len
        a[o] = 0xFF
        a[o + 1] = 0xFF
        a[o + 2] = sid
        a[o + 3] = n + 2
        a[o + 4] = 0
        for i in range(n):
            a[o + 5 + i] = regs[addr + i] if regs is not None else 0
        a[o + 5 + n] = checksum(a, o + 2, o + 5 + n)
        self.answer_len = o + 6 + n

    def send(self, buf, n):
        self.answer_len = 0
        self.answer_pos = 0
        sid = buf[2]
        inst = buf[4]
        if inst == INST_SYNC_WRITE:
            self.sync_writes += 1
            addr = buf[5]
            width = buf[6]
            o = 7
            while o + width < n:
                s = self.servos.get(buf[o])
                if s is not None and not s.silent:
                    s.write(addr, buf, o + 1, width)
                o += width + 1
        elif inst == INST_SYNC_READ:
            self.sync_reads += 1
            addr = buf[5]
            width = buf[6]
            for o in range(7, n - 1):
                s = self.servos.get(buf[o])
                if s is not None and s.silent_reads > 0:
                    s.silent_reads -= 1
                elif s is not None and not s.silent:
                    self._status(buf[o], s.regs, addr, width)
        elif inst == INST_PING:
            s = self.servos.get(sid)
            if s is not None and not s.silent:
                self._status(sid, None, 0, 0)
        elif inst == INST_READ:
            s = self.servos.get(sid)
            if s is not None and not s.silent:
                self._status(sid, s.regs, buf[5], buf[6])
        elif inst == INST_WRITE:
            if sid == 0xFE:
                if buf[5] == 40 and buf[6] == 0:
                    self.broadcast_torque_off += 1
                for s in self.servos.values():
                    s.write(buf[5], buf, 6, n - 7)
            else:
                s = self.servos.get(sid)
                if s is not None and not s.silent:
                    s.write(buf[5], buf, 6, n - 7)
                    self._status(sid, None, 0, 0)

    def recv(self, buf, n, timeout_us):
        k = self.answer_len - self.answer_pos
        if k > n:
            k = n
        copy_bytes(buf, 0, self.answer, self.answer_pos, k)
        self.answer_pos += k
        return k


class FakeEstop:
    def __init__(self):
        self.pressed = False

    def asserted(self):
        return self.pressed


class FakeClock:
    def __init__(self, start=1000):
        self.now = start

    def __call__(self):
        return self.now


class FakeHal:
    def __init__(self, ids=(1, 2, 3, 4, 5, 6), leader_ids=None):
        self.link = MemoryPort()
        self.bus = FakeServoBus(ids)
        self.leader_bus = FakeServoBus(leader_ids) if leader_ids else None
        self.estop = FakeEstop()
        self.led = None

    def sleep_us(self, us):
        pass
