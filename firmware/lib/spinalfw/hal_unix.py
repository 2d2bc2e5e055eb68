"""The unix HAL: runs the firmware on a PC under the MicroPython unix port, for simulation and tests.

Bus, leader bus, link and e-stop are ttys (pseudo-terminals from the HIL rig, or real USB serial adapters) given
on the command line; each is switched to raw mode with VMIN=0/VTIME=0 so a read returns what is there at once.
"""

import select
import termios
import time

from micropython import const

from spinalfw.framing import copy_bytes

# Indexes into the termios cc list on Linux. MicroPython's termios has no VMIN/VTIME names.
_VTIME = const(5)
_VMIN = const(6)


class TtyPort:
    """A tty opened for non-blocking byte I/O without allocation: `readinto`, `write`, `writable`, `wait`."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "r+b")  # noqa: SIM115 - held for the process lifetime
        fd = self.file.fileno()
        termios.setraw(fd)
        attrs = termios.tcgetattr(fd)
        # VMIN=0, VTIME=0: read() returns at once with what is buffered. The unix port's readinto otherwise
        # blocks until the whole buffer is filled, and it has no way to set O_NONBLOCK.
        attrs[6][_VMIN] = 0
        attrs[6][_VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        self.poll_in = select.poll()
        self.poll_in.register(self.file, select.POLLIN)
        self.poll_out = select.poll()
        self.poll_out.register(self.file, select.POLLOUT)

    def readinto(self, buf, n):
        return self.file.readinto(buf, n) or 0

    def write(self, buf, off, n):
        self.file.write(buf, off, n)

    def writable(self):
        for _ in self.poll_out.ipoll(0):
            return True
        return False

    def wait(self, timeout_ms):
        """Block until bytes arrive or timeout_ms passes; True if readable."""
        for _ in self.poll_in.ipoll(timeout_ms):
            return True
        return False

    def close(self):
        self.file.close()


class TtyServoBus:
    """A half-duplex servo bus on a tty: `send(buf, n)` then `recv(buf, n, timeout_us) -> bytes received`."""

    def __init__(self, path):
        self.port = TtyPort(path)
        self.scratch = bytearray(256)

    def send(self, buf, n):
        # A late answer to an earlier request must not be taken for the answer to this one.
        while self.port.readinto(self.scratch, 256) > 0:
            pass
        self.port.write(buf, 0, n)

    def recv(self, buf, n, timeout_us):
        got = 0
        deadline = time.ticks_add(time.ticks_us(), timeout_us)
        scratch = self.scratch
        while got < n:
            want = n - got
            if want > 256:
                want = 256
            k = self.port.readinto(scratch, want)
            if k:
                copy_bytes(buf, got, scratch, 0, k)
                got += k
                continue
            left = time.ticks_diff(deadline, time.ticks_us())
            if left <= 0:
                break
            self.port.wait((left + 999) // 1000)
        return got


class TtyEstop:
    """An e-stop line on a tty: the last byte received sets it, b'1' asserted, b'0' released."""

    def __init__(self, path):
        self.port = TtyPort(path)
        self.buf = bytearray(16)
        self.state = False

    def asserted(self):
        k = self.port.readinto(self.buf, 16)
        if k:
            self.state = self.buf[k - 1] == 0x31
        return self.state


class UnixHal:
    """What spinalfw.app.Firmware needs, built from command-line paths."""

    def __init__(self, bus, link, leader_bus=None, estop=None):
        self.bus = TtyServoBus(bus)
        self.leader_bus = TtyServoBus(leader_bus) if leader_bus else None
        self.link = TtyPort(link)
        self.estop = TtyEstop(estop) if estop else None
        self.led = None

    def sleep_us(self, us):
        time.sleep_us(us)


def parse_args(argv):
    import argparse

    p = argparse.ArgumentParser(description="spinal servo firmware, unix port")
    p.add_argument("--bus", help="tty of the follower servo bus")
    p.add_argument("--leader-bus", default=None, help="tty of the leader servo bus (optional)")
    p.add_argument("--link", help="tty of the host link")
    p.add_argument("--estop", default=None, help="tty carrying the e-stop line (b'1' asserted, b'0' released)")
    p.add_argument("--rate", type=int, default=200, help="servo loop rate in Hz")
    p.add_argument("--scan-first", type=int, default=1)
    p.add_argument("--scan-last", type=int, default=12)
    p.add_argument("--bus-timeout-us", type=int, default=20000)
    p.add_argument("--board", default="unix")
    p.add_argument("--selftest", action="store_true", help="check the build and exit")
    return p.parse_args(argv)
