"""The rp2 HAL's logic under the unix port, with `machine.UART`/`machine.Pin` replaced by recording fakes.

Proves the half-duplex handling (direction pin, echo discard), the e-stop polarity and the board wiring;
timing on real silicon is for the HIL scenarios on a Pico (hil/README.md).
"""

import sys


class _Pin:
    OUT = 1
    IN = 0
    PULL_UP = 2
    levels = {}
    history = []

    def __init__(self, pin, mode=None, pull=None, value=None):
        self.pin = pin
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return _Pin.levels.get(self.pin, 0)
        _Pin.levels[self.pin] = v
        _Pin.history.append((self.pin, v))
        return None


class _Uart:
    made = []

    def __init__(self, uart_id, **kw):
        self.id = uart_id
        self.kw = kw
        self.wire = bytearray()  # what went out
        self.inbox = bytearray()  # what the bus will answer
        self.echo = False
        self.reply = b""  # what the servo answers once a request is on the wire
        _Uart.made.append(self)

    def any(self):
        return len(self.inbox)

    def write(self, buf, off, n):
        data = bytes(buf[off : off + n])
        self.wire += data
        self.inbox += (data if self.echo else b"") + self.reply

    def flush(self):
        pass

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        k = min(n, len(self.inbox))
        buf[:k] = self.inbox[:k]
        self.inbox = self.inbox[k:]
        return k or None


class _Machine:
    Pin = _Pin
    UART = _Uart


sys.modules["machine"] = _Machine
from spinalfw import hal_rp2  # noqa: E402 - after the fake machine module is in place


def test_direction_pin_is_high_only_while_sending():
    _Pin.history.clear()
    bus = hal_rp2.UartServoBus(0, 0, 1, dir_pin=2)
    bus.send(bytearray(b"\xff\xff\x01\x02\x01\xfb"), 6)
    assert [h for h in _Pin.history if h[0] == 2] == [(2, 0), (2, 1), (2, 0)]
    assert bytes(bus.uart.wire) == b"\xff\xff\x01\x02\x01\xfb"


def test_echo_of_own_bytes_is_discarded_before_the_answer():
    bus = hal_rp2.UartServoBus(0, 0, 1, echo=True)
    bus.uart.echo = True
    bus.uart.reply = b"\xff\xff\x01\x02\x00\xfc"  # the servo's answer, behind our echo
    bus.send(bytearray(b"\xff\xff\x01\x02\x01\xfb"), 6)
    buf = bytearray(6)
    assert bus.recv(buf, 6, 3000) == 6
    assert bytes(buf) == b"\xff\xff\x01\x02\x00\xfc"


def test_stale_bytes_are_flushed_before_a_request():
    bus = hal_rp2.UartServoBus(0, 0, 1)
    bus.uart.inbox = bytearray(b"late answer")
    bus.send(bytearray(b"\x01"), 1)
    assert bus.uart.any() == 0


def test_uart_runs_at_one_megabaud_with_a_short_timeout():
    bus = hal_rp2.UartServoBus(1, 4, 5)
    assert bus.uart.kw["baudrate"] == 1000000
    assert bus.uart.kw["timeout"] <= 5


def test_estop_is_asserted_when_the_normally_closed_loop_opens():
    estop = hal_rp2.PinEstop(15, active_high=True)
    _Pin.levels[15] = 0
    assert not estop.asserted()
    _Pin.levels[15] = 1  # button pressed or wire cut: the pull-up wins
    assert estop.asserted()


def test_board_without_leader_or_estop_builds_a_hal():
    class Board:
        FOLLOWER_UART, FOLLOWER_TX, FOLLOWER_RX, FOLLOWER_DIR = 0, 0, 1, None
        LEADER_UART, LEADER_TX, LEADER_RX, LEADER_DIR = None, 4, 5, None
        ECHO = False
        ESTOP_PIN, ESTOP_ACTIVE_HIGH = None, True
        LED_PIN = "LED"

    hal = hal_rp2.Rp2Hal(Board)
    try:
        assert hal.leader_bus is None and hal.estop is None and hal.led is not None
        assert hal.link.readinto(bytearray(4), 4) == 0
    finally:
        hal.close()
