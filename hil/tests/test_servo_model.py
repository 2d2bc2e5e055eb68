"""The simulated STS3215: registers as Feetech documents them, dynamics, faults (explicit clock, no sleeps)."""

from __future__ import annotations

import random

import pytest
from spinal_hil import sts3215 as reg
from spinal_hil.servo_model import MAX_SPEED_TICKS_S, SimulatedServo


def servo(position: float = 2048) -> SimulatedServo:
    return SimulatedServo(1, position, now=0.0, rng=random.Random(0))


def u16(data: bytes) -> int:
    return int.from_bytes(data, "little")


def test_factory_registers_identify_an_sts3215() -> None:
    s = servo()
    assert u16(s.read(reg.MODEL_NUMBER, 2, 0.0)) == 777
    assert s.read(reg.ID, 1, 0.0) == b"\x01"
    assert u16(s.read(reg.MIN_ANGLE_LIMIT, 2, 0.0)) == 0 and u16(s.read(reg.MAX_ANGLE_LIMIT, 2, 0.0)) == 4095
    assert s.read(reg.TORQUE_ENABLE, 1, 0.0) == b"\x00"
    assert u16(s.read(reg.PRESENT_POSITION, 2, 0.0)) == 2048


def test_torque_off_shaft_stays_whatever_the_goal() -> None:
    s = servo(1000)
    s.write(reg.GOAL_POSITION, (3000).to_bytes(2, "little"), 0.0)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 1.0)) == 1000


def test_far_goal_is_approached_at_the_speed_limit_then_settles() -> None:
    s = servo(1000)
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.0)
    s.write(reg.GOAL_POSITION, (3000).to_bytes(2, "little"), 0.0)
    assert s.read(reg.PRESENT_POSITION, 2, 0.1) == round(1000 + 0.1 * MAX_SPEED_TICKS_S).to_bytes(2, "little")
    speed = u16(s.read(reg.PRESENT_SPEED, 2, 0.1))
    assert speed == round(MAX_SPEED_TICKS_S)
    assert s.read(reg.MOVING, 1, 0.1) == b"\x01"
    assert u16(s.read(reg.PRESENT_POSITION, 2, 2.0)) == 3000
    assert s.read(reg.MOVING, 1, 2.0) == b"\x00"


def test_goal_speed_register_lowers_the_speed_limit() -> None:
    s = servo(1000)
    s.write(reg.GOAL_SPEED, (500).to_bytes(2, "little"), 0.0)
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.0)
    s.write(reg.GOAL_POSITION, (3000).to_bytes(2, "little"), 0.0)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 1.0)) == 1500


def test_moving_down_reports_speed_with_the_sign_bit() -> None:
    s = servo(3000)
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.0)
    s.write(reg.GOAL_POSITION, (1000).to_bytes(2, "little"), 0.0)
    raw = u16(s.read(reg.PRESENT_SPEED, 2, 0.05))
    assert raw & 0x8000 and reg.from_sign_magnitude(raw, 15) == -round(MAX_SPEED_TICKS_S)
    load = u16(s.read(reg.PRESENT_LOAD, 2, 0.05))
    assert load & (1 << 10), "load direction bit follows the motion"


def test_angle_limits_clamp_the_goal() -> None:
    s = servo(2000)
    s.write(reg.MAX_ANGLE_LIMIT, (2100).to_bytes(2, "little"), 0.0)
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.0)
    s.write(reg.GOAL_POSITION, (4000).to_bytes(2, "little"), 0.0)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 5.0)) == 2100


def test_torque_enable_128_makes_the_present_position_the_middle() -> None:
    s = servo(1234)
    s.write(reg.TORQUE_ENABLE, bytes([128]), 0.0)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 0.0)) == 2048
    assert s.homing_offset == 1234 - 2048
    assert s.read(reg.TORQUE_ENABLE, 1, 0.0) == b"\x00"


def test_read_only_registers_ignore_writes() -> None:
    s = servo()
    s.write(reg.PRESENT_POSITION, b"\x00\x00", 0.0)
    s.write(reg.MODEL_NUMBER, b"\x01\x00", 0.0)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 0.0)) == 2048
    assert u16(s.read(reg.MODEL_NUMBER, 2, 0.0)) == 777


def test_hand_moves_the_shaft_only_while_torque_is_off() -> None:
    s = servo(2048)
    s.hand = lambda t: 2048 + 1000 * t
    assert u16(s.read(reg.PRESENT_POSITION, 2, 0.5)) == 2548
    s.write(reg.GOAL_POSITION, (2548).to_bytes(2, "little"), 0.5)
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.5)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 1.0)) == 2548


def test_faults_stuck_noise_and_error_bits() -> None:
    s = servo(1000)
    s.faults.stuck = True
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.0)
    s.write(reg.GOAL_POSITION, (3000).to_bytes(2, "little"), 0.0)
    assert u16(s.read(reg.PRESENT_POSITION, 2, 1.0)) == 1000
    s.faults.error_bits = reg.ERR_OVERLOAD
    assert s.read(reg.STATUS, 1, 1.0) == bytes([reg.ERR_OVERLOAD]) and s.status_error() == reg.ERR_OVERLOAD
    s.faults.position_noise = 5.0
    readings = {u16(s.read(reg.PRESENT_POSITION, 2, 1.0 + i)) for i in range(50)}
    assert len(readings) > 5 and all(abs(r - 1000) < 40 for r in readings)


def test_goal_history_records_goals_written_with_torque_on() -> None:
    s = servo()
    s.write(reg.GOAL_POSITION, (2100).to_bytes(2, "little"), 0.0)
    s.write(reg.TORQUE_ENABLE, b"\x01", 0.1)
    s.write(reg.GOAL_POSITION, (2200).to_bytes(2, "little"), 0.2)
    assert list(s.goal_history) == [(0.2, 2200)]


@pytest.mark.parametrize("value", [0, 1, 1000, -1, -1000, -2047])
def test_sign_magnitude_round_trips(value: int) -> None:
    assert reg.from_sign_magnitude(reg.to_sign_magnitude(value, 11), 11) == value
