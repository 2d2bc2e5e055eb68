"""A rig with the host driver connected: what the HIL scenarios, the benchmark and the demo drive.

`Cell.connect(rig)` configures an McuLink from an SO-101 calibration; `drive()` sends a trajectory the way a
control loop would; `recorder()` samples commanded, reported and true positions for a report.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spinal_edge.mcu import ArmCalibration, LinkConfig, McuLink, McuState

from spinal_hil.report import TrajectoryRecorder, TrajectorySampler
from spinal_hil.rig import HardwareRig, SimulatedRig, wait_until


@dataclass
class Cell:
    rig: SimulatedRig | HardwareRig
    link: McuLink
    config: LinkConfig
    calibration: ArmCalibration
    home: list[int]
    commanded: list[int] | None = None
    recorders: list[TrajectoryRecorder] = field(default_factory=list)

    @classmethod
    def connect(
        cls,
        rig: SimulatedRig | HardwareRig,
        *,
        calibration: ArmCalibration | None = None,
        leader: bool = False,
        leader_calibration: ArmCalibration | None = None,
        link_timeout_ms: int = 200,
        max_step: int = 20,
        timeout_s: float = 15.0,
    ) -> Cell:
        """Open McuLink on the rig's host port, push the configuration and wait for a configured state.

        The leader's calibration defaults to the follower's, with the rig's leader ids.
        """
        cal = calibration or ArmCalibration.so101_default()
        leader_cal = None
        if leader:
            leader_cal = leader_calibration or ArmCalibration(
                tuple(
                    dataclasses.replace(j, id=sid) for j, sid in zip(cal.joints, rig.leader_ids, strict=True)
                )
            )
        config = cal.link_config(
            max_step=max_step,
            leader=leader_cal,
            leader_bus=rig.leader_bus_index,
            link_timeout_ms=link_timeout_ms,
        )
        link = McuLink(rig.host_port, config, reconnect_interval_s=0.05).start()
        try:
            link.wait_ready(timeout_s)
            state = link.wait_for_state(lambda s: s.configured, 5)
        except BaseException:
            link.close()
            raise
        return cls(rig, link, config, cal, list(state.positions))

    @property
    def simulated(self) -> bool:
        return self.rig.is_simulated

    def actual(self) -> list[float]:
        """True shaft positions on the simulated rig, the MCU's reported ones on hardware."""
        if isinstance(self.rig, SimulatedRig):
            true = self.rig.true_positions()
            return [true[sid] for sid in self.config.servo_ids]
        state = self.link.latest_state
        return list(state.positions) if state else []

    def torque_on(self, timeout_s: float = 10.0) -> None:
        self.link.set_torque(True).result(timeout_s)
        self.link.wait_for_state(lambda s: s.torque_on, timeout_s)

    def send(self, targets: Sequence[int]) -> None:
        self.commanded = list(targets)
        self.link.send_targets(self.commanded)

    def drive(
        self, trajectory: Callable[[float], Sequence[float]], seconds: float, rate_hz: float = 100
    ) -> None:
        """Send trajectory(t) (ticks, joint order) every 1/rate_hz s for `seconds`, as a control loop would."""
        period = 1.0 / rate_hz
        t0 = time.monotonic()
        for k in range(int(seconds * rate_hz) + 1):
            self.send([round(v) for v in trajectory(time.monotonic() - t0)])
            delay = t0 + (k + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def drive_until(
        self,
        trajectory: Callable[[float], Sequence[float]],
        done: Callable[[], bool],
        timeout_s: float,
        rate_hz: float = 100,
    ) -> bool:
        """Keep sending trajectory(t) until done() holds (checked every tick) or timeout_s passes."""
        period = 1.0 / rate_hz
        t0 = time.monotonic()
        for k in range(int(timeout_s * rate_hz) + 1):
            self.send([round(v) for v in trajectory(time.monotonic() - t0)])
            if done():
                return True
            delay = t0 + (k + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return done()

    def settled(
        self, target: Sequence[float], tolerance: float, timeout_s: float = 5.0, *, keep_sending: bool = True
    ) -> bool:
        """True once every joint is within `tolerance` ticks of `target` (polled until timeout_s).

        With keep_sending the last commanded targets are re-sent while waiting, as a control loop holding a
        setpoint would; without it the MCU's watchdog would HOLD the arm after link_timeout_ms.
        """

        def close() -> bool:
            if keep_sending and self.commanded is not None:
                self.link.send_targets(self.commanded)
            return max(abs(a - b) for a, b in zip(self.actual(), target, strict=True)) <= tolerance

        return wait_until(close, timeout_s, interval=0.02)

    def wait_still(
        self, tolerance: float = 1.0, window_s: float = 0.05, timeout_s: float = 10.0
    ) -> list[float] | None:
        """The actual positions once no joint moved more than `tolerance` ticks over `window_s` (polled until
        timeout_s), or None if the arm never came to rest. For "the arm holds" checks that must not depend on
        how soon after a HOLD the host happened to look. One tick of tolerance: a real encoder jitters by one."""
        deadline = time.monotonic() + timeout_s
        before = self.actual()
        while time.monotonic() < deadline:
            time.sleep(window_s)
            now = self.actual()
            if now and len(now) == len(before) and _largest_move(before, now) <= tolerance:
                return now
            before = now
        return None

    def recorder(
        self, title: str, leader: Callable[[], Sequence[float] | None] | None = None
    ) -> TrajectorySampler:
        rec = TrajectoryRecorder(title, list(self.calibration.names[: len(self.config.joints)]))
        self.recorders.append(rec)

        def reported() -> list[int] | None:
            state: McuState | None = self.link.latest_state
            return list(state.positions) if state else None

        return TrajectorySampler(
            rec,
            commanded=lambda: self.commanded,
            reported=reported,
            true=self.actual if self.simulated else (lambda: None),
            leader=leader or (lambda: None),
        )

    def close(self) -> None:
        self.link.close()


def _largest_move(before: Sequence[float], now: Sequence[float]) -> float:
    return max(abs(a - b) for a, b in zip(now, before, strict=True))
