"""The rig's host link: a pty relay that can unplug, replug and flip bits, and the e-stop line."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from spinal_hil.pty_link import EstopLine, LinkRelay


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[LinkRelay]:
    r = LinkRelay(tmp_path / "ttyACM0", seed=1).start()
    try:
        yield r
    finally:
        r.stop()


def read_fw(relay: LinkRelay, n: int, timeout: float = 2.0) -> bytes:
    fd = os.open(relay.firmware_path, os.O_RDWR | os.O_NOCTTY)
    try:
        out = b""
        while len(out) < n and select.select([fd], [], [], timeout)[0]:
            out += os.read(fd, n - len(out))
        return out
    finally:
        os.close(fd)


def test_bytes_cross_both_ways(relay: LinkRelay) -> None:
    fw = os.open(relay.firmware_path, os.O_RDWR | os.O_NOCTTY)
    try:
        with serial.Serial(relay.host_port, timeout=2) as host:
            host.write(b"to mcu")
            got = b""
            while len(got) < 6 and select.select([fw], [], [], 2)[0]:
                got += os.read(fw, 64)
            assert got == b"to mcu"
            os.write(fw, b"to host")
            assert host.read(7) == b"to host"
    finally:
        os.close(fw)


def test_unplug_makes_the_port_vanish_and_replug_brings_it_back(relay: LinkRelay) -> None:
    host = serial.Serial(relay.host_port, timeout=0.5)
    relay.unplug()
    assert not os.path.lexists(relay.host_port)
    with pytest.raises(serial.SerialException):
        host.read(1)
        host.read(1)
    host.close()
    with pytest.raises(serial.SerialException):
        serial.Serial(relay.host_port)
    relay.replug()
    with serial.Serial(relay.host_port, timeout=0.5) as again:
        again.write(b"x")
        assert read_fw(relay, 1) == b"x"


def test_bit_flips_are_injected_at_the_set_rate(relay: LinkRelay) -> None:
    relay.set_bit_flip_rate(0.01, "to_mcu")
    fw = os.open(relay.firmware_path, os.O_RDWR | os.O_NOCTTY)
    try:
        with serial.Serial(relay.host_port, timeout=2) as host:
            payload = bytes(2000)
            host.write(payload)
            got = b""
            while len(got) < len(payload) and select.select([fw], [], [], 2)[0]:
                got += os.read(fw, 4096)
    finally:
        os.close(fw)
    flipped = sum(bin(b).count("1") for b in got)
    assert flipped == relay.bits_flipped_to_mcu
    assert 80 <= flipped <= 250  # 16000 bits at 1 %: 160 expected


def test_bad_flip_rate_is_refused(relay: LinkRelay) -> None:
    with pytest.raises(ValueError, match="within 0..0.5"):
        relay.set_bit_flip_rate(2.0)
    with pytest.raises(ValueError, match="direction"):
        relay.set_bit_flip_rate(0.1, "sideways")


def test_estop_line_carries_the_button_state() -> None:
    line = EstopLine()
    try:
        fd = os.open(line.path, os.O_RDWR | os.O_NOCTTY)
        line.set(True)
        line.set(False)
        got = b""
        while len(got) < 2 and select.select([fd], [], [], 2)[0]:
            got += os.read(fd, 8)
        os.close(fd)
        assert got == b"10"
    finally:
        line.close()
