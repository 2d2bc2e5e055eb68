"""Message types and payloads of the Pi <-> MCU link (firmware/PROTOCOL.md, "Messages"), host side.

Encoders for what the host sends, decoders (validating lengths) for what the MCU sends; used by the driver.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from spinal_edge.mcu.errors import McuConfigError, McuProtocolError

PROTOCOL_VERSION = 1
MAX_JOINTS = 8
TICKS_MAX = 4095


class MsgType(IntEnum):
    HELLO = 0x01
    CONFIG = 0x02
    TARGETS = 0x03
    TORQUE = 0x04
    ESTOP = 0x05
    ESTOP_CLEAR = 0x06
    HEARTBEAT = 0x07
    HOLD_ACK = 0x08
    EXIT_TO_REPL = 0x0F
    HELLO_REPLY = 0x81
    STATE = 0x82
    LEADER = 0x83
    ACK = 0x84
    ERROR = 0x85
    LOG = 0x86


class StateFlag(IntFlag):
    """Flags of a STATE message. Sticky ones (LIMITED and after) report what happened since the last STATE."""

    NONE = 0
    TORQUE = 0x0001
    HOLD = 0x0002
    ESTOP = 0x0004
    ESTOP_INPUT = 0x0008
    CONFIGURED = 0x0010
    LIMITED = 0x0020
    SERVO_ERROR = 0x0040
    BUS_TIMEOUT = 0x0080
    LEADER = 0x0100
    OVERRUN = 0x0200
    TARGETS_IGNORED = 0x0400


class JointStatus(IntFlag):
    """Per-joint status: the servo's own error bits plus MOVING and NO_RESPONSE."""

    OK = 0
    VOLTAGE = 0x01
    SENSOR = 0x02
    OVERHEAT = 0x04
    OVERCURRENT = 0x08
    OVERLOAD = 0x20
    MOVING = 0x40
    NO_RESPONSE = 0x80


class ErrorCode(IntEnum):
    BAD_PAYLOAD = 1
    UNKNOWN_TYPE = 2
    NOT_CONFIGURED = 3
    ESTOP_LATCHED = 4
    HOLD_ACTIVE = 5
    TORQUE_ON = 6
    BAD_CONFIG = 7
    SERVO_MISSING = 8
    ESTOP_INPUT = 9
    PROTOCOL_VERSION = 10
    BUS = 11


# ---- host -> MCU ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JointLimits:
    """One follower joint as the MCU enforces it: servo id, calibrated range in raw ticks, max step per tick."""

    servo_id: int
    min_ticks: int
    max_ticks: int
    max_step: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.servo_id < 0xFE:
            raise McuConfigError(f"servo_id {self.servo_id} is out of range: use 0..253")
        if not 0 <= self.min_ticks <= self.max_ticks <= TICKS_MAX:
            raise McuConfigError(
                f"joint {self.servo_id}: limits {self.min_ticks}..{self.max_ticks} must satisfy "
                f"0 <= min_ticks <= max_ticks <= {TICKS_MAX}"
            )
        if not 1 <= self.max_step <= 0xFFFF:
            raise McuConfigError(f"joint {self.servo_id}: max_step {self.max_step} must be 1..65535 ticks")


