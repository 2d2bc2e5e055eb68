"""`spinal-hil bus` and `spinal-hil rig` as other tools use them: a path on the first line, then service."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import serial
from spinal_hil import sts3215 as reg


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinal_hil", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        yield proc, first
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_bus_prints_its_pty_and_answers_like_servos_until_interrupted() -> None:
    with running("bus", "--ids", "1,2,3") as (proc, path):
        assert path.startswith("/dev/pts/"), path
        with serial.Serial(path, 1_000_000, timeout=2) as port:
            port.write(reg.packet(3, reg.READ, bytes([reg.MODEL_NUMBER, 2])))
            assert port.read(8) == reg.packet(3, 0, (777).to_bytes(2, "little"))
            port.write(reg.packet(4, reg.PING))
            port.timeout = 0.2
            assert port.read(6) == b""
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "served" in proc.stderr.read()


def test_bus_rejects_bad_ids_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spinal_hil", "bus", "--ids", "1,x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "comma-separated list of servo ids" in result.stderr


def test_rig_prints_a_host_port_that_speaks_the_link_protocol() -> None:
    from spinal_edge.mcu import ArmCalibration, McuLink

    with running("rig") as (_proc, host_port):
        assert host_port.endswith("ttyACM0")
        config = ArmCalibration.so101_default().link_config()
        with McuLink(host_port, config) as link:
            handshake = link.wait_ready(15)
            assert handshake.buses == ((1, 2, 3, 4, 5, 6),)


def test_rig_against_a_missing_port_fails_with_the_reason(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spinal_hil", "rig", "--port", str(tmp_path / "ttyACM7"), "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot open" in result.stderr and "ttyACM7" in result.stderr
