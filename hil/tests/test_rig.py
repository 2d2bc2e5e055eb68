"""SimulatedRig set-up: its working directory and faults injected before the firmware boots."""

from __future__ import annotations

from pathlib import Path

from spinal_hil.rig import SimulatedRig, wait_until
from spinal_hil.servo_model import ServoFaults


def test_rig_creates_a_workdir_that_does_not_exist_yet(tmp_path: Path) -> None:
    workdir = tmp_path / "runs" / "rig-1"
    with SimulatedRig(workdir=workdir) as rig:
        assert Path(rig.host_port).parent == workdir
        assert Path(rig.host_port).exists()
        assert rig.firmware is not None and rig.firmware.alive
    assert workdir.is_dir(), "a workdir the caller named is the caller's: it stays"


def test_follower_faults_are_in_place_before_the_firmware_boots(tmp_path: Path) -> None:
    faults = ServoFaults(silent_for_packets=2)
    with SimulatedRig(workdir=tmp_path, follower_faults={3: faults}) as rig:
        assert rig.follower is not None and rig.follower.servo(3).faults is faults
        # The boot scan pings servo 3 twice (a lost ping is retried): both go unanswered.
        assert wait_until(lambda: faults.silent_for_packets == 0, 10), "the boot scan never pinged servo 3"