@dataclass(frozen=True)
class LinkConfig:
    """What the host pushes to the MCU after every handshake (the CONFIG message)."""

    joints: tuple[JointLimits, ...]
    leader_ids: tuple[int, ...] = ()
    leader_bus: int = 1
    """0: leader servos share the follower bus (other ids); 1: a second bus."""
    link_timeout_ms: int = 200
    rate_hz: int = 0
    """Servo loop rate; 0 keeps the firmware's default."""
    state_every: int = 1
    """Send STATE (and LEADER) every N loop ticks."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "leader_ids", tuple(self.leader_ids))
        if not 1 <= len(self.joints) <= MAX_JOINTS:
            raise McuConfigError(f"joints: {len(self.joints)} given, the MCU takes 1..{MAX_JOINTS}")
        ids = [j.servo_id for j in self.joints]
        if len(set(ids)) != len(ids):
            raise McuConfigError(f"joints: servo ids {ids} repeat; give each joint its own id")
        if len(self.leader_ids) > MAX_JOINTS or len(set(self.leader_ids)) != len(self.leader_ids):
            raise McuConfigError(f"leader_ids {self.leader_ids}: give at most {MAX_JOINTS} distinct ids")
        if self.leader_bus not in (0, 1):
            raise McuConfigError(f"leader_bus {self.leader_bus}: use 0 (follower bus) or 1 (second bus)")
        if self.leader_bus == 0 and set(self.leader_ids) & set(ids):
            raise McuConfigError("leader_ids overlap follower ids on a shared bus: give the leader other ids")
        if not 10 <= self.link_timeout_ms <= 60_000:
            raise McuConfigError(f"link_timeout_ms {self.link_timeout_ms}: use 10..60000")
        if self.rate_hz != 0 and not 10 <= self.rate_hz <= 1000:
            raise McuConfigError(f"rate_hz {self.rate_hz}: use 0 (firmware default) or 10..1000")
        if not 1 <= self.state_every <= 255:
            raise McuConfigError(f"state_every {self.state_every}: use 1..255")

    @property
    def servo_ids(self) -> tuple[int, ...]:
        return tuple(j.servo_id for j in self.joints)


def encode_hello(rescan: bool = False) -> bytes:
    return struct.pack("<BB", PROTOCOL_VERSION, 1 if rescan else 0)


def encode_config(config: LinkConfig) -> bytes:
    out = bytearray(
        struct.pack("<HHBB", config.link_timeout_ms, config.rate_hz, config.state_every, len(config.joints))
    )
    for j in config.joints:
        out += struct.pack("<BHHH", j.servo_id, j.min_ticks, j.max_ticks, j.max_step)
    out += struct.pack("<BB", config.leader_bus if config.leader_ids else 0, len(config.leader_ids))
    out += bytes(config.leader_ids)
    return bytes(out)


def encode_targets(positions: tuple[int, ...] | list[int]) -> bytes:
    if len(positions) > MAX_JOINTS:
        raise McuConfigError(f"{len(positions)} targets given; the MCU takes at most {MAX_JOINTS}")
    out = bytearray((len(positions),))
    for p in positions:
        out += struct.pack("<H", min(max(int(p), 0), 0xFFFF))
    return bytes(out)


def encode_torque(enabled: bool) -> bytes:
    return bytes((1 if enabled else 0,))


# ---- MCU -> host ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    """The MCU's answer to HELLO: who it is and which servos it found on each bus."""

    protocol_version: int
    firmware_version: tuple[int, int, int]
    boot_id: int
    rate_hz: int
    max_joints: int
    buses: tuple[tuple[int, ...], ...]
    board: str


@dataclass(frozen=True)
class JointState:
    position: int
    """Raw ticks, 0..4095, as the servo reports it."""
    velocity: int
    """Ticks per second."""
    load: int
    """0.1 % of max torque, signed by direction."""
    voltage: float
    """Volts."""
    temperature: int
    """Degrees Celsius."""
    status: JointStatus


@dataclass(frozen=True)
class McuState:
    """One STATE message: the follower arm and the MCU's health at `uptime_ms`."""

    boot_id: int
    uptime_ms: int
    flags: StateFlag
    last_target_seq: int
    period_mean_us: int
    period_max_us: int
    work_mean_us: int
    work_max_us: int
    overruns: int
    rx_frames: int
    rx_crc_errors: int
    rx_bad_frames: int
    tx_dropped: int
    bus_errors: int
    alloc_ticks: int
    hold_after_ms: int
    joints: tuple[JointState, ...]
    seq: int = 0
    received_at: float = field(default=0.0, compare=False)
    """Host time.monotonic() when the frame was decoded."""

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(j.position for j in self.joints)

    @property
    def torque_on(self) -> bool:
        return bool(self.flags & StateFlag.TORQUE)

    @property
    def holding(self) -> bool:
        return bool(self.flags & StateFlag.HOLD)

    @property
    def estopped(self) -> bool:
        return bool(self.flags & StateFlag.ESTOP)

    @property
    def configured(self) -> bool:
        return bool(self.flags & StateFlag.CONFIGURED)


@dataclass(frozen=True)
class LeaderState:
    """One LEADER message: leader-arm positions read with torque off."""

    uptime_ms: int
    positions: tuple[int, ...]
    status: tuple[JointStatus, ...]
    seq: int = 0
    received_at: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Ack:
    ref_seq: int
    ref_type: int


@dataclass(frozen=True)
class ErrorReply:
    ref_seq: int
    ref_type: int
    code: int
    message: str

    @property
    def code_name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return f"code {self.code}"


@dataclass(frozen=True)
class LogLine:
    level: int
    text: str


