"""The `Arm` the daemon drives, over the MCU host driver (`spinal_edge.mcu.McuLink`) and the arm calibrations.

Raw servo ticks stay on the link; the loop, the policy and the recorder see LeRobot SO-101 units
(`shoulder_pan.pos` ... in -100..100 or degrees, gripper 0..100). Built by `spinal_edge.assembly`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import numpy as np

from spinal_edge.arm import ArmState, LeaderState
from spinal_edge.errors import DeviceError
from spinal_edge.mcu import ArmCalibration, CalibrationError, LinkEvent, McuLink, McuState
from spinal_edge.mcu import LeaderState as McuLeaderState
from spinal_edge.settings import EdgeConfig
from spinal_edge.warnings_log import WarningLog

log = logging.getLogger(__name__)

_FIRMWARE_DEFAULT_RATE_HZ = 200
_HOLD_EXTRAPOLATION_MAX_S = 0.2  # older STATE is not carried forward further: a stalled link says little


class McuArm:
    """Follower (and leader) arm behind one MCU link. Every call returns at once; the driver's threads do I/O."""

    def __init__(
        self,
        link: McuLink,
        calibration: ArmCalibration,
        *,
        leader_calibration: ArmCalibration | None = None,
        warnings: WarningLog | None = None,
        torque_on_start: bool = True,
    ) -> None:
        self.link = link
        self.calibration = calibration
        self.leader_calibration = leader_calibration
        self.warnings = warnings or WarningLog()
        self._joints = calibration.joints
        self._leader_joints = leader_calibration.joints if leader_calibration is not None else ()
        self._cache_lock = threading.Lock()
        self._state_cache: tuple[McuState, ArmState] | None = None
        self._leader_cache: tuple[McuLeaderState, LeaderState] | None = None
        self.conversion_errors = 0
        self.torque_on_start = torque_on_start
        link.add_event_listener(self._on_event)

    @classmethod
    def from_config(cls, config: EdgeConfig, *, warnings: WarningLog | None = None) -> McuArm:
        """Load the calibrations (a nominal SO-101 one, with a warning, when none was saved) and build the link."""
        warnings = warnings or WarningLog()
        robot = config.robot
        calibration = _load_calibration(config.calibration_path(), robot.use_degrees, warnings, "follower")
        leader = (
            _load_calibration(config.leader_calibration_path(), robot.use_degrees, warnings, "leader")
            if robot.leader
            else None
        )
        if calibration.names != tuple(robot.joint_names):
            raise DeviceError(
                f"{config.calibration_path()}: the calibration has joints {list(calibration.names)} but [robot] "
                f"joint_names is {list(robot.joint_names)}; make them match"
            )
        # STATE at about twice the control rate: fresh enough for every tick, and no more frames for the
        # host to parse (each one is Python work competing with the control loop for the GIL).
        mcu_rate = robot.mcu_rate_hz or _FIRMWARE_DEFAULT_RATE_HZ
        link_config = calibration.link_config(
            max_step=robot.max_step,
            leader=leader,
            leader_bus=robot.leader_bus,
            link_timeout_ms=robot.link_timeout_ms,
            rate_hz=robot.mcu_rate_hz,
            state_every=max(1, int(mcu_rate // (2 * config.loop.rate_hz))),
        )
        link = McuLink(robot.mcu_port, link_config, baudrate=robot.baudrate)
        return cls(
            link,
            calibration,
            leader_calibration=leader,
            warnings=warnings,
            torque_on_start=robot.torque_on_start,
        )

    # -- Arm ------------------------------------------------------------------------------------------------

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.calibration.names

    @property
    def has_leader(self) -> bool:
        return self.leader_calibration is not None

    @property
    def connected(self) -> bool:
        return self.link.ready

    def start(self) -> None:
        # The driver connects, handshakes and reconnects on its own thread; the loop copes with no state yet.
        self.link.start()
        if self.torque_on_start:
            # Recorded as the driver's wish even before the link is up; it applies it after every handshake.
            self.link.set_torque(True)

    def stop(self) -> None:
        self.hold()
        self.link.close()

    def latest_state(self) -> ArmState | None:
        raw = self.link.latest_state
        if raw is None or len(raw.joints) != len(self._joints):
            return None  # before the MCU is configured its STATE carries no joints
        cache = self._state_cache
        if cache is not None and cache[0] is raw:
            return cache[1]
        state = self._convert_state(raw)
        self._state_cache = (raw, state)
        return state

    def latest_leader(self) -> LeaderState | None:
        raw = self.link.latest_leader
        if raw is None or not self._leader_joints:
            return None
        cache = self._leader_cache
        if cache is not None and cache[0] is raw:
            return cache[1]
        if len(raw.positions) != len(self._leader_joints):
            self.conversion_errors += 1
            return None
        values = np.array(
            [j.to_value(p) for j, p in zip(self._leader_joints, raw.positions, strict=True)], dtype=np.float32
        )
        leader = LeaderState(int(raw.received_at * 1e9), values)
        self._leader_cache = (raw, leader)
        return leader

    def send_targets(self, positions: np.ndarray) -> None:
        if len(positions) != len(self._joints):
            self.conversion_errors += 1
            return
        raw = [j.to_raw(float(v)) for j, v in zip(self._joints, positions, strict=True)]
        self.link.send_targets(raw)

    def hold(self) -> None:
        """Target the present position; a watchdog HOLD on the MCU is acknowledged so the arm stays put."""
        raw = self.link.latest_state
        if raw is None or len(raw.joints) != len(self._joints):
            return
        if raw.holding:
            self.link.acknowledge_hold()
        self.link.send_targets(_present_positions(raw, time.monotonic()))

    def keepalive(self) -> None:
        self.link.heartbeat()

    def set_torque(self, enabled: bool) -> None:
        """Torque on or off. Torque on is a person's explicit request, so whatever made the MCU refuse it is
        cleared first: a latched e-stop, and a link watchdog HOLD (the MCU takes TORQUE only after HOLD_ACK)."""
        state = self.link.latest_state
        if enabled:
            if state is not None and state.estopped:
                self.link.clear_estop()
            if state is not None and state.holding:
                log.info("torque on requested: acknowledging the MCU's link watchdog HOLD first")
            # Sent even when the last STATE showed no HOLD: the MCU may have entered one since, and outside a
            # HOLD the ack only feeds the watchdog. Commands reach the MCU in order, so it precedes TORQUE.
            self.link.acknowledge_hold()
        self.link.set_torque(enabled)

    def estop(self) -> None:
        self.link.estop()

    def status(self) -> dict[str, Any]:
        counters = dataclasses.asdict(self.link.counters())
        handshake = self.link.handshake
        raw = self.link.latest_state
        out: dict[str, Any] = {
            "port": self.link.port,
            "ready": self.link.ready,
            "last_error": self.link.last_error,
            **counters,
            "conversion_errors": self.conversion_errors,
        }
        if handshake is not None:
            out["firmware_version"] = ".".join(str(v) for v in handshake.firmware_version)
            out["board"] = handshake.board
            out["mcu_rate_hz"] = handshake.rate_hz
        if raw is not None:
            out.update(
                flags=str(raw.flags),
                estopped=raw.estopped,
                mcu_period_mean_us=raw.period_mean_us,
                mcu_period_max_us=raw.period_max_us,
                mcu_work_mean_us=raw.work_mean_us,
                mcu_overruns=raw.overruns,
                bus_errors=raw.bus_errors,
            )
        return out

    # -- for the setup page (calibration wizard, bus scan) ---------------------------------------------------

    def raw_positions(self) -> np.ndarray | None:
        """The follower's positions in servo ticks, before calibration: what the calibration wizard records."""
        raw = self.link.latest_state
        return None if raw is None else np.array(raw.positions, dtype=np.float64)

    def scan(self) -> list[dict[str, Any]]:
        """The servos the MCU found on each bus at its handshake (bus, id, the joint using it)."""
        hello = self.link.handshake
        if hello is None:
            return []
        joint_of = {j.id: j.name for j in self._joints}
        return [
            {"bus": bus, "id": sid, "joint": joint_of.get(sid, ""), "model": "STS3215"}
            for bus, ids in enumerate(hello.buses)
            for sid in ids
        ]

    # -- internals ----------------------------------------------------------------------------------------

    def _convert_state(self, raw: McuState) -> ArmState:
        joints = raw.joints
        positions = np.array(
            [c.to_value(j.position) for c, j in zip(self._joints, joints, strict=True)], dtype=np.float32
        )
        return ArmState(
            t_mono_ns=int(raw.received_at * 1e9),
            positions=positions,
            velocities=np.array([j.velocity for j in joints], dtype=np.float32),
            loads=np.array([j.load / 10.0 for j in joints], dtype=np.float32),
            temperatures_c=np.array([j.temperature for j in joints], dtype=np.float32),
            voltage_v=float(np.mean([j.voltage for j in joints])) if joints else None,
            watchdog_hold=raw.holding,
            torque_enabled=raw.torque_on,
            flags={"estop": raw.estopped, "configured": raw.configured, "flags": int(raw.flags)},
        )

    def _on_event(self, event: LinkEvent, detail: str) -> None:
        # Runs on the driver's reader thread: record and return.
        if event in (
            LinkEvent.DISCONNECTED,
            LinkEvent.HOLD_ENTERED,
            LinkEvent.ESTOP_ENTERED,
            LinkEvent.CONFIG_REJECTED,
            LinkEvent.RESTARTED,
        ):
            self.warnings.add(f"mcu_{event.value}", f"MCU link: {event.value.replace('_', ' ')} ({detail})")


def _load_calibration(path, use_degrees: bool, warnings: WarningLog, which: str) -> ArmCalibration:  # type: ignore[no-untyped-def]
    if not path.exists():
        warnings.add(
            "calibration_missing",
            f"no {which} calibration at {path}; a nominal SO-101 calibration is in use until the arm is calibrated",
        )
        return ArmCalibration.so101_default(use_degrees=use_degrees)
    try:
        return ArmCalibration.load(path, use_degrees=use_degrees)
    except CalibrationError as exc:
        raise DeviceError(str(exc)) from None


def _present_positions(state: McuState, now: float) -> tuple[int, ...]:
    """Where each joint is now: the last STATE's positions carried forward by their velocities for the STATE's
    age (capped), so a hold of a moving arm stops it where it is instead of pulling it back to where it was."""
    age = min(max(now - state.received_at, 0.0), _HOLD_EXTRAPOLATION_MAX_S) if state.received_at else 0.0
    return tuple(int(min(max(round(j.position + j.velocity * age), 0), 4095)) for j in state.joints)
