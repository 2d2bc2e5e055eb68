"""The rp2 HAL: a Raspberry Pi Pico (RP2040/RP2350) with UART servo buses, USB CDC to the Pi, e-stop pin, LED.

Built by main.py from board.py. The USB link is the REPL's CDC port, so Ctrl-C handling is switched off while
the firmware runs (binary frames contain 0x03) and restored on exit; see PROTOCOL.md "Getting the REPL back".
"""

import select
import sys
import time

import micropython
from machine import UART, Pin


class UartServoBus:
    """A half-duplex STS bus on a UART at 1 Mbps.

    `dir_pin` drives a transceiver's direction (high while sending); `echo=True` when TX and RX share the wire
    through a resistor, so the UART hears its own bytes and they are discarded after each send.
    """

    def __init__(self, uart_id, tx, rx, baudrate=1000000, dir_pin=None, echo=False, timeout_ms=2):
        self.uart = UART(
            uart_id, baudrate=baudrate, tx=Pin(tx), rx=Pin(rx), timeout=timeout_ms, timeout_char=1, rxbuf=512
        )
        self.dir = Pin(dir_pin, Pin.OUT, value=0) if dir_pin is not None else None
        self.echo = echo
        self.scratch = bytearray(256)

    def send(self, buf, n):
        uart = self.uart
        while uart.any():
            uart.readinto(self.scratch, 256)
        if self.dir is not None:
            self.dir.value(1)
        uart.write(buf, 0, n)
        uart.flush()  # wait for the last stop bit before turning the bus around
        if self.dir is not None:
            self.dir.value(0)
        if self.echo:
            uart.readinto(self.scratch, n)

    def recv(self, buf, n, timeout_us):
        # The UART's own timeout (set at construction) bounds the wait; timeout_us is for the unix HAL.
        return self.uart.readinto(buf, n) or 0


class UsbCdcLink:
    """The USB CDC serial port (sys.stdin/stdout) as a non-blocking, allocation-free byte link."""

    def __init__(self):
        micropython.kbd_intr(-1)
        self.rx = sys.stdin.buffer
        self.tx = sys.stdout.buffer
        self.poll_in = select.poll()
        self.poll_in.register(sys.stdin, select.POLLIN)
        self.poll_out = select.poll()
        self.poll_out.register(sys.stdout, select.POLLOUT)
        self.one = bytearray(1)

    def readinto(self, buf, n):
        got = 0
        while got < n:
            ready = False
            for _ in self.poll_in.ipoll(0):
                ready = True
            if not ready or not self.rx.readinto(self.one, 1):
                break
            buf[got] = self.one[0]
            got += 1
        return got

    def write(self, buf, off, n):
        self.tx.write(buf, off, n)

    def writable(self):
        for _ in self.poll_out.ipoll(0):
            return True
        return False

    def close(self):
        micropython.kbd_intr(3)


class PinEstop:
    """An e-stop input. Wire a normally-closed button to GND: pressed or a cut wire reads high = asserted."""

    def __init__(self, pin, active_high=True):
        self.pin = Pin(pin, Pin.IN, Pin.PULL_UP)
        self.active = 1 if active_high else 0

    def asserted(self):
        return self.pin.value() == self.active


class PinLed:
    def __init__(self, pin):
        self.pin = Pin(pin, Pin.OUT, value=0)

    def set(self, on):
        self.pin.value(on)


class Rp2Hal:
    def __init__(self, board):
        self.bus = UartServoBus(
            board.FOLLOWER_UART, board.FOLLOWER_TX, board.FOLLOWER_RX, dir_pin=board.FOLLOWER_DIR, echo=board.ECHO
        )
        self.leader_bus = None
        if board.LEADER_UART is not None:
            self.leader_bus = UartServoBus(
                board.LEADER_UART, board.LEADER_TX, board.LEADER_RX, dir_pin=board.LEADER_DIR, echo=board.ECHO
            )
        self.estop = PinEstop(board.ESTOP_PIN, board.ESTOP_ACTIVE_HIGH) if board.ESTOP_PIN is not None else None
        self.led = PinLed(board.LED_PIN) if board.LED_PIN is not None else None
        self.link = UsbCdcLink()

    def sleep_us(self, us):
        time.sleep_us(us)

    def close(self):
        self.link.close()
