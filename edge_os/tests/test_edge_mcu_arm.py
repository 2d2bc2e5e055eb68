"""The daemon's arm over the real MCU driver and the firmware in MicroPython on the simulated rig."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np
import pytest
from spinal_edge.control.loop import ControlLoop
from spinal_edge.control.ports import RobotMode
from spinal_edge.mcu import ArmCalibration
from spinal_edge.mcu_arm import McuArm
from spinal_edge.settings import EdgeConfig
from spinal_edge.testing import wait_for
from spinal_hil.rig import SimulatedRig

pytestmark = pytest.mark.slow

CAL = ArmCalibration.so101_default()


def _ticks(values: np.ndarray) -> list[int]:
    return [j.to_raw(float(v)) for j, v in zip(CAL.joints, values, strict=True)]


@pytest.fixture
def rig_and_arm(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[SimulatedRig, McuArm]]:
    leader = getattr(request, "param", False)
    (tmp_path / "rig").mkdir()
    with SimulatedRig(leader=leader, workdir=tmp_path / "rig") as rig:
        config = EdgeConfig.model_validate(
            {"data_dir": str(tmp_path), "robot": {"mcu_port": rig.host_port, "leader": leader}}
        )
        arm = McuArm.from_config(config)
        arm.start()
        try:
            wait_for(lambda: arm.connected and arm.latest_state() is not None, timeout=60)
            yield rig, arm
        finally:
            arm.stop()


def test_state_arrives_in_lerobot_units_and_targets_move_the_servos(rig_and_arm) -> None:
    rig, arm = rig_and_arm
    state = arm.latest_state()
    assert state is not None and state.positions.shape == (6,)
    # The rig starts mid-range: 0 in -100..100 units for the body, 50 in 0..100 for the gripper.
    assert np.allclose(state.positions, [0, 0, 0, 0, 0, 50], atol=1.0)
    assert "calibration_missing" in arm.warnings.codes()
    target = np.array([20.0, -10.0, 15.0, 5.0, -5.0, 60.0], dtype=np.float32)
    expected = _ticks(target)

    def reached() -> bool:
        arm.send_targets(target)
        true = rig.true_positions()
        return all(abs(true[i + 1] - expected[i]) < 15 for i in range(6))

    wait_for(reached, timeout=30, interval=0.02)
    wait_for(lambda: np.allclose(arm.latest_state().positions, target, atol=2.0), timeout=10)
    status = arm.status()
    assert status["ready"] and status["frames_rx"] > 0 and status["crc_errors"] == 0


def test_hold_keeps_the_arm_where_it_is(rig_and_arm) -> None:
    rig, arm = rig_and_arm
    arm.send_targets(np.array([40.0, 0, 0, 0, 0, 50], dtype=np.float32))
    wait_for(lambda: abs(arm.latest_state().positions[0]) > 5, timeout=20)
    arm.hold()
    held = rig.true_positions()[1]
    samples = []
    for _ in range(20):  # one second of the held arm
        samples.append(rig.true_positions()[1])
        time.sleep(0.05)
    target_ticks = _ticks(np.array([40.0, 0, 0, 0, 0, 50]))[0]
    assert max(samples) - min(samples) < 40, "the held joint stays put"
    assert max(samples) < target_ticks - 60 and abs(samples[-1] - held) < 40, (
        "it does not go on to the old target"
    )


def test_estop_turns_the_torque_off_and_torque_on_clears_it(rig_and_arm) -> None:
    rig, arm = rig_and_arm
    arm.estop()
    wait_for(lambda: not any(rig.torques().values()), timeout=10)
    wait_for(lambda: arm.latest_state().flags["estop"], timeout=10)
    arm.set_torque(True)
    wait_for(lambda: all(rig.torques().values()), timeout=10)


def test_torque_on_after_a_watchdog_hold_acknowledges_the_hold(rig_and_arm) -> None:
    rig, arm = rig_and_arm
    # Nothing drives the arm (no control loop): the link falls silent and the MCU holds it.
    wait_for(lambda: arm.latest_state().watchdog_hold, timeout=20)
    arm.set_torque(False)
    wait_for(lambda: not any(rig.torques().values()), timeout=10)
    assert arm.latest_state().watchdog_hold, "torque off does not end the HOLD: only HOLD_ACK does"
    before, errors = rig.true_positions(), arm.link.counters().mcu_errors
    arm.set_torque(True)  # what "Torque on" on the setup page or POST /api/torque does
    wait_for(lambda: all(rig.torques().values()), timeout=10)
    wait_for(lambda: arm.latest_state().torque_enabled, timeout=10)
    after = rig.true_positions()
    assert all(abs(after[i] - before[i]) < 40 for i in before), "torque comes on where the arm is"
    assert arm.link.counters().mcu_errors == errors, "the MCU refused nothing"


@pytest.mark.parametrize("rig_and_arm", [True], indirect=True)
def test_teleop_mirrors_the_leader_onto_the_follower(rig_and_arm) -> None:
    rig, arm = rig_and_arm
    leader_ticks = [2048 + 300, 2048 - 200, 2048 + 150, 2048 - 100, 2048 + 250, 2048 + 400]
    rig.drive_leader(lambda t: leader_ticks)
    loop = ControlLoop(arm, {}, rate_hz=50)
    loop.start()
    try:
        assert loop.request_mode(RobotMode.TELEOP, "test")

        def mirrored() -> bool:
            true = rig.true_positions()
            return all(abs(true[i + 1] - leader_ticks[i]) < 20 for i in range(6))

        wait_for(mirrored, timeout=30)
    finally:
        loop.stop()
    assert loop.mode is RobotMode.TELEOP and loop.faults == 0


def test_hold_targets_carry_a_moving_joint_forward_by_the_state_age_capped() -> None:
    from spinal_edge.mcu.messages import JointState, JointStatus, McuState, StateFlag
    from spinal_edge.mcu_arm import _present_positions

    joints = (
        JointState(2000, 500, 0, 12.0, 30, JointStatus.OK),  # moving up at 500 ticks/s
        JointState(3000, -400, 0, 12.0, 30, JointStatus.OK),  # moving down
        JointState(4090, 900, 0, 12.0, 30, JointStatus.OK),  # would pass the encoder's end
        JointState(1000, 0, 0, 12.0, 30, JointStatus.OK),  # still
    )
    state = McuState(1, 0, StateFlag(0), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, joints, received_at=100.0)
    assert _present_positions(state, 100.1) == (2050, 2960, 4095, 1000)
    assert _present_positions(state, 130.0) == (2100, 2920, 4095, 1000), (
        "a stale STATE is carried 0.2 s at most"
    )
    assert _present_positions(dataclasses_replace(state, received_at=0.0), 130.0) == (2000, 3000, 4090, 1000)
