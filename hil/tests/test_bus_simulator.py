"""The servo-bus simulator on its pty, spoken to with pyserial as a host program would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import serial
from spinal_hil import sts3215 as reg
from spinal_hil.bus_simulator import ServoBusSimulator


@pytest.fixture
def sim() -> Iterator[ServoBusSimulator]:
    with ServoBusSimulator((1, 2, 3), positions={1: 1000, 2: 2000, 3: 3000}) as s:
        yield s


@pytest.fixture
def port(sim: ServoBusSimulator) -> Iterator[serial.Serial]:
    with serial.Serial(sim.path, 1_000_000, timeout=0.3) as p:
        yield p


def transact(port: serial.Serial, pkt: bytes, expect: int) -> bytes:
    port.reset_input_buffer()
    port.write(pkt)
    return port.read(expect)


def status(sid: int, err: int = 0, data: bytes = b"") -> bytes:
    return reg.packet(sid, err, data)


def test_ping_is_answered_and_an_absent_id_stays_silent(port: serial.Serial) -> None:
    assert transact(port, reg.packet(2, reg.PING), 6) == status(2)
    assert transact(port, reg.packet(9, reg.PING), 6) == b""


def test_read_returns_the_model_number(port: serial.Serial) -> None:
    answer = transact(port, reg.packet(1, reg.READ, bytes([reg.MODEL_NUMBER, 2])), 8)
    assert answer == status(1, 0, (777).to_bytes(2, "little"))


def test_packet_with_a_bad_checksum_is_ignored_and_counted(
    sim: ServoBusSimulator, port: serial.Serial
) -> None:
    bad = bytearray(reg.packet(1, reg.PING))
    bad[-1] ^= 0xFF
    assert transact(port, bytes(bad), 6) == b""
    assert sim.bad_packets == 1
    assert transact(port, reg.packet(1, reg.PING), 6) == status(1)  # resynchronised


def test_sync_read_answers_in_request_order_and_skips_silent_servos(
    sim: ServoBusSimulator, port: serial.Serial
) -> None:
    req = reg.packet(reg.BROADCAST_ID, reg.SYNC_READ, bytes([reg.PRESENT_POSITION, 2, 3, 1, 2]))
    answer = transact(port, req, 24)
    assert answer == status(3, 0, (3000).to_bytes(2, "little")) + status(
        1, 0, (1000).to_bytes(2, "little")
    ) + status(2, 0, (2000).to_bytes(2, "little"))
    sim.servo(1).faults.silent = True
    assert transact(port, req, 24) == answer[:8] + answer[16:]


def test_sync_write_sets_every_listed_goal(sim: ServoBusSimulator, port: serial.Serial) -> None:
    params = (
        bytes([reg.GOAL_POSITION, 2])
        + bytes([1])
        + (1100).to_bytes(2, "little")
        + bytes([3])
        + (2900).to_bytes(2, "little")
    )
    port.write(reg.packet(reg.BROADCAST_ID, reg.SYNC_WRITE, params))
    time.sleep(0.05)  # no answer to wait for: sync write is broadcast
    assert transact(port, reg.packet(3, reg.PING), 6)  # the simulator has handled the write by now
    assert sim.servo(1).goal_position == 1100 and sim.servo(3).goal_position == 2900


def test_write_is_acknowledged_unless_the_response_level_is_zero(
    sim: ServoBusSimulator, port: serial.Serial
) -> None:
    assert transact(port, reg.packet(1, reg.WRITE, bytes([reg.TORQUE_ENABLE, 1])), 6) == status(1)
    assert sim.servo(1).torque_enabled
    sim.servo(1).regs[reg.RESPONSE_LEVEL] = 0
    assert transact(port, reg.packet(1, reg.WRITE, bytes([reg.TORQUE_ENABLE, 0])), 6) == b""
    assert not sim.servo(1).torque_enabled


def test_corrupt_answers_carry_a_wrong_checksum(sim: ServoBusSimulator, port: serial.Serial) -> None:
    sim.servo(2).faults.corrupt_rate = 1.0
    answer = transact(port, reg.packet(2, reg.PING), 6)
    assert len(answer) == 6 and reg.checksum(answer[2:-1]) != answer[-1]


def test_error_bits_appear_in_status_packets(sim: ServoBusSimulator, port: serial.Serial) -> None:
    sim.servo(3).faults.error_bits = reg.ERR_OVERHEAT
    assert transact(port, reg.packet(3, reg.PING), 6) == status(3, reg.ERR_OVERHEAT)


def test_return_delay_register_delays_the_answer(sim: ServoBusSimulator, port: serial.Serial) -> None:
    sim.servo(1).regs[reg.RETURN_DELAY] = 250  # 500 us
    port.reset_input_buffer()
    t0 = time.perf_counter()
    port.write(reg.packet(1, reg.PING))
    assert port.read(6) == status(1)
    assert time.perf_counter() - t0 >= 500e-6


def test_servo_set_to_another_baud_rate_stops_answering(sim: ServoBusSimulator, port: serial.Serial) -> None:
    assert transact(port, reg.packet(2, reg.WRITE, bytes([reg.BAUD_RATE, 4])), 6) == status(2)
    assert transact(port, reg.packet(2, reg.PING), 6) == b""


def test_id_change_is_acknowledged_by_the_old_id_and_takes_effect_at_once(
    sim: ServoBusSimulator, port: serial.Serial
) -> None:
    assert transact(port, reg.packet(3, reg.WRITE, bytes([reg.ID, 7])), 6) == status(3)
    assert transact(port, reg.packet(7, reg.PING), 6) == status(7)
    assert sim.servo(7).position == pytest.approx(3000)
