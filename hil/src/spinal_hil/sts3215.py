"""The Feetech STS3215 memory table and protocol constants, as the simulator serves them.

Addresses follow Feetech's STS/SMS memory table (EPROM 0..39, SRAM 40..); two-byte values are little-endian.
Used by spinal_hil.servo_model and spinal_hil.bus_simulator.
"""

from __future__ import annotations

# Instructions
PING = 0x01
READ = 0x02
WRITE = 0x03
REG_WRITE = 0x04
ACTION = 0x05
SYNC_READ = 0x82
SYNC_WRITE = 0x83
BROADCAST_ID = 0xFE

# EPROM
FIRMWARE_MAJOR = 0
FIRMWARE_MINOR = 1
MODEL_NUMBER = 3  # 2 bytes; 777 for the STS3215
ID = 5
BAUD_RATE = 6  # 0..7 = 1M, 500k, 250k, 128k, 115200, 76800, 57600, 38400
RETURN_DELAY = 7  # units of 2 us
RESPONSE_LEVEL = 8  # 0: answer only READ and PING; 1: answer everything
MIN_ANGLE_LIMIT = 9  # 2 bytes
MAX_ANGLE_LIMIT = 11  # 2 bytes
MAX_TEMPERATURE = 13
MAX_VOLTAGE = 14
MIN_VOLTAGE = 15
MAX_TORQUE = 16  # 2 bytes
PHASE = 18
UNLOADING_CONDITION = 19
LED_ALARM_CONDITION = 20
P_COEFFICIENT = 21
D_COEFFICIENT = 22
I_COEFFICIENT = 23
MIN_STARTUP_FORCE = 24  # 2 bytes
CW_DEAD_ZONE = 26
CCW_DEAD_ZONE = 27
PROTECTION_CURRENT = 28  # 2 bytes
ANGULAR_RESOLUTION = 30
HOMING_OFFSET = 31  # 2 bytes, sign-magnitude with the sign in bit 11
OPERATING_MODE = 33  # 0 position, 1 speed, 2 PWM, 3 step
PROTECTIVE_TORQUE = 34
PROTECTION_TIME = 35
OVERLOAD_TORQUE = 36
# SRAM
TORQUE_ENABLE = 40  # 0 off, 1 on, 128: make the present position the middle (2048)
ACCELERATION = 41
GOAL_POSITION = 42  # 2 bytes
GOAL_TIME = 44  # 2 bytes
GOAL_SPEED = 46  # 2 bytes, steps/s, 0 = as fast as it can
TORQUE_LIMIT = 48  # 2 bytes, 0.1 %
LOCK = 55
PRESENT_POSITION = 56  # 2 bytes
PRESENT_SPEED = 58  # 2 bytes, steps/s, sign-magnitude with the sign in bit 15
PRESENT_LOAD = 60  # 2 bytes, 0.1 % of max torque, direction in bit 10
PRESENT_VOLTAGE = 62  # 0.1 V
PRESENT_TEMPERATURE = 63  # degrees C
ASYNC_WRITE_FLAG = 64
STATUS = 65  # error bits, as in a status packet
MOVING = 66
PRESENT_CURRENT = 69  # 2 bytes, 6.5 mA units

# Error bits of a status packet (and of the STATUS register)
ERR_VOLTAGE = 0x01
ERR_SENSOR = 0x02
ERR_OVERHEAT = 0x04
ERR_OVERCURRENT = 0x08
ERR_OVERLOAD = 0x20

STS3215_MODEL = 777
RESOLUTION = 4096
BAUD_RATES = (1_000_000, 500_000, 250_000, 128_000, 115_200, 76_800, 57_600, 38_400)

READ_ONLY = frozenset(
    {
        FIRMWARE_MAJOR,
        FIRMWARE_MINOR,
        MODEL_NUMBER,
        MODEL_NUMBER + 1,
        *range(PRESENT_POSITION, PRESENT_CURRENT + 2),
    }
)

# Factory values of the EPROM/SRAM registers the simulator models (address, bytes, value).
DEFAULTS: tuple[tuple[int, int, int], ...] = (
    (FIRMWARE_MAJOR, 1, 3),
    (FIRMWARE_MINOR, 1, 10),
    (MODEL_NUMBER, 2, STS3215_MODEL),
    (BAUD_RATE, 1, 0),
    (RETURN_DELAY, 1, 0),
    (RESPONSE_LEVEL, 1, 1),
    (MIN_ANGLE_LIMIT, 2, 0),
    (MAX_ANGLE_LIMIT, 2, 4095),
    (MAX_TEMPERATURE, 1, 70),
    (MAX_VOLTAGE, 1, 140),
    (MIN_VOLTAGE, 1, 40),
    (MAX_TORQUE, 2, 1000),
    (PHASE, 1, 12),
    (UNLOADING_CONDITION, 1, 44),
    (LED_ALARM_CONDITION, 1, 47),
    (P_COEFFICIENT, 1, 32),
    (D_COEFFICIENT, 1, 32),
    (I_COEFFICIENT, 1, 0),
    (MIN_STARTUP_FORCE, 2, 16),
    (CW_DEAD_ZONE, 1, 1),
    (CCW_DEAD_ZONE, 1, 1),
    (PROTECTION_CURRENT, 2, 500),
    (ANGULAR_RESOLUTION, 1, 1),
    (HOMING_OFFSET, 2, 0),
    (OPERATING_MODE, 1, 0),
    (PROTECTIVE_TORQUE, 1, 20),
    (PROTECTION_TIME, 1, 200),
    (OVERLOAD_TORQUE, 1, 80),
    (TORQUE_ENABLE, 1, 0),
    (ACCELERATION, 1, 0),
    (GOAL_SPEED, 2, 0),
    (TORQUE_LIMIT, 2, 1000),
    (LOCK, 1, 0),
)


def checksum(body: bytes | bytearray | memoryview) -> int:
    """Feetech checksum over id..last parameter: the inverted low byte of the sum."""
    return (~sum(body)) & 0xFF


def packet(servo_id: int, instruction_or_error: int, params: bytes = b"") -> bytes:
    """An instruction packet (host side) or a status packet (servo side): FF FF id len inst/err params chk."""
    body = bytes((servo_id, len(params) + 2, instruction_or_error)) + params
    return b"\xff\xff" + body + bytes((checksum(body),))


def to_sign_magnitude(value: int, sign_bit: int) -> int:
    return (1 << sign_bit) | (-value & ((1 << sign_bit) - 1)) if value < 0 else value & ((1 << sign_bit) - 1)


def from_sign_magnitude(raw: int, sign_bit: int) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude
