"""spinal_edge.mcu: the host side of the Pi <-> servo-MCU link (driver, protocol, calibration).

The edge daemon uses `McuLink` (see driver.py) with a `LinkConfig`, and `ArmCalibration` for LeRobot units.
"""

from spinal_edge.mcu.calibration import SO101_JOINTS, ArmCalibration, JointCalibration, NormMode
from spinal_edge.mcu.driver import LinkCounters, LinkEvent, McuLink
from spinal_edge.mcu.errors import (
    CalibrationError,
    McuCommandRejected,
    McuConfigError,
    McuLinkError,
    McuNotConnected,
    McuProtocolError,
    McuTimeout,
    McuVersionMismatch,
)
from spinal_edge.mcu.messages import (
    PROTOCOL_VERSION,
    ErrorCode,
    Handshake,
    JointLimits,
    JointState,
    JointStatus,
    LeaderState,
    LinkConfig,
    McuState,
    MsgType,
    StateFlag,
)

__all__ = [
    "PROTOCOL_VERSION",
    "SO101_JOINTS",
    "ArmCalibration",
    "CalibrationError",
    "ErrorCode",
    "Handshake",
    "JointCalibration",
    "JointLimits",
    "JointState",
    "JointStatus",
    "LeaderState",
    "LinkConfig",
    "LinkCounters",
    "LinkEvent",
    "McuCommandRejected",
    "McuConfigError",
    "McuLink",
    "McuLinkError",
    "McuNotConnected",
    "McuProtocolError",
    "McuState",
    "McuTimeout",
    "McuVersionMismatch",
    "MsgType",
    "NormMode",
    "StateFlag",
]
