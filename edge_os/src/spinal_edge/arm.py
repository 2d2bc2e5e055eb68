"""What the daemon needs from the arm behind the MCU link: latest state, leader positions, targets, hold.

The control loop, the synthetic camera and the API use this interface; `spinal_edge.mcu_arm` implements it over
the MCU host driver (`spinal_edge.mcu`). Every call here returns at once: the driver's own thread does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class ArmState:
    """One state report from the MCU, in the joint order of the config, stamped on the host's monotonic clock."""

    t_mono_ns: int
    positions: np.ndarray
    velocities: np.ndarray | None = None
    loads: np.ndarray | None = None
    temperatures_c: np.ndarray | None = None
    voltage_v: float | None = None
    watchdog_hold: bool = (
        False  # the MCU's link watchdog fired: it holds and ignores targets until acknowledged
    )
    torque_enabled: bool = True
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaderState:
    """The leader arm's positions (teleoperation), in follower units and joint order."""

    t_mono_ns: int
    positions: np.ndarray


class Arm(Protocol):
    """The follower (and optional leader) arm as the control loop sees it."""

    @property
    def joint_names(self) -> tuple[str, ...]: ...

    @property
    def has_leader(self) -> bool: ...

    @property
    def connected(self) -> bool: ...

    def start(self) -> None:
        """Open the link, handshake, push the joint configuration; raises DeviceError when that fails."""

    def stop(self) -> None:
        """Hold the arm and close the link."""

    def latest_state(self) -> ArmState | None:
        """The newest follower state, or None before the first report."""

    def latest_leader(self) -> LeaderState | None:
        """The newest leader positions, or None (no leader, or none yet)."""

    def send_targets(self, positions: np.ndarray) -> None:
        """Queue joint targets (never blocks); the MCU clamps them to the joint limits and the step limit."""

    def hold(self) -> None:
        """Keep the present position (acknowledging a watchdog hold) until the next `send_targets`."""

    def keepalive(self) -> None:
        """The loop is alive but has no new target this tick (feeds the MCU's link watchdog)."""

    def set_torque(self, enabled: bool) -> None: ...

    def estop(self) -> None:
        """Torque off at once (the MCU enforces it)."""

    def status(self) -> dict[str, Any]:
        """Link state and counters for the status page (firmware version, frames, errors, timing)."""
