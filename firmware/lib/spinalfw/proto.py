"""Constants of the Pi <-> MCU link protocol (firmware/PROTOCOL.md): message types, flags, error codes, sizes.

Used by spinalfw.link and spinalfw.app; the host mirror lives in spinal_edge.mcu.messages.
"""

from micropython import const

PROTOCOL_VERSION = const(1)

# Frame layout before COBS: type u8 | seq u16 LE | payload | crc16 u16 LE (CRC-16/CCITT-FALSE over type..payload).
HEADER_LEN = const(3)
CRC_LEN = const(2)
MAX_PAYLOAD = const(248)
MAX_FRAME = const(253)  # header + payload + crc; below 254 so COBS adds exactly one byte
MAX_JOINTS = const(8)

# Host -> MCU
MSG_HELLO = const(0x01)
MSG_CONFIG = const(0x02)
MSG_TARGETS = const(0x03)
MSG_TORQUE = const(0x04)
MSG_ESTOP = const(0x05)
MSG_ESTOP_CLEAR = const(0x06)
MSG_HEARTBEAT = const(0x07)
MSG_HOLD_ACK = const(0x08)
MSG_EXIT_TO_REPL = const(0x0F)

# MCU -> host
MSG_HELLO_REPLY = const(0x81)
MSG_STATE = const(0x82)
MSG_LEADER = const(0x83)
MSG_ACK = const(0x84)
MSG_ERROR = const(0x85)
MSG_LOG = const(0x86)

# STATE flags (u16)
FLAG_TORQUE = const(0x0001)
FLAG_HOLD = const(0x0002)
FLAG_ESTOP = const(0x0004)
FLAG_ESTOP_INPUT = const(0x0008)
FLAG_CONFIGURED = const(0x0010)
FLAG_LIMITED = const(0x0020)
FLAG_SERVO_ERROR = const(0x0040)
FLAG_BUS_TIMEOUT = const(0x0080)
FLAG_LEADER = const(0x0100)
FLAG_OVERRUN = const(0x0200)
FLAG_TARGETS_IGNORED = const(0x0400)

# Per-joint status byte in STATE / LEADER: servo error bits (low 6) plus these.
JOINT_MOVING = const(0x40)
JOINT_NO_RESPONSE = const(0x80)

# ERROR codes
ERR_BAD_PAYLOAD = const(1)
ERR_UNKNOWN_TYPE = const(2)
ERR_NOT_CONFIGURED = const(3)
ERR_ESTOP_LATCHED = const(4)
ERR_HOLD_ACTIVE = const(5)
ERR_TORQUE_ON = const(6)
ERR_BAD_CONFIG = const(7)
ERR_SERVO_MISSING = const(8)
ERR_ESTOP_INPUT = const(9)
ERR_PROTOCOL_VERSION = const(10)
ERR_BUS = const(11)

# LOG levels
LOG_DEBUG = const(10)
LOG_INFO = const(20)
LOG_WARNING = const(30)
LOG_ERROR = const(40)

# Payload sizes
STATE_FIXED = const(35)
STATE_PER_JOINT = const(9)
LEADER_FIXED = const(5)
LEADER_PER_JOINT = const(3)
