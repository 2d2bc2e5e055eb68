"""The control loop: modes, hold on every change and fault, teleop mirroring, drift-free deadlines."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from spinal_edge.cameras import CameraSettings, SyntheticCamera
from spinal_edge.control.loop import ControlLoop
from spinal_edge.control.ports import ActionOrigin, PolicyStep, RobotMode
from spinal_edge.control.timing import Deadlines
from spinal_edge.testing import KinematicArm, wait_for


class ScriptedPolicy:
    """A policy port that answers with a fixed action and records what it observed."""

    def __init__(self, action: np.ndarray | None) -> None:
        self.action = action
        self.failed = False
        self.observed: list[tuple[np.ndarray, dict[str, bytes]]] = []
        self.task = ""

    def observe(self, state: np.ndarray, images: Mapping[str, bytes], t_mono_ns: int) -> None:
        self.observed.append((state, dict(images)))

    def next_action(self) -> PolicyStep:
        if self.action is None:
            return PolicyStep(None)
        return PolicyStep(self.action, ActionOrigin("s1", len(self.observed), 1))

    def status(self) -> dict[str, Any]:
        return {"state": "streaming", "ready": True, "failed": self.failed}


def _loop(arm: KinematicArm, policy: ScriptedPolicy | None = None, **kw: Any) -> ControlLoop:
    arm.start()
    return ControlLoop(arm, {}, rate_hz=30, policy=policy, **kw)


def test_policy_actions_become_targets_and_observations_carry_camera_jpegs() -> None:
    arm = KinematicArm()
    camera = SyntheticCamera("front", CameraSettings(kind="synthetic", width=64, height=48))
    camera.publish(camera.render_jpeg(np.zeros(6)), 64, 48)
    policy = ScriptedPolicy(np.array([10.0, 0, 0, 0, 0, 0]))
    arm.start()
    loop = ControlLoop(arm, {"front": camera}, rate_hz=30, policy=policy)
    loop.request_mode(RobotMode.POLICY, "test")
    for _ in range(3):
        loop.tick(time.monotonic_ns())
    assert arm.targets_received == 3 and loop.targets_sent == 3
    state, images = policy.observed[-1]
    assert state.shape == (6,) and images["front"][:2] == b"\xff\xd8"


def test_every_mode_change_holds_the_arm() -> None:
    arm = KinematicArm(leader=True)
    loop = _loop(arm, ScriptedPolicy(np.ones(6)))
    holds = arm.holds
    for mode in (RobotMode.POLICY, RobotMode.TELEOP, RobotMode.IDLE):
        loop.request_mode(mode, "test")
        loop.tick(time.monotonic_ns())
    assert arm.holds == holds + 3
    assert [c.mode for c in loop.history] == [RobotMode.POLICY, RobotMode.TELEOP, RobotMode.IDLE]


def test_no_action_from_the_policy_sends_no_target() -> None:
    arm = KinematicArm()
    loop = _loop(arm, ScriptedPolicy(None))
    loop.request_mode(RobotMode.POLICY, "test")
    for _ in range(5):
        loop.tick(time.monotonic_ns())
    assert arm.targets_received == 0 and loop.policy_holds == 5


def test_a_failed_engine_sends_the_arm_to_idle_and_warns() -> None:
    arm = KinematicArm()
    policy = ScriptedPolicy(np.ones(6))
    loop = _loop(arm, policy)
    loop.request_mode(RobotMode.POLICY, "test")
    loop.tick(time.monotonic_ns())
    policy.failed = True
    holds = arm.holds
    loop.tick(time.monotonic_ns())
    assert loop.mode is RobotMode.IDLE and arm.holds == holds + 1
    assert "inference_failed" in loop.warnings.codes()
    sent = arm.targets_received
    loop.tick(time.monotonic_ns())
    assert arm.targets_received == sent, "idle sends nothing"


def test_silent_mcu_state_is_a_fault_that_holds() -> None:
    arm = KinematicArm(leader=True)
    loop = _loop(arm, state_stale_ms=50)
    loop.request_mode(RobotMode.TELEOP, "test")
    loop.tick(time.monotonic_ns())
    arm.reporting = False
    loop.tick(time.monotonic_ns() + 200_000_000)
    assert loop.mode is RobotMode.IDLE and "mcu_state_stale" in loop.warnings.codes()


def test_teleop_mirrors_the_leader_onto_the_follower() -> None:
    arm = KinematicArm(leader=True, speed=400.0)
    loop = _loop(arm)
    loop.start()
    try:
        assert loop.request_mode(RobotMode.TELEOP, "test")
        leader = np.array([20.0, -15.0, 30.0, 5.0, -10.0, 40.0])
        arm.set_leader(leader)
        wait_for(lambda: np.allclose(arm.latest_state().positions, leader, atol=0.5), timeout=10)
    finally:
        loop.stop()
    assert loop.mode is RobotMode.TELEOP


def test_the_loop_thread_ticks_at_its_rate_and_applies_mode_requests() -> None:
    arm = KinematicArm()
    loop = ControlLoop(arm, {}, rate_hz=100)
    arm.start()
    loop.start()
    try:
        wait_for(lambda: loop.stats.ticks >= 20, timeout=10)
        assert loop.request_mode(RobotMode.IDLE, "again", timeout=5)
        summary = loop.stats.summary(10_000.0)
    finally:
        loop.stop()
    assert summary["period_us"] is not None and summary["period_us"].p50 > 0
    assert not loop.running


def test_deadlines_do_not_drift_and_skip_whole_missed_periods() -> None:
    d = Deadlines(period_ns=10, start_ns=1000)
    assert d.next_ns == 1000
    assert d.advance(now_ns=1003) == 1010  # a late tick does not push the grid
    assert d.advance(now_ns=1011) == 1020
    # Finished at 1055: 1030 and 1040 are gone (counted), 1050 is less than a period late and runs now.
    assert d.advance(now_ns=1055) == 1050
    assert d.overruns == 2
    d.retime(period_ns=20, now_ns=2000)
    assert d.next_ns == 2020