_STATE_HEAD = struct.Struct("<HIHHHHHHHHHHHHHHB")
_STATE_JOINT = struct.Struct("<HhhBBB")
_LEADER_HEAD = struct.Struct("<IB")
_LEADER_JOINT = struct.Struct("<HB")
_HELLO_HEAD = struct.Struct("<BBBBHHBB")


def _need(payload: bytes, size: int, what: str) -> None:
    if len(payload) < size:
        raise McuProtocolError(f"{what} payload of {len(payload)} bytes is shorter than {size}")


def decode_handshake(payload: bytes) -> Handshake:
    _need(payload, _HELLO_HEAD.size, "HELLO_REPLY")
    proto, major, minor, patch, boot_id, rate, max_joints, nbuses = _HELLO_HEAD.unpack_from(payload)
    o = _HELLO_HEAD.size
    buses = []
    for _ in range(nbuses):
        _need(payload, o + 1, "HELLO_REPLY")
        count = payload[o]
        _need(payload, o + 1 + count, "HELLO_REPLY")
        buses.append(tuple(payload[o + 1 : o + 1 + count]))
        o += 1 + count
    _need(payload, o + 1, "HELLO_REPLY")
    blen = payload[o]
    if len(payload) != o + 1 + blen:
        raise McuProtocolError(f"HELLO_REPLY payload of {len(payload)} bytes has a wrong board-name length")
    board = payload[o + 1 : o + 1 + blen].decode("ascii", errors="replace")
    return Handshake(proto, (major, minor, patch), boot_id, rate, max_joints, tuple(buses), board)


def decode_state(payload: bytes, seq: int = 0, received_at: float = 0.0) -> McuState:
    _need(payload, _STATE_HEAD.size, "STATE")
    head = _STATE_HEAD.unpack_from(payload)
    n = head[-1]
    if len(payload) != _STATE_HEAD.size + n * _STATE_JOINT.size:
        raise McuProtocolError(f"STATE payload of {len(payload)} bytes does not match its {n} joints")
    joints = []
    for i in range(n):
        pos, vel, load, volt, temp, status = _STATE_JOINT.unpack_from(payload, _STATE_HEAD.size + i * 9)
        joints.append(JointState(pos, vel, load, volt / 10.0, temp, JointStatus(status)))
    return McuState(
        boot_id=head[0],
        uptime_ms=head[1],
        flags=StateFlag(head[2]),
        last_target_seq=head[3],
        period_mean_us=head[4],
        period_max_us=head[5],
        work_mean_us=head[6],
        work_max_us=head[7],
        overruns=head[8],
        rx_frames=head[9],
        rx_crc_errors=head[10],
        rx_bad_frames=head[11],
        tx_dropped=head[12],
        bus_errors=head[13],
        alloc_ticks=head[14],
        hold_after_ms=head[15],
        joints=tuple(joints),
        seq=seq,
        received_at=received_at,
    )


def decode_leader(payload: bytes, seq: int = 0, received_at: float = 0.0) -> LeaderState:
    _need(payload, _LEADER_HEAD.size, "LEADER")
    uptime, n = _LEADER_HEAD.unpack_from(payload)
    if len(payload) != _LEADER_HEAD.size + n * _LEADER_JOINT.size:
        raise McuProtocolError(f"LEADER payload of {len(payload)} bytes does not match its {n} joints")
    pos, status = [], []
    for i in range(n):
        p, s = _LEADER_JOINT.unpack_from(payload, _LEADER_HEAD.size + i * _LEADER_JOINT.size)
        pos.append(p)
        status.append(JointStatus(s))
    return LeaderState(uptime, tuple(pos), tuple(status), seq, received_at)


def decode_ack(payload: bytes) -> Ack:
    if len(payload) != 3:
        raise McuProtocolError(f"ACK payload of {len(payload)} bytes, expected 3")
    ref_seq, ref_type = struct.unpack("<HB", payload)
    return Ack(ref_seq, ref_type)


def decode_error(payload: bytes) -> ErrorReply:
    _need(payload, 4, "ERROR")
    ref_seq, ref_type, code = struct.unpack_from("<HBB", payload)
    return ErrorReply(ref_seq, ref_type, code, payload[4:].decode("utf-8", errors="replace"))


def decode_log(payload: bytes) -> LogLine:
    _need(payload, 1, "LOG")
    return LogLine(payload[0], payload[1:].decode("utf-8", errors="replace"))
